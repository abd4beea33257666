"""dlfolio's building blocks: plain Python that takes data and returns data (no Prefect in here)."""
