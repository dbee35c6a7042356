"""Deterministic, realistically dirty sample data for the landing zone."""
