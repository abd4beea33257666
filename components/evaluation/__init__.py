"""Reports (metrics, figures, tables, child runs, files) and the uncertainty summaries behind them."""
