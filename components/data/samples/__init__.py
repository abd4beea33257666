"""Deterministic offline samples, written in the real formats, for datasets that do not install offline."""
