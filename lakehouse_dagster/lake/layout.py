"""Table naming and storage layout.

Contract: table ``layer.table`` is a Delta table at ``<layer root>/<table>``, where the layer
root is ``<lake root>/<layer>`` unless the deployment gives that layer a root of its own
(production keeps each zone in its own bucket). Roots are local paths or ``s3://`` URIs.
With a catalog (Unity Catalog in production) the table is also ``<catalog>.<layer>.<table>``.
"""

from __future__ import annotations

import os
import posixpath
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import combinations

from lakehouse_dagster.aws.clients import AwsConfig

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
LAYERS = ("bronze", "silver", "gold", "quarantine", "ops", "ml")
#: What a lake root may contain. The embedded engine URL-encodes a space, ``#`` or ``%`` in a
#: path and then writes data and log to two different folders, and a quote or backtick would
#: end the path inside SQL: such roots are refused when the settings are read.
_SAFE_ROOT = re.compile(r"^[A-Za-z0-9_./:@+=,~-]+$")


class UnsafeRootError(ValueError):
    """A lake root holds a character the engine cannot round-trip; the message names it."""


#: The folder of the staging area under the lake root (see ``LakeLayout.staging_root``).
STAGING_FOLDER = "_staging"
#: The areas of a layout that must not share folders: the landing zone, each layer, the staging area.
LANDING_AREA, STAGING_AREA = "landing", "staging"


class OverlappingRootsError(ValueError):
    """Two areas of a layout (the landing zone, a layer, the staging area) share folders: one
    would write over the other's files. ``describe`` words it with the settings' own names."""

    def __init__(self, area: str, root: str, other: str, other_root: str, *, same: bool) -> None:
        self.area, self.root, self.other, self.other_root, self.same = area, root, other, other_root, same
        super().__init__(self.describe(_area_label))

    def describe(self, name: Callable[[str], str]) -> str:
        """The message, ``name(area)`` naming each area (a setting, an environment variable)."""
        first, second = name(self.area), name(self.other)
        if self.same:
            where = f"{first} and {second} both resolve to {self.root}"
        else:
            where = (
                f"{first} ({self.root}) is inside {second} ({self.other_root}), in a folder it may "
                "write to (one whose name starts with '_' never is)"
            )
        return f"{where}: every layer, the landing zone and the staging area need a folder of their own"


def _area_label(area: str) -> str:
    return {LANDING_AREA: "the landing zone", STAGING_AREA: "the staging area"}.get(area, f"the {area} root")


@dataclass(frozen=True, order=True)
class TableName:
    layer: str
    table: str

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"unknown layer {self.layer!r} in table {self}; layers are {', '.join(LAYERS)}")
        if not _IDENTIFIER.match(self.table):
            raise ValueError(f"table name {self.table!r} must be lower-case letters, digits and underscores")

    @classmethod
    def parse(cls, name: str) -> TableName:
        layer, dot, table = name.partition(".")
        if not dot:
            raise ValueError(f"table name {name!r} must look like layer.table")
        return cls(layer, table)

    def __str__(self) -> str:
        return f"{self.layer}.{self.table}"

    @property
    def key_path(self) -> list[str]:
        """The Dagster asset key path: the layer, then the table's full name
        (``["silver", "silver.customers"]``). The UI labels an asset with the last part of its
        key, so every label is the table's own name, unique across layers."""
        return [self.layer, str(self)]

    @property
    def op_name(self) -> str:
        """The name of the step that writes the table (``silver__customers``): the key for its
        run config (``ops: silver__customers: config: ...``) and its lines in the run log."""
        return f"{self.layer}__{self.table}"


def is_remote(uri: str) -> bool:
    return "://" in uri


def normalize_root(root: str) -> str:
    """Absolute local paths (a run may change directory); URIs unchanged; no trailing slash."""
    return root.rstrip("/") if is_remote(root) else os.path.abspath(os.path.expanduser(root))


def check_root(root: str, setting: str) -> str:
    """``root`` if every character of it round-trips through the engine and SQL; else an error
    that names the setting and the characters."""
    if not _SAFE_ROOT.match(root):
        bad = sorted({c for c in root if not _SAFE_ROOT.match(c)})
        shown = ", ".join(repr(c) for c in bad)
        raise UnsafeRootError(
            f"{setting}={root!r} contains {shown}: lake roots may hold only ASCII letters, digits and "
            "_ . / : @ + = , ~ - (the engine URL-encodes other characters and would write the "
            "tables somewhere else). Choose another folder."
        )
    return root


def _location(root: str) -> tuple[str, tuple[str, ...]]:
    """Where ``root`` is, for comparing roots: a local path made absolute and free of ``..``, or
    a URI's scheme and bucket with its key prefix split on ``/`` (``s3://b/x/`` is ``s3://b/x``)."""
    if root.startswith("file:"):  # file:///x and file:/x
        root = "/" + root.removeprefix("file:").lstrip("/")
    if not is_remote(root):  # symbolic links resolved: two names of one folder are one folder
        return "", tuple(part for part in os.path.realpath(normalize_root(root)).split(os.sep) if part)
    scheme, _, rest = root.partition("://")
    bucket, _, key = rest.partition("/")
    scheme = {"s3a": "s3", "s3n": "s3"}.get(scheme.lower(), scheme.lower())
    key = posixpath.normpath("/" + key)
    return f"{scheme}://{bucket}", tuple(part for part in key.split("/") if part)


def _may_write_to(area: str, folder: str) -> bool:
    """Whether ``area`` may use a folder of its own named ``folder``: a layer its tables and the
    staging area its batches (both named like identifiers; ``_serving_staging`` and other
    ``_``-folders are never tables), the landing zone any source folder but the lake's own names
    (it may be the lake root itself)."""
    if area == LANDING_AREA:
        return not (folder in LAYERS or folder.startswith("_"))
    return bool(_IDENTIFIER.match(folder))


def find_overlap(areas: Mapping[str, str]) -> OverlappingRootsError | None:
    """The first two of ``areas`` (area -> root) that share folders: the same folder, or one
    inside a folder the other may write to. Production nests the lake root in the silver bucket
    (``s3://silver/_lakehouse``): no silver table can be called ``_lakehouse``, so that is fine."""
    located = {area: _location(root) for area, root in areas.items()}
    for first, second in combinations(areas, 2):
        for inner, outer in ((first, second), (second, first)):
            (base, parts), (outer_base, outer_parts) = located[inner], located[outer]
            depth = len(outer_parts)
            if base != outer_base or parts[:depth] != outer_parts:
                continue
            same = len(parts) == depth
            if same or _may_write_to(outer, parts[depth]):
                return OverlappingRootsError(inner, areas[inner], outer, areas[outer], same=same)
    return None


def join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(part.strip("/") for part in parts)])


def quote_identifier(name: str) -> str:
    """A column or table name quoted for Spark SQL, whatever characters it holds."""
    return "`" + name.replace("`", "``") + "`"


def sql_string(value: str) -> str:
    """A Spark SQL string literal of ``value``: Spark reads ``'it''s'`` as ``its`` (two adjacent
    literals), so quotes and backslashes are escaped with a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_literal(value: date | int | str) -> str:
    """A Spark SQL literal of a partition value: a date, a whole number or a string."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return sql_string(value)
    raise TypeError(f"no SQL literal for a partition value of type {type(value).__name__}: {value!r}")


@dataclass(frozen=True)
class LakeLayout:
    """Where the lake and the landing zone (files and stream) are."""

    root: str
    landing: str
    layer_roots: Mapping[str, str] = field(default_factory=dict)
    #: Unity Catalog catalog in which tables are registered as ``<catalog>.<layer>.<table>``.
    catalog: str | None = None
    #: How to reach S3 landing files and the stream (a moto endpoint locally).
    aws: AwsConfig = field(default_factory=AwsConfig)
    #: The Kinesis stream that stream sources read, unless a source names its own.
    landing_stream: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.layer_roots) - set(LAYERS)
        if unknown:
            raise ValueError(f"layer roots given for unknown layers: {sorted(unknown)}")
        check_root(self.root, "lake root")
        for layer, root in self.layer_roots.items():
            check_root(root, f"{layer} root")
        overlap = find_overlap(self.areas())
        if overlap is not None:
            raise overlap

    def areas(self) -> dict[str, str]:
        """The root of each area that must keep to its own folders: the landing zone, every
        layer, the staging area."""
        layers = {layer: self.layer_root(layer) for layer in LAYERS}
        return {LANDING_AREA: self.landing, **layers, STAGING_AREA: join_uri(self.root, STAGING_FOLDER)}

    def layer_root(self, layer: str) -> str:
        return self.layer_roots.get(layer) or join_uri(self.root, layer)

    def table_uri(self, name: TableName) -> str:
        return join_uri(self.layer_root(name.layer), name.table)

    def landing_uri(self, *parts: str) -> str:
        return join_uri(self.landing, *parts)

    def staging_root(self, name: TableName) -> str:
        """Scratch space for batches being written to ``name``."""
        return join_uri(self.root, STAGING_FOLDER, f"{name.layer}__{name.table}")

    def staging_uri(self, name: TableName, batch_id: str) -> str:
        """A new folder for one writer of batch ``batch_id``: two writers of the same batch (a
        run completing an open batch beside another) never write, adopt or delete each other's
        files."""
        return join_uri(self.staging_root(name), f"{batch_id}-{uuid.uuid4().hex[:8]}")

    def catalog_name(self, name: TableName) -> str:
        """``catalog.layer.table`` with a catalog, else ``layer.table``."""
        return f"{self.catalog}.{name}" if self.catalog else str(name)

    @classmethod
    def local(cls, root: str, landing: str | None = None) -> LakeLayout:
        root = normalize_root(root)
        return cls(root=root, landing=normalize_root(landing) if landing else join_uri(root, "landing"))
