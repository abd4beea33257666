"""Conformal prediction with MAPIE 1.x: calibration of sets and intervals, and the pipeline stage."""
