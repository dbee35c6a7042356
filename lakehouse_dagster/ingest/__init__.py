"""Incremental file ingestion with Auto Loader semantics, as batch reads of new files."""
