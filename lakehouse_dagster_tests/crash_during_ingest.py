"""Run one ingestion and kill the process at a chosen point, as a crash would.

    python -m lakehouse_dagster_tests.crash_during_ingest <spark connect url> <lake root> <point>

``after_claim``: the ledger holds the batch's claims, bronze does not hold its rows.
``after_bronze_write``: the bronze commit happened, the ledger's commit did not.
"""

from __future__ import annotations

import logging
import os
import sys

from lakehouse_dagster.engine.sessions import connect
from lakehouse_dagster.ingest.autoloader import ingest
from lakehouse_dagster.ingest.ledger import IngestLedger
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster_tests.test_ingestion import SOURCE, TARGET

CRASH_EXIT_CODE = 17


def _die(*_args: object, **_kwargs: object) -> None:
    os._exit(CRASH_EXIT_CODE)  # no cleanup, no finally blocks: like a killed process


def main(remote_url: str, root: str, point: str) -> None:
    if point == "after_bronze_write":
        IngestLedger.commit = _die  # type: ignore[method-assign]
    elif point == "after_claim":
        claim = IngestLedger.claim

        def claim_then_die(self: IngestLedger, *args, **kwargs):
            claim(self, *args, **kwargs)
            _die()

        IngestLedger.claim = claim_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown crash point {point!r}")
    tables = DeltaTables(connect(remote_url), LakeLayout.local(root))
    ingest(tables, SOURCE, TARGET, log=logging.getLogger(__name__))
    raise SystemExit("the crash point was never reached")


if __name__ == "__main__":
    main(*sys.argv[1:])
