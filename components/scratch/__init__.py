"""From-scratch NumPy networks: no torch in here (the foundations projects)."""
