"""Run one table's unit and kill the process at a chosen step, as a crash would.

    python -m lakehouse_dagster_tests.faults.crash <spark connect url> <lake root> <table> \\
        <module:attribute> <before|after> [<partition start> <partition end>]

``module:attribute`` names a function or ``Class.method`` as the unit's code calls it (patch
where it is used); the process exits with ``CRASH_EXIT_CODE``, with no cleanup, before or
after its first call. The landing folder is ``LAKEHOUSE_LANDING`` if set, else the lake's own.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from datetime import date

from lakehouse_dagster.engine.sessions import connect
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.units.request import PartitionWindow, UnitRequest
from lakehouse_dagster.units.run import run_unit

CRASH_EXIT_CODE = 17
AS_OF = date(2026, 11, 26)


def _die() -> None:
    os._exit(CRASH_EXIT_CODE)  # no cleanup, no finally blocks: like a killed process


def patch(target: str, when: str) -> None:
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)

    def crashing(*args, **kwargs):
        if when == "before":
            _die()
        result = original(*args, **kwargs)
        _die()
        return result

    setattr(owner, name, crashing)


def main(remote_url: str, root: str, table: str, target: str, when: str, *window: str) -> None:
    patch(target, when)
    tables = DeltaTables(connect(remote_url), LakeLayout.local(root, os.environ.get("LAKEHOUSE_LANDING")))
    partition = (
        PartitionWindow(date.fromisoformat(window[0]), date.fromisoformat(window[1])) if window else None
    )
    request = UnitRequest(table, AS_OF, run_id="crashed", partition=partition)
    result = run_unit(request, REGISTRY.table(table), tables, Thresholds.load(), logging.getLogger("crash"))
    raise SystemExit(f"the crash point was never reached: {result.error}")


if __name__ == "__main__":
    main(*sys.argv[1:])
