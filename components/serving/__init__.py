"""What the registry serves: predictor objects and the MLflow pyfunc entry point that wraps them."""
