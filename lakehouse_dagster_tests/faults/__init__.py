"""Fault injection: writers racing on every write path, and processes killed at every step."""
