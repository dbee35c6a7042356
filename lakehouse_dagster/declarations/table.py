"""Table declarations: everything about a table, in one place.

A ``Table`` says where its rows come from (landing files, change data, or a build function
over other tables), its expectations and checks, its partitions, freshness, automation,
owners and column docs. A ``Domain`` groups a business domain's tables and gives them
defaults. The ``Registry`` holds the domains of a code location and is the only thing the
rest of the code reads: assets, jobs, schedules, sensors and the unit runner all derive
from it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from lakehouse_dagster.cdc.spec import AutoCdc
from lakehouse_dagster.cdc.transforms import END_AT, START_AT
from lakehouse_dagster.declarations.column_docs import FRAMEWORK_COLUMN_DOCS
from lakehouse_dagster.declarations.maintenance import DEFAULT_MAINTENANCE, Maintenance
from lakehouse_dagster.declarations.names import check_among, close_matches, enum_value, names_tuple
from lakehouse_dagster.declarations.timing import Automation, DailyPartitions, Freshness, Job
from lakehouse_dagster.ingest.sources import (
    METADATA_COLUMNS,
    NO_RESCUED_DATA,
    REJECTED_FILES_CHECK,
    FileSource,
    SchemaEvolutionMode,
)
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.checks import PRIMARY_KEY_CHECK, CheckSpec, expectation_check_specs
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.quality.table_checks import TableCheck
from lakehouse_dagster.serving.spec import ServedTable, Serving
from lakehouse_dagster.stream.sources import METADATA_COLUMNS as STREAM_METADATA_COLUMNS
from lakehouse_dagster.stream.sources import RECORD_COLUMNS, StreamSource

if TYPE_CHECKING:
    from lakehouse_dagster.units.context import UnitContext
    from lakehouse_dagster.units.report import UnitResult

#: A table's own build: reads its inputs, transforms, writes, and returns its result.
Build = Callable[["UnitContext"], "UnitResult"]


@dataclass(frozen=True)
class Location:
    """Where something is declared in the source code: the UI links assets to it."""

    file: str
    line: int


def _caller_location() -> Location | None:
    """The first frame outside this module: the line that declares the table."""
    frame = sys._getframe(1)
    while frame is not None and (
        frame.f_globals.get("__name__") == __name__ or frame.f_code.co_filename == "<string>"
    ):
        frame = frame.f_back
    return Location(frame.f_code.co_filename, frame.f_lineno) if frame is not None else None


@dataclass(frozen=True)
class Table:
    """One table: where its rows come from, what they must satisfy, and how it is run.

    Exactly one of ``source`` (bronze from landing files), ``stream`` (bronze from a Kinesis
    stream, one micro-batch at a time), ``cdc`` (applied from change data) and ``build`` (a
    function of the unit's context) says where the rows come from.
    """

    name: TableName
    description: str
    source: FileSource | None = None
    stream: StreamSource | None = None
    cdc: AutoCdc | None = None
    build: Build | None = None
    #: Tables the build reads (sources and CDC tables derive theirs).
    inputs: tuple[TableName, ...] = ()
    #: Row expectations, evaluated in one pass before the write (warn / drop / fail).
    expectations: tuple[Expectation, ...] = ()
    #: Columns that identify a row: checked present and unique after every write.
    primary_key: tuple[str, ...] = ()
    #: Table-level checks computed after every write (referential integrity, row counts, ...).
    checks: tuple[TableCheck, ...] = ()
    partitions: DailyPartitions | None = None
    #: The table depends on the run's logical date (its ``as_of_date``).
    uses_as_of_date: bool = False
    #: None: the domain's (or the registry's) default.
    freshness: Freshness | None = None
    automation: Automation | None = None
    owners: tuple[str, ...] = ()
    #: Load the table into the warehouse as ``serving.<name>`` (see ``Serving``).
    serving: Serving | None = None
    #: Compaction, Z-order, VACUUM and row retention; None: the registry's default.
    maintenance: Maintenance | None = None
    #: Column -> description.
    column_docs: Mapping[str, str] = field(default_factory=dict)
    #: Output column -> the input columns it is computed from.
    column_lineage: Mapping[str, tuple[tuple[TableName, str], ...]] = field(default_factory=dict)
    declared_at: Location | None = field(default_factory=_caller_location, compare=False, repr=False)

    def __post_init__(self) -> None:
        kinds = [kind for kind in (self.source, self.stream, self.cdc, self.build) if kind is not None]
        if len(kinds) != 1:
            raise ValueError(f"{self.name}: declare exactly one of source, stream, cdc and build")
        self._coerce_settings()
        if self.source is not None:
            self._check_file_source(self.source)
        columns = self.declared_columns()
        if columns is not None:
            check_among(f"{self.name}: primary_key", self.primary_key, columns)
        if self.source is not None or self.stream is not None:
            if any(e.action is Action.DROP for e in self.expectations):
                raise ValueError(f"{self.name}: bronze keeps every landed row; its expectations warn or fail")
            if NO_RESCUED_DATA not in self.expectations:
                object.__setattr__(self, "expectations", (NO_RESCUED_DATA, *self.expectations))
        names = [spec.name for spec in self.check_specs()]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: check names must be unique, got {names}")
        if self.maintenance is not None:
            self._check_maintenance(self.maintenance)

    def _coerce_settings(self) -> None:
        """Tuples given as a plain string are refused, enums given as strings become enums (they
        are compared with ``is``)."""
        object.__setattr__(self, "primary_key", names_tuple(self.primary_key, f"{self.name}: primary_key"))
        object.__setattr__(self, "owners", names_tuple(self.owners, f"{self.name}: owners", "owners"))
        if isinstance(self.inputs, (str, TableName)):
            raise ValueError(f"{self.name}: inputs must be a tuple of table names, got {self.inputs!r}")
        if self.automation is not None:
            automation = enum_value(Automation, self.automation, f"{self.name}: automation=")
            object.__setattr__(self, "automation", automation)

    def _check_file_source(self, source: FileSource) -> None:
        """The source's settings name its declared columns (when it declares them)."""
        required = names_tuple(source.required_columns, f"{self.name}: required_columns")
        if required != source.required_columns:
            object.__setattr__(self, "source", replace(source, required_columns=required))
        if not source.columns:
            return
        for setting, named in (("required_columns", required), ("column_types", tuple(source.column_types))):
            if source.schema_evolution is SchemaEvolutionMode.ADD_NEW_COLUMNS:
                # A column the files add later may be named here: only a near miss is a typo.
                named = tuple(n for n in named if n in source.columns or close_matches(n, source.columns))
            check_among(f"{self.name}: FileSource.{setting}", named, source.columns)

    def declared_columns(self) -> tuple[str, ...] | None:
        """The columns the declaration itself says the table has, None where it does not (a
        build's columns are its code's, a file source's without declared columns its files')."""
        if self.source is not None:
            return (*self.source.columns, *METADATA_COLUMNS) if self.source.columns else None
        if self.stream is not None:
            return (*RECORD_COLUMNS, *STREAM_METADATA_COLUMNS)
        if self.cdc is not None:
            config, partition = self.cdc.config, self.cdc.partition
            history = (START_AT, END_AT) if config.scd_type == 2 else ()
            return (*config.output_columns, *history, *((partition.column,) if partition else ()))
        return None

    def _check_maintenance(self, maintenance: Maintenance) -> None:
        if maintenance.retention.raw_rows_days is not None and self.source is None:
            raise ValueError(
                f"{self.name}: Retention.raw_rows_days applies to bronze tables fed by files; "
                "other tables are rebuilt from their inputs"
            )
        if maintenance.retention.quarantine_days is not None and not self.quarantines:
            raise ValueError(
                f"{self.name}: Retention.quarantine_days, but no drop expectation quarantines its rows"
            )
        if self.partitions is not None and self.partitions.column in maintenance.zorder_by:
            raise ValueError(
                f"{self.name}: cannot Z-order by {self.partitions.column!r}, the partition column "
                "(data is already laid out by it)"
            )
        columns = self.declared_columns()
        if columns is not None:
            check_among(f"{self.name}: Maintenance.zorder_by", maintenance.zorder_by, columns)

    @property
    def partitioned(self) -> bool:
        return self.partitions is not None

    @property
    def quarantines(self) -> bool:
        """Whether it keeps rows out in ``quarantine.<table>`` (it has a ``drop`` expectation)."""
        return any(e.action is Action.DROP for e in self.expectations)

    @property
    def served(self) -> ServedTable | None:
        """The warehouse table it is loaded into, if it is served."""
        return ServedTable.of(self) if self.serving is not None else None

    @property
    def upstream(self) -> tuple[TableName, ...]:
        """Every table read: the inputs, the CDC source, and what the checks read."""
        own = (self.cdc.source,) if self.cdc is not None else ()
        needed = [table for check in self.checks for table in check.needs]
        return tuple(dict.fromkeys([*own, *self.inputs, *needed]))

    def check_specs(self) -> tuple[CheckSpec, ...]:
        """Every check the table reports: its checks, its expectations, its primary key, and the
        checks its kind adds (bronze reports the files it rejected)."""
        specs = [*(check.spec for check in self.checks), *expectation_check_specs(self.expectations)]
        if self.source is not None:
            specs.append(REJECTED_FILES_CHECK)
        if self.primary_key:
            specs.append(PRIMARY_KEY_CHECK.with_description(self.primary_key))
        return tuple(specs)

    def documented_columns(self) -> dict[str, str]:
        """The docs of every column the table may have: the framework's columns (ingestion
        metadata, say), then its own declared ones."""
        return {**FRAMEWORK_COLUMN_DOCS, **self.column_docs}

    def code_locations(self) -> list[tuple[str, Location]]:
        """The declaration, then the build function, as (label, location)."""
        found = [("declaration", self.declared_at)] if self.declared_at else []
        function = getattr(self.build, "func", self.build)  # a functools.partial's function
        code = getattr(function, "__code__", None)
        if code is not None:
            found.append((f"build: {function.__name__}", Location(code.co_filename, code.co_firstlineno)))
        return found


@dataclass(frozen=True)
class Domain:
    """A business domain's tables (a Dagster group), with defaults for its tables."""

    name: str
    description: str
    tables: tuple[Table, ...]
    owners: tuple[str, ...] = ()
    freshness: Freshness | None = None


@dataclass(frozen=True)
class Registry:
    """The domains of a code location, with the defaults every table falls back to."""

    domains: tuple[Domain, ...]
    #: The job of every table that is not partitioned.
    default_job: Job
    default_freshness: Freshness
    #: What a table's maintenance does where its declaration says nothing (weekly, keep every row).
    default_maintenance: Maintenance = DEFAULT_MAINTENANCE

    def __post_init__(self) -> None:
        domains = [domain.name for domain in self.domains]
        duplicates = sorted({name for name in domains if domains.count(name) > 1})
        if duplicates:
            raise ValueError(f"domains declared twice: {', '.join(duplicates)}")
        names = [table.name for table in self.tables]
        duplicates = sorted({str(n) for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tables declared twice: {', '.join(duplicates)}")
        known = set(names)
        for table in self.tables:
            missing = [str(name) for name in table.upstream if name not in known]
            if missing:
                raise ValueError(f"{table.name} reads {', '.join(missing)}, which no domain declares")
        for table in self.tables:
            if table.cdc is not None:
                self._check_cdc_source(table, table.cdc)
        quarantined = [
            t.name.table for t in self.tables if any(e.action is Action.DROP for e in t.expectations)
        ]
        clashes = sorted({name for name in quarantined if quarantined.count(name) > 1})
        if clashes:
            raise ValueError(f"two tables would share quarantine.{clashes[0]}")
        served = [t.served.name for t in self.tables if t.served is not None]
        clashes = sorted({name for name in served if served.count(name) > 1})
        if clashes:
            raise ValueError(f"two tables would be served as serving.{clashes[0]}")
        self._check_raw_retention()
        self._check_partitionings()

    def _check_cdc_source(self, table: Table, cdc: AutoCdc) -> None:
        """Changes are applied by landed batch and position: the source is a bronze table fed by
        files, and the config's columns are among the ones it declares (if it declares them)."""
        source = self.table(cdc.source)
        if source.source is None:
            raise ValueError(
                f"{table.name}: cdc reads {cdc.source}, which is not a bronze table fed by files "
                "(FileSource): changes are applied by landed batch and file position"
            )
        columns = source.declared_columns()
        if columns is not None:
            for setting in ("columns", "sequence_by"):
                named = getattr(cdc.config, setting)
                check_among(f"{table.name}: CdcConfig.{setting}", named, columns, f"columns of {cdc.source}")

    def _check_partitionings(self) -> None:
        """Each partitioning has a name and a job of its own, other than the default job, and
        makes its days from a declared table."""
        by_name: dict[str, DailyPartitions] = {}
        by_job: dict[str, DailyPartitions] = {}
        for partitions in self.partitionings():
            job = partitions.job
            if job.name == self.default_job.name:
                raise ValueError(
                    f"partitioning {partitions.name}: its job {job.name} is the registry's default job "
                    "(the job of the tables that are not partitioned); give it a job of its own"
                )
            other = by_name.setdefault(partitions.name, partitions)
            if other is not partitions:
                raise ValueError(
                    f"two partitionings are named {partitions.name}: "
                    f"{_describe(other)} and {_describe(partitions)}"
                )
            other = by_job.setdefault(job.name, partitions)
            if other is not partitions:
                raise ValueError(
                    f"partitionings {other.name} and {partitions.name} share the job {job.name}: "
                    "a job runs one partitioning"
                )
            if partitions.days_from is not None:
                self._check_days_from(partitions, *partitions.days_from)

    def _check_days_from(self, partitions: DailyPartitions, name: TableName, column: str) -> None:
        tables = [t for t in self.tables if t.name == name]
        if not tables:
            known = [str(t.name) for t in self.tables]
            matches = close_matches(str(name), known)
            hint = f" (did you mean {' or '.join(matches)}?)" if matches else ""
            raise ValueError(
                f"partitioning {partitions.name}: days_from reads {name}, which no domain declares{hint}"
            )
        columns = tables[0].declared_columns()
        if columns is not None:
            check_among(
                f"partitioning {partitions.name}: days_from", (column,), columns, f"columns of {name}"
            )

    def _check_raw_retention(self) -> None:
        """Expiring bronze rows is refused where a CDC table reads them: it recomputes a touched
        key from the key's changes still in bronze, so the expired ones would stop counting."""
        retained = {
            t.name
            for t in self.tables
            if t.maintenance is not None and t.maintenance.retention.raw_rows_days is not None
        }
        for table in self.tables:
            if table.cdc is None or table.cdc.source not in retained:
                continue
            loss = (
                "lose the versions of a key whose older changes expired, the next time the key changes"
                if table.cdc.config.scd_type == 2
                else "take a late change older than the expired ones as the key's latest: the row would "
                "go back to an older state, or a key they deleted come back"
            )
            raise ValueError(
                f"{table.cdc.source}: raw-row retention would make {table.name} "
                f"(SCD type {table.cdc.config.scd_type}) {loss}"
            )

    @property
    def tables(self) -> tuple[Table, ...]:
        return tuple(table for domain in self.domains for table in domain.tables)

    def table(self, name: str | TableName) -> Table:
        wanted = TableName.parse(name) if isinstance(name, str) else name
        for table in self.tables:
            if table.name == wanted:
                return table
        known = ", ".join(str(table.name) for table in self.tables)
        raise KeyError(f"no table {wanted} in this code location; tables are: {known}")

    def domain_of(self, table: Table) -> Domain:
        return next(domain for domain in self.domains if table in domain.tables)

    def resolved(self) -> Iterator[tuple[Domain, Table]]:
        """Every table with the defaults applied: the one place they are applied."""
        maintenance = self.default_maintenance
        for domain in self.domains:
            for table in domain.tables:
                yield (
                    domain,
                    replace(
                        table,
                        freshness=table.freshness or domain.freshness or self.default_freshness,
                        owners=table.owners or domain.owners,
                        maintenance=(table.maintenance or Maintenance()).merged_over(maintenance),
                        declared_at=table.declared_at,
                    ),
                )

    def served(self) -> tuple[Table, ...]:
        """The tables loaded into the warehouse."""
        return tuple(t for t in self.tables if t.serving is not None)

    def partitionings(self) -> tuple[DailyPartitions, ...]:
        return tuple(dict.fromkeys(t.partitions for t in self.tables if t.partitions is not None))

    def follows_a_stream(self, table: Table) -> bool:
        """Fed by a stream, or built from such a table: kept fresh by the stream's micro-batch
        sensor and declarative automation, in no job (``make run`` needs no stream)."""
        return table.stream is not None or any(
            self.follows_a_stream(self.table(name)) for name in table.upstream
        )

    def job_tables(self, job: Job) -> tuple[Table, ...]:
        """The tables a job runs: a partitioning's tables, or every table not partitioned that
        does not follow a stream."""
        if job == self.default_job:
            return tuple(t for t in self.tables if t.partitions is None and not self.follows_a_stream(t))
        return tuple(t for t in self.tables if t.partitions is not None and t.partitions.job == job)

    def jobs(self) -> tuple[Job, ...]:
        return (self.default_job, *dict.fromkeys(p.job for p in self.partitionings()))

    def touching(self, partitions: DailyPartitions) -> tuple[Table, ...]:
        """The CDC tables whose changes touch ``partitions`` (their dates are refreshed)."""
        return tuple(
            t
            for t in self.tables
            if t.cdc is not None and t.cdc.touches is not None and t.cdc.touches.partitions == partitions
        )


def _describe(partitions: DailyPartitions) -> str:
    return f"(column {partitions.column}, start {partitions.start}, job {partitions.job.name})"


#: The code location's registry, as ``module:attribute``.
DEFAULT_REGISTRY = "lakehouse_dagster.registry:REGISTRY"


def load_registry(path: str = DEFAULT_REGISTRY) -> Registry:
    """The registry at ``module:attribute`` (a fork or a test can bring its own)."""
    import importlib

    module, _, attribute = path.partition(":")
    registry = getattr(importlib.import_module(module), attribute or "REGISTRY")
    if not isinstance(registry, Registry):
        raise TypeError(f"{path} is a {type(registry).__name__}, not a Registry")
    return registry
