"""Business domains: a package each, holding its table declarations and its pure transforms.

The framework (engine, lake, ingest, cdc, quality, units, runners, defs) never imports a
domain; ``lakehouse_dagster.registry`` gathers them.
"""
