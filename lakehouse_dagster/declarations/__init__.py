"""Declarations: tables, domains and the registry (``table``), and when tables run (``timing``).

Free of Dagster: the Dagster layer (``defs/``) and the unit runner derive everything from them.
"""
