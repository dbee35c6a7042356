"""An asset per declared table: a thin body that asks the runner to run the table's unit."""

# No ``from __future__ import annotations``: Dagster inspects the compute functions' annotations.

import re
import time
from collections.abc import Mapping, Sequence
from datetime import date

import dagster as dg
from dagster._config import PostProcessingError, ScalarUnion, Selector  # see AsOfDateConfig
from dagster._config.source import StringSourceType
from pydantic import Field, field_validator

from lakehouse_dagster.catalog.glue import CATALOGED_LAYERS, GlueCatalog
from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.declarations.timing import Automation
from lakehouse_dagster.defs.automation import eager_on_new_data
from lakehouse_dagster.defs.metrics import publish_metrics
from lakehouse_dagster.defs.partitions import describe_days, unbuilt_upstream_days
from lakehouse_dagster.defs.report import Events, dagster_events
from lakehouse_dagster.defs.schema_change import schema_change_spec
from lakehouse_dagster.defs.sensors import touched_reported_through
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.monitoring.metrics_sink import MetricsSink
from lakehouse_dagster.runners.base import UnitRunner
from lakehouse_dagster.units.request import PartitionWindow, UnitRequest, today_utc

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_as_of_date(value: str) -> date:
    """A run config's ``as_of_date`` as a date; a ValueError naming the field otherwise."""
    try:
        if _ISO_DATE.fullmatch(value):
            return date.fromisoformat(value)
        reason = "not in that format"
    except ValueError as error:
        reason = str(error)
    raise ValueError(f"as_of_date must be a date YYYY-MM-DD, got {value!r} ({reason})")


def check_as_of_date(value: str | None) -> str | None:
    """``value`` if it is a date YYYY-MM-DD, or empty (the default date)."""
    if value:
        parse_as_of_date(value)
    return value


class TableRunConfig(dg.Config):
    """Run configuration of a table's materialisation."""

    as_of_date: str | None = Field(
        default=None,
        description="The run's logical date (YYYY-MM-DD); default LAKEHOUSE_AS_OF_DATE, else today (UTC).",
    )
    files: list[str] | None = Field(
        default=None,
        description="Bronze tables fed by files: ingest exactly these landed files (default: all new ones).",
    )
    skip_missing_files: bool = Field(
        default=False,
        description="With files: skip and report a named file that no longer exists instead of failing "
        "the run (the file sensors' runs: a file deleted after it was seen is not to be ingested).",
    )

    @field_validator("as_of_date")
    @classmethod
    def _as_of_date_is_a_date(cls, value: str | None) -> str | None:
        return check_as_of_date(value)


class AsOfDateConfig(ScalarUnion):
    """A date YYYY-MM-DD, given as text or as ``{"env": VAR}`` (like any string of a run config),
    checked when Dagster validates the run config: a bad date refuses the run at launch, before
    any step runs (and writes). Dagster runs a Config class's validators only in the step; a
    config type's ``post_process`` (not public API) is its hook for checking a value at launch."""

    def __init__(self) -> None:
        super().__init__(scalar_type=str, non_scalar_schema=Selector({"env": str}), _key="LakehouseAsOfDate")

    def post_process(self, value: str | dict[str, str]) -> str | None:
        try:
            return check_as_of_date(StringSourceType().post_process(value))
        except ValueError as error:
            raise PostProcessingError(str(error)) from None


def run_config_schema() -> dict[str, dg.Field]:
    """TableRunConfig's fields, with ``as_of_date`` checked at launch."""
    fields = dict(TableRunConfig.to_fields_dict())
    as_of_date = fields["as_of_date"]
    fields["as_of_date"] = dg.Field(
        dg.Noneable(AsOfDateConfig()),
        default_value=None,
        is_required=False,
        description=as_of_date.description,
    )
    return fields


def partition_window(context: dg.AssetExecutionContext, table: Table) -> PartitionWindow:
    """The days the run builds; a range that ends before it starts is refused, naming the table."""
    window = context.partition_time_window
    try:
        return PartitionWindow(window.start.date(), window.end.date())
    except ValueError as error:
        raise dg.Failure(f"{table.name}: {error}") from None


def refuse_unbuilt_upstream(
    instance: dg.DagsterInstance, table: Table, upstream: Sequence[TableName], partition: PartitionWindow
) -> None:
    """A day whose partitioned input was never built would be written empty (its checks passing
    on no rows, and its served copy emptied): refuse, naming the tables and the days."""
    keys = {dg.AssetKey(name.key_path): name for name in upstream}
    missing = unbuilt_upstream_days(instance, keys, partition.days())
    if missing:
        unbuilt = "; ".join(f"{keys[key]} for {describe_days(days)}" for key, days in missing.items())
        job = f"run {table.partitions.job.name} for them" if table.partitions else "build them first"
        raise dg.Failure(
            f"{table.name}: an input was never built for days of this run: {unbuilt}; it would write "
            f"those days empty. Nothing was written: {job} (it builds the inputs with it)"
        )


def table_asset(
    domain: Domain,
    table: Table,
    partitions_def: dg.DailyPartitionsDefinition | None,
    default_as_of: date | None,
    table_name: str | None = None,
    stream_tables: frozenset = frozenset(),
    pool: str | None = None,
    related_docs: Mapping[str, Mapping[str, str]] | None = None,
    partitioned_upstream: Sequence[TableName] = (),
) -> dg.AssetsDefinition:
    """The table's asset; ``table_name`` is how the catalog names it (``catalog.layer.table`` in
    Unity Catalog), ``layer.table`` by default; ``stream_tables`` are the tables fed by a stream
    (written by one micro-batch after another). ``pool`` is what its step waits for (the table's
    own pool by default); ``related_docs`` the column docs of its quarantine and the quality
    history; ``partitioned_upstream`` the tables it reads that share its partitions, which must
    have been built for the days it builds. Its step is named ``layer__table``."""
    key = dg.AssetKey(table.name.key_path)
    check_specs = [
        dg.AssetCheckSpec(
            name=spec.name,
            asset=key,
            description=spec.description,
            # A failed blocking check (an ERROR, by default) keeps downstream assets of the run
            # from running.
            blocking=spec.blocking,
        )
        for spec in table.check_specs()
    ] + [schema_change_spec(key)]
    freshness = table.freshness
    spec = dg.AssetSpec(
        key=key,
        deps=[dg.AssetKey(upstream.key_path) for upstream in table.upstream],
        description=table.description,
        group_name=domain.name,
        owners=list(table.owners),
        kinds={"spark", "delta"},
        metadata={
            "dagster/table_name": table_name or str(table.name),
            "dagster/code_references": code_references(table),
        },
        tags={"lakehouse/layer": table.name.layer},
        partitions_def=partitions_def,
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=freshness.fail_after, warn_window=freshness.warn_after
        )
        if freshness
        else None,
        automation_condition=eager_on_new_data(
            [dg.AssetKey(name.key_path) for name in table.upstream if name in stream_tables]
        )
        if table.automation is Automation.EAGER
        else None,
    )

    @dg.multi_asset(
        name=table.name.op_name,
        specs=[spec],
        check_specs=check_specs,
        # One writer per table across runs (the instance gives each pool one slot by default).
        pool=pool or str(table.name),
        # A backfill of any range is one run, and each asset writes the range at once.
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def is not None else None,
        config_schema=run_config_schema(),
    )
    def materialize(
        context: dg.AssetExecutionContext,
        runner: UnitRunner,
        catalog: GlueCatalog,
        metrics: MetricsSink,
    ) -> Events:
        config = TableRunConfig(**context.op_execution_context.op_config)
        if config.files is not None and table.source is None:
            raise dg.Failure(
                f"{table.name} is not fed by files: the files setting applies to bronze tables only"
            )
        partition = None
        if partitions_def is not None:
            partition = partition_window(context, table)
            refuse_unbuilt_upstream(context.instance, table, partitioned_upstream, partition)
        request = UnitRequest(
            table=str(table.name),
            as_of_date=parse_as_of_date(config.as_of_date)
            if config.as_of_date
            else default_as_of or today_utc(),
            run_id=context.run.run_id,
            partition=partition,
            files=tuple(config.files) if config.files is not None else None,
            skip_missing_files=config.skip_missing_files,
            touched_reported_through=touched_reported_through(context.instance, key)
            if table.cdc is not None and table.cdc.touches is not None
            else None,
        )
        started = time.monotonic()
        result = runner.run(context, table, request)
        if result.succeeded:
            publish_metrics(context, metrics, table, result, time.monotonic() - started)
        if result.succeeded and result.uri and table.name.layer in CATALOGED_LAYERS:
            # Athena and Redshift Spectrum see the new schema as soon as the table has it.
            result.metadata.update(
                catalog.register(table.name, result.uri, table.description, table.column_docs)
            )
        yield from dagster_events(context, table, result, related_docs)

    return materialize


def code_references(table: Table, first_only: bool = False) -> dg.CodeReferencesMetadataValue:
    """Links from the asset to the line that declares the table (and its build function)."""
    locations = table.code_locations()
    return dg.CodeReferencesMetadataValue(
        code_references=[
            dg.LocalFileCodeReference(file_path=location.file, line_number=location.line, label=label)
            for label, location in (locations[:1] if first_only else locations)
        ]
    )
