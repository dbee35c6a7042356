"""Keeping tables healthy: compaction, Z-order, VACUUM and row retention, as a unit of work."""
