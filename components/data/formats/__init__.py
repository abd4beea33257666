"""Readers and validators of the real dataset formats users bring (one module a format)."""
