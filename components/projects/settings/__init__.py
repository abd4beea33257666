"""Each project's settings classes, torch-free: what params.yaml is validated against (components/projects/__init__.py)."""
