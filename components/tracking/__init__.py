"""MLflow runs and registry (with the promotion gate), the run outputs DVC tracks, and settings sweeps."""
