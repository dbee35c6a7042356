"""The landing sensor: list the folders of the file-fed bronze tables (local or S3) and request
runs that name the files new since the last tick.

**Cursor**, per table: ``since`` (files that landed before it are not looked at) and the memory
of the files seen since (``landing.Memory``, keyed by URI and fingerprint). A file is new when
it landed at or after ``since`` and is not in the memory: files that share a second with the
last one seen are all found (the comparison is ``>=``, the memory tells them apart), and so
is a file that appears with an earlier time than files already seen (a multipart upload
completes with its start time; a listing races a writer) as long as it is within ``lookback``
of the newest file seen. ``since`` trails the newest file seen by ``lookback``, and never
passes a file left over for a later tick.

A tick requests at most ``max_runs_per_tick`` runs of at most ``max_files_per_run`` files;
files left over stay new, oldest first, for the next tick. On its first tick for a table the
sensor only takes note of what is there: what landed before it ran is ingested by ``make run``
or the schedule (the job lists the folders in full, and its ledger ingests each file once).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from lakehouse_dagster.declarations.table import Registry
from lakehouse_dagster.defs.landing import (
    DEFAULT_LOOKBACK,
    DEFAULT_MAX_FILES_PER_RUN,
    DEFAULT_MAX_RUNS_PER_TICK,
    Memory,
    landed_at,
    routes,
    run_requests,
)
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.layout import LakeLayout

NAME = "landing_files_sensor"


def landing_sensor(
    registry: Registry,
    layout: LakeLayout,
    job: dg.UnresolvedAssetJobDefinition,
    *,
    default_status: dg.DefaultSensorStatus,
    minimum_interval_seconds: int = 30,
    max_runs_per_tick: int = DEFAULT_MAX_RUNS_PER_TICK,
    max_files_per_run: int = DEFAULT_MAX_FILES_PER_RUN,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> dg.SensorDefinition:
    watched = routes(registry, layout)

    @dg.sensor(
        name=NAME,
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="List the landing folders of "
        + ", ".join(str(route.table.name) for route in watched)
        + " and ingest the files new since the last tick (run config `files`).",
    )
    def landing_files(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = datetime.now(UTC)
        cursor = json.loads(context.cursor) if context.cursor else {}
        budget = max_runs_per_tick
        requests: list[dg.RunRequest] = []
        for route in watched:
            name = str(route.table.name)
            try:
                listed = files.list_files(route.folder, route.suffix, layout.aws)
            except files.UnrecordableNameError as error:  # this table waits; the others go on
                context.log.error("%s: %s", name, error)
                continue
            state = cursor.get(name)
            if state is None:
                cursor[name] = _first_look(listed, now, lookback)
                context.log.info(
                    "%s: first look, %d file(s) already there are left to the job", name, len(listed)
                )
                continue
            since = datetime.fromisoformat(state["since"])
            memory = Memory.from_json(state["seen"])
            new = sorted(
                (f for f in listed if landed_at(f, now) >= since and not memory.knows(f)),
                key=lambda f: (landed_at(f, now), f.uri),
            )
            taken = new[: budget * max_files_per_run]
            batch = run_requests(route.table, taken, max_files_per_run)
            budget -= len(batch)
            requests += batch
            memory.remember(taken, now)
            # A clock ahead (a copy keeping a future modification time) must not move ``since``
            # past the files that land after it: it never trails ``now`` by less than the lookback.
            newest = min(max((landed_at(f, now) for f in taken), default=now), now)
            moved = newest - lookback
            if len(taken) < len(new):
                # Nor past a file left for the next tick (the tick's runs went to other tables).
                moved = min(moved, landed_at(new[len(taken)], now))
            if moved > since:
                since = moved
            memory.forget_before(since)
            cursor[name] = {"since": since.isoformat(), "seen": memory.to_json()}
            if new:
                context.log.info(
                    "%s: %d new file(s), %d requested in %d run(s)", name, len(new), len(taken), len(batch)
                )
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return landing_files


def _first_look(listed: list[files.LandingFile], now: datetime, lookback: timedelta) -> dict:
    newest = min(max((landed_at(f, now) for f in listed), default=now), now)
    since = newest - lookback
    memory = Memory({})
    memory.remember([f for f in listed if landed_at(f, now) >= since], now)
    return {"since": since.isoformat(), "seen": memory.to_json()}
