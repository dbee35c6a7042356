"""Which files are new: the first of the two steps of ingestion.

Candidates come from listing a source's folder (Auto Loader's directory listing) or are
named by the caller (a file event, a backfill of a prefix). The ledger decides:

- never seen, or released by a failed batch: **new**;
- claimed by a batch still open: left to that batch;
- ingested, and unchanged: **known** (a touched file whose bytes are the same is unchanged);
- ingested, and its content changed since: **changed**, reported and not read again
  (exactly once per path, as Auto Loader without ``allowOverwrites``);
- empty or rejected, and replaced since: **new again** (nothing of it was ingested).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from lakehouse_dagster.ingest.ledger import (
    CLAIMED,
    EMPTY,
    INGESTED,
    REJECTED,
    RELEASED,
    Claim,
    FileState,
    IngestLedger,
)
from lakehouse_dagster.ingest.sources import FileSource
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.files import LandingFile, is_hidden
from lakehouse_dagster.lake.layout import LakeLayout, is_remote


class FileOutsideSourceError(ValueError):
    """A file named for ingestion is not under the source's folder, or is hidden."""


class MissingFilesError(FileNotFoundError):
    """Files named for ingestion do not exist; nothing was ingested."""


@dataclass
class Discovery:
    new: list[Claim] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    known: int = 0
    in_open_batches: int = 0


def list_candidates(layout: LakeLayout, source: FileSource) -> list[LandingFile]:
    """Every visible file of the source's folder."""
    return files.list_files(layout.landing_uri(source.folder), source.suffix, layout.aws)


def named_candidates(
    layout: LakeLayout, source: FileSource, uris: Sequence[str], *, skip_missing: bool = False
) -> tuple[list[LandingFile], list[str]]:
    """The named files, which must be visible and lie under the source's folder, and exist
    (with ``skip_missing``, those that do not are returned apart)."""
    folder = layout.landing_uri(source.folder).rstrip("/") + "/"
    outside = [uri for uri in uris if not uri.startswith(folder) or is_hidden(uri[len(folder) :])]
    if outside:
        raise FileOutsideSourceError(
            f"{len(outside)} file(s) are not visible files under {folder}, e.g. {outside[0]}; "
            "nothing was ingested"
        )
    spelled_otherwise = [uri for uri in uris if not _canonical(uri)]
    if spelled_otherwise:
        uri = spelled_otherwise[0]
        raise FileOutsideSourceError(
            f"{len(spelled_otherwise)} file(s) are named by a path the folder's listing would spell "
            f"otherwise, e.g. {uri} (listed as {posixpath.normpath(uri)}): a file is ingested once per "
            "path, so name it as listed; nothing was ingested"
        )
    found, missing = files.stat_files(dict.fromkeys(uris), layout.aws)
    if missing and not skip_missing:
        raise MissingFilesError(
            f"{len(missing)} file(s) named for ingestion do not exist, e.g. {missing[0]}; "
            "nothing was ingested"
        )
    return found, missing


def _canonical(uri: str) -> bool:
    """A local path as the folder's listing spells it (no doubled ``/``, ``.`` segment or trailing
    ``/``). An object store's key is what it is: ``a//b`` and ``a/b`` are two objects there."""
    return is_remote(uri) or posixpath.normpath(uri) == uri


def discover(ledger: IngestLedger, candidates: Sequence[LandingFile]) -> Discovery:
    states = ledger.states(landed.uri for landed in candidates)
    found = Discovery()
    for landed in candidates:
        state = states.get(landed.uri)
        verdict = _verdict(landed, state)
        if verdict == "new":
            found.new.append(Claim(landed, 0 if state is None else state.attempt + 1))
        elif verdict == "changed":
            found.changed.append(landed.uri)
        elif verdict == "open":
            found.in_open_batches += 1
        else:
            found.known += 1
    return found


def _verdict(landed: LandingFile, state: FileState | None) -> str:
    if state is None or state.event == RELEASED:
        return "new"
    if state.event == CLAIMED:
        return "open"
    if landed.fingerprint == state.fingerprint:
        return "known"
    if state.outcome in (EMPTY, REJECTED):
        return "new"
    if state.outcome == INGESTED and _same_content(landed, state):
        return "known"
    return "changed"


def _same_content(landed: LandingFile, state: FileState) -> bool:
    """A local file whose metadata changed (touched, copied over with the same bytes) is the
    same file if its bytes are. S3's fingerprint is its ETag, a hash of the content already."""
    if state.content_hash is None or landed.uri.startswith("s3://"):
        return False
    try:
        return files.content_hash(files.read_bytes(landed.uri)) == state.content_hash
    except FileNotFoundError:
        return True
