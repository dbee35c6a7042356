"""The same input built two ways gives bit-identical tables, bronze to gold; no money is floating point.

Build A: every unit in this process, one after another, without Dagster, on the session's engine
(parallelism 2), with every file landed and every record on the stream before the first unit; the
daily partitions as one range, the stream in one micro-batch.

Build B: through Dagster, on a second engine with another parallelism (3 partitions a stage).
Bronze and silver run in process, twice: once with the files of a first wave (the DMS files but the
late ones, two of the three customer files), then with the rest, so that bronze has other batches
and AUTO CDC applies its changes in two steps. The facts and gold run each in a process of its own
(``LAKEHOUSE_UNIT_RUNNER=subprocess``), the daily partitions as a backfill in two ranges. The
clickstream (on the moto server's Kinesis) arrives in two waves: a micro-batch and silver.events after
each, then the events' gold, each in a process of its own.

Every table of both lakes is compared: its schema, and its rows sorted, every column compared bit
for bit, but the columns that record when and in which run a row was written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import deltalake
import pytest
from pyspark.sql.types import DataType, DecimalType, DoubleType, FloatType, StructType

from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.defs.partitions import range_tags
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.domains.events.tables import DOMAIN as EVENTS_DOMAIN
from lakehouse_dagster.domains.events.tables import SILVER_EVENTS
from lakehouse_dagster.domains.ml.tables import CHURN_MODEL, CHURN_SCORES, CHURN_TRAINING_SET
from lakehouse_dagster.domains.sales.money import money_type
from lakehouse_dagster.engine.sessions import EmbeddedSail
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout, TableName
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.sample_data.events import Clickstream
from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing
from lakehouse_dagster.units.request import PartitionWindow
from lakehouse_dagster_tests.exact import frame_rows
from lakehouse_dagster_tests.streams import create_stream, put
from lakehouse_dagster_tests.units import AS_OF, run_table

#: When and in which run a row was written: the only columns two builds may differ in.
RUN_COLUMNS = {"_ingested_at", "_batch_id", "_run_id", "_quarantined_at", "mlflow_run_id"}
COMPARED_LAYERS = ("bronze", "silver", "gold", "quarantine", "ml")  # ops/ holds the runs' own records
#: A few days of orders train no churn model (it needs two 60-day horizons of history): these stay empty.
UNTRAINED = {CHURN_TRAINING_SET, CHURN_MODEL, CHURN_SCORES}
#: A model's output: a probability computed from features, money among them, not an amount.
MODEL_OUTPUTS = {(CHURN_SCORES, "churn_probability")}
OTHER_PARALLELISM = "3"
#: The clickstream's two waves: their events happen shortly before these times (UTC).
WAVES = (datetime(2026, 11, 25, 10, 0, tzinfo=UTC), datetime(2026, 11, 25, 10, 20, tzinfo=UTC))
EVENTS_PER_WAVE = 400


@dataclass(frozen=True)
class Lake:
    tables: DeltaTables
    root: Path

    def names(self) -> list[TableName]:
        return [
            TableName(layer, path.name)
            for layer in COMPARED_LAYERS
            if (self.root / layer).is_dir()
            for path in sorted((self.root / layer).iterdir())
            if deltalake.DeltaTable.is_deltatable(str(path))
        ]


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("determinism") / "landing"


@pytest.fixture(scope="module")
def simulation():
    return simulate_retail(days=5, seed=3, customers=250, products=30, orders_per_day=40)


@pytest.fixture(scope="module")
def order_days(simulation) -> list[date]:
    return sorted({date.fromisoformat(ts[:10]) for ts in simulation.truth.tables["orders"]["order_ts"]})


@pytest.fixture(scope="module")
def stream(moto_server) -> str:
    return create_stream(moto_server, shards=2)


@pytest.fixture(scope="module")
def other_engine() -> Iterator[str]:
    """A second embedded engine that splits every stage into another number of partitions."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAIL_EXECUTION__DEFAULT_PARALLELISM", OTHER_PARALLELISM)
        server = EmbeddedSail()
        url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="module")
def build_b(
    landing, simulation, order_days, other_engine, spark, tmp_path_factory, moto_server, stream, postgres
) -> Lake:
    root = tmp_path_factory.mktemp("build_b")
    unpartitioned = [table for table in REGISTRY.tables if not table.partitioned]
    events = {key(table) for table in EVENTS_DOMAIN.tables}  # fed by the stream, in no job
    bronze_and_silver = [
        key(table)
        for table in unpartitioned
        if table.name.layer in ("bronze", "silver") and key(table) not in events
    ]
    gold = [
        key(table)
        for table in unpartitioned
        if table.name.layer in ("gold", "ml") and key(table) not in events
    ]
    events_gold = [key(table) for table in EVENTS_DOMAIN.tables if table.name.layer == "gold"]
    middle = order_days[len(order_days) // 2]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "LAKEHOUSE_DEPLOYMENT": "test",
            "LAKEHOUSE_ROOT": str(root),
            "LAKEHOUSE_LANDING": str(landing),
            "LAKEHOUSE_SPARK_REMOTE": other_engine,
            "LAKEHOUSE_AS_OF_DATE": AS_OF.isoformat(),
            "LAKEHOUSE_KINESIS_STREAM": stream,
            "LAKEHOUSE_WAREHOUSE_URL": postgres.new(),  # jobs end with gold's copies in the warehouse
            **moto_server.env(),
        }.items():
            patch.setenv(name, value)  # a unit's own process reads the same environment
        in_process = build_definitions(LakehouseSettings.from_env())
        patch.setenv("LAKEHOUSE_UNIT_RUNNER", "subprocess")
        own_process = build_definitions(LakehouseSettings.from_env())
        runs = Runs()
        clicks = Clickstream(seed=17)

        for wave in WAVES:
            put(moto_server, stream, clicks.records(EVENTS_PER_WAVE, wave))
            runs.materialize(in_process, "bronze_events_microbatch_job")
            runs.materialize(in_process, None, [dg.AssetKey(SILVER_EVENTS.key_path)])
        runs.materialize(own_process, None, events_gold)
        write_landing(simulation, landing, include_late=False)
        generate_customers(landing, rows=200, files=2, seed=5)
        runs.materialize(in_process, "lakehouse_job", bronze_and_silver)
        write_landing(simulation, landing, only_late=True)
        generate_customers(landing, rows=100, files=1, seed=6, start_index=3)
        runs.materialize(in_process, "lakehouse_job", bronze_and_silver)
        runs.materialize(own_process, "lakehouse_job", gold)
        for first, last in ((order_days[0], middle), (middle + timedelta(days=1), order_days[-1])):
            runs.materialize(own_process, "sales_facts_job", tags=range_tags(first, last))
    return Lake(DeltaTables(spark, LakeLayout.local(str(root), str(landing))), root)


class Runs:
    """Runs of one Dagster instance, each required to succeed."""

    def __init__(self) -> None:
        self.instance = dg.DagsterInstance.ephemeral()

    def materialize(self, defs: dg.Definitions, job: str | None, keys=None, tags=None) -> None:
        """Runs ``job`` (None: the assets ``keys``, which no job has)."""
        definition = defs.resolve_job_def(job) if job else defs.resolve_implicit_global_asset_job_def()
        result = definition.execute_in_process(
            instance=self.instance, asset_selection=keys, tags=tags, raise_on_error=False
        )
        assert result.success, [event.message for event in result.all_events if event.is_step_failure]


@pytest.fixture(scope="module")
def build_a(build_b, landing, spark, order_days, tmp_path_factory, moto_server, stream) -> Lake:
    """Built after B, when every file has landed and every record is on the stream (the same
    files, in the same folder; the same stream, read from its start)."""
    root = tmp_path_factory.mktemp("build_a")
    layout = LakeLayout.local(str(root), str(landing))
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    window = PartitionWindow(order_days[0], order_days[-1] + timedelta(days=1))
    for table in REGISTRY.tables:
        run_table(tables, table, partition=window if table.partitioned else None)
    return Lake(tables, root)


def key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(table.name.key_path)


def test_two_builds_of_the_same_input_are_bit_identical(build_a, build_b) -> None:
    names = build_a.names()
    assert names == build_b.names()
    assert {table.name for table in REGISTRY.tables} <= set(names), "every declared table was built"
    assert any(name.layer == "quarantine" for name in names)
    for name in names:
        a, b = build_a.tables.read(name), build_b.tables.read(name)
        assert a.schema == b.schema, name
        columns = [c for c in a.columns if c not in RUN_COLUMNS]
        rows = frame_rows(a, columns)
        assert rows == frame_rows(b, columns), name
        assert rows or name.layer == "quarantine" or name in UNTRAINED, f"{name} is empty"


def _floating(data_type: DataType) -> bool:
    if isinstance(data_type, StructType):
        return any(_floating(field.dataType) for field in data_type.fields)
    return isinstance(data_type, DoubleType | FloatType)


def money_columns(table: Table) -> dict[str, str]:
    """Column -> declared type, from the column docs (a money column's doc states its rule)."""
    return {column: kind for column, doc in table.column_docs.items() if (kind := money_type(doc))}


def test_no_money_column_is_floating_point(build_a) -> None:
    """A money column is one whose column doc gives its money rule (``Money.doc``; the sales domain
    declares them in ``MONEY_COLUMNS``). Each has its declared DECIMAL type in its table and in the
    table's quarantine; a column of the same name as a money column of the table's inputs is money
    too; no floating-point column is computed from a money column (declared lineage)."""
    declared = {table.name: table for table in REGISTRY.tables}
    money = {name: money_columns(table) for name, table in declared.items()}
    assert sum(len(columns) for columns in money.values()) >= 12, "prices, amounts, revenue, averages"
    quarantined = {name.table: name for name in declared if name.layer != "bronze"}
    checked = 0
    for name in build_a.names():
        table = declared[quarantined[name.table]] if name.layer == "quarantine" else declared[name]
        schema = {field.name: field.dataType for field in build_a.tables.read(name).schema.fields}
        for column, sql_type in money[table.name].items():
            assert column in schema, (name, column)
            assert isinstance(schema[column], DecimalType), (name, column, schema[column])
            assert schema[column].simpleString() == sql_type.lower(), (name, column, schema[column])
            checked += 1
        inputs = (table.cdc.source,) if table.cdc else table.inputs
        inherited = {column for source in inputs for column in money[source] if column in schema}
        assert inherited <= set(money[table.name]), f"{name}: {inherited} are money in its inputs"
        for column, sources in table.column_lineage.items():
            if (name, column) in MODEL_OUTPUTS:
                continue
            if any(source_column in money[source] for source, source_column in sources):
                assert not _floating(schema[column]), f"{name}.{column} is computed from money"
    assert checked >= 12
