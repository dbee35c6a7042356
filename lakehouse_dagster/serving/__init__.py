"""Serving gold to its consumers: the warehouse seam (PostgreSQL locally, Redshift Serverless in
production), what a table's ``serving`` declaration means, and the local PostgreSQL server.

The framework: it never imports the domains. The Dagster assets that load the warehouse are
built in ``defs/serving.py``.
"""
