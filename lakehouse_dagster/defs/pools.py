"""What each step waits for: a concurrency pool, which the Dagster instance limits.

Pools belong to the assets, so they hold for every run whatever launched it: a job, its
schedule, a sensor, the asset graph, a backfill, ``make run``. (A run tag holds only for
runs launched with it: runs of the asset graph and backfills lacked it.)

- Where the engine is started by the run on this machine (the embedded Sail server, or Spark
  in this process's JVM), every table's step is in one pool, ``lakehouse_engine``: with its
  one slot (``dagster.yaml``), one unit computes at a time on the machine, and two runs
  never write one table at once.
- Where the engine is shared or remote (a Spark Connect server, Databricks), units run side by
  side and each table has a pool of its own (``silver.customers``): one writer per table.
"""

from __future__ import annotations

from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.deployment import LakehouseSettings, UnitRunnerKind
from lakehouse_dagster.engine.settings import EngineMode

ENGINE_POOL = "lakehouse_engine"
#: Engines a run starts on this machine for itself.
_OWN_ENGINES = (EngineMode.EMBEDDED, EngineMode.CLASSIC_DELTA)


def table_pool(settings: LakehouseSettings, table: Table) -> str:
    """The pool of a table's step in this deployment."""
    if settings.unit_runner is not UnitRunnerKind.DATABRICKS and settings.engine.mode in _OWN_ENGINES:
        return ENGINE_POOL
    return str(table.name)
