"""Run one table's unit at a given instant, so that several processes write at the same moment.

    python -m lakehouse_dagster_tests.faults.race <spark connect url> <lake root> <start epoch> <table>
        [<partition start> <partition end>]

Everything that can be done before the write (imports, the engine session) is done first;
then the process sleeps until ``start`` and runs the unit. It prints the unit's report as
JSON and exits 0 whatever the report says: the test reads the reports.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import date

from lakehouse_dagster.engine.sessions import connect
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.units.request import PartitionWindow, UnitRequest
from lakehouse_dagster.units.run import run_unit

AS_OF = date(2026, 11, 26)


def main(remote_url: str, root: str, start: str, table: str, *window: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(process)d %(message)s")
    spark = connect(remote_url)
    tables = DeltaTables(spark, LakeLayout.local(root))
    spark.range(1).collect()  # the session is up
    partition = (
        PartitionWindow(date.fromisoformat(window[0]), date.fromisoformat(window[1])) if window else None
    )
    request = UnitRequest(table, AS_OF, run_id=f"race-{time.time_ns()}", partition=partition)
    declared = REGISTRY.table(table)
    thresholds = Thresholds.load()
    time.sleep(max(0.0, float(start) - time.time()))
    result = run_unit(request, declared, tables, thresholds, logging.getLogger("race"))
    print(result.to_json(), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
