"""Dagster wiring: thin layers that turn table units into assets, checks, jobs and resources."""
