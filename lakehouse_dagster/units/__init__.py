"""Units of work, one per table, free of Dagster: a request in, a JSON report out.

- ``request``: what a unit is asked to do; ``report``: what it reports;
- ``context``: what a table's build reads, checks and writes with; ``writes``: shared writes;
- ``run``: run a table's unit and report it, whatever happens;
- ``__main__``: ``python -m lakehouse_dagster.units``, a unit in a process of its own.
"""
