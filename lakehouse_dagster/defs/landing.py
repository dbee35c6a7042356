"""From landed files to runs of the bronze tables they feed: what both file sensors share.

- **Routes**: a table fed by files (``Table.source``) watches ``<LAKEHOUSE_LANDING>/<folder>/``;
  a file belongs to the table whose folder holds it, unless it is hidden or has another suffix.
- **Runs**: the files of a table are batched, ``max_files_per_run`` a run, and each run names
  its files in its run config (``files``), with a run key from the files' URIs, fingerprints
  (ETags on S3) and modification times: the same files requested again give the same key, which
  Dagster does not run twice, and a file put back after it was deleted gets a run of its own. A
  file deleted between the request and the run is skipped and reported (``skip_missing_files``),
  not a failure that would keep the run's other files out.
- **Memory**: what was requested recently, as digests of (URI, fingerprint, time) with the time the
  file landed, kept for ``lookback``; a file seen again (a redelivered event, a second listing)
  is not requested again. Bounded: older entries are forgotten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from lakehouse_dagster.declarations.table import Registry, Table
from lakehouse_dagster.lake.files import LandingFile, is_hidden
from lakehouse_dagster.lake.layout import LakeLayout

DEFAULT_MAX_FILES_PER_RUN = 1000
DEFAULT_MAX_RUNS_PER_TICK = 5
DEFAULT_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class Route:
    table: Table
    #: The folder's URI, ending with ``/``.
    folder: str

    @property
    def suffix(self) -> str:
        assert self.table.source is not None
        return self.table.source.suffix

    def accepts(self, uri: str) -> bool:
        """A visible file of the table's suffix under its folder."""
        relative = uri[len(self.folder) :]
        return uri.startswith(self.folder) and relative.endswith(self.suffix) and not is_hidden(relative)


def routes(registry: Registry, layout: LakeLayout) -> list[Route]:
    return [
        Route(table, layout.landing_uri(table.source.folder).rstrip("/") + "/")
        for table in registry.tables
        if table.source is not None
    ]


def route_of(found: Sequence[Route], uri: str) -> Route | None:
    """The route whose folder holds ``uri`` (the deepest, should folders nest)."""
    holding = [route for route in found if uri.startswith(route.folder)]
    return max(holding, key=lambda route: len(route.folder), default=None)


def file_identity(landed: LandingFile) -> str:
    """A file as the sensors tell files apart: its URI, fingerprint and modification time. The
    time tells a file put back with the same bytes (a new object, the same ETag) from the one
    it replaced, which may never have been ingested (deleted before its run)."""
    return f"{landed.uri}\0{landed.fingerprint}\0{landed.modified_at.isoformat()}"


def file_digest(landed: LandingFile) -> str:
    return hashlib.sha256(file_identity(landed).encode()).hexdigest()[:24]


@dataclass
class Memory:
    """Digests of the files requested recently, with when each landed (epoch seconds)."""

    seen: dict[str, float]

    @classmethod
    def from_json(cls, raw: dict | None) -> Memory:
        return cls(dict(raw or {}))

    def to_json(self) -> dict[str, float]:
        return self.seen

    def knows(self, landed: LandingFile) -> bool:
        return file_digest(landed) in self.seen

    def remember(self, files: Iterable[LandingFile], now: datetime, *, as_seen_now: bool = False) -> None:
        """Remember ``files`` as of when they landed (a listing), or as of ``now`` (an event
        sensor: the lookback then counts from the last time a message named the file)."""
        for landed in files:
            at = now if as_seen_now else landed_at(landed, now)
            self.seen[file_digest(landed)] = at.timestamp()

    def forget_before(self, moment: datetime) -> None:
        cutoff = moment.timestamp()
        self.seen = {digest: at for digest, at in self.seen.items() if at >= cutoff}


def landed_at(landed: LandingFile, default: datetime) -> datetime:
    return landed.landed_at or landed.modified_at or default


def run_requests(table: Table, files: Sequence[LandingFile], max_files_per_run: int) -> list[dg.RunRequest]:
    """Runs of ``table`` naming ``files``, ``max_files_per_run`` at most each."""
    key = dg.AssetKey(table.name.key_path)
    requests = []
    for start in range(0, len(files), max_files_per_run):
        batch = sorted(files[start : start + max_files_per_run], key=lambda landed: landed.uri)
        digest = hashlib.sha256("\n".join(file_identity(landed) for landed in batch).encode()).hexdigest()[
            :32
        ]
        requests.append(
            dg.RunRequest(
                run_key=f"{table.name}:{digest}",
                asset_selection=[key],
                run_config={
                    "ops": {
                        table.name.op_name: {
                            "config": {"files": [landed.uri for landed in batch], "skip_missing_files": True}
                        }
                    }
                },
                tags={"lakehouse/files": str(len(batch)), "lakehouse/table": str(table.name)},
            )
        )
    return requests


def landing_files_job(registry: Registry) -> dg.UnresolvedAssetJobDefinition:
    """The bronze tables fed by files: the file sensors' runs each select one of them."""
    return dg.define_asset_job(
        "landing_files_job",
        selection=dg.AssetSelection.assets(
            *(dg.AssetKey(table.name.key_path) for table in registry.tables if table.source is not None)
        ),
        description="Ingest the landed files that a run names (requested by the file sensors).",
    )
