"""A CDC run that records its progress and then dies (a check, the report, the process) does not
lose the dates its changes touched: the next run reports them, and the sensor refreshes them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_dagster.cdc.apply import TOUCHED_DATES
from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.defs.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.domains.sales.source import TABLE_COLUMNS
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.units.context import UnitContext

BRONZE, SILVER = (
    dg.AssetKey(["bronze", "bronze.sales_orders"]),
    dg.AssetKey(["silver", "silver.sales_orders"]),
)
PLACED_ON = "2026-11-01 08:00:00"


def land(landing: Path, name: str, rows: list[dict], *, full_load: bool) -> None:
    columns = [*([] if full_load else ["Op"]), "dms_commit_ts", *TABLE_COLUMNS["orders"]]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    folder = landing / "dms" / "sales" / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text.getvalue())


def order(order_id: int, status: str, placed_on: str, changed_at: str, op: str | None = None) -> dict:
    return {
        "Op": op,
        "dms_commit_ts": changed_at,
        "order_id": order_id,
        "customer_id": 1,
        "order_ts": placed_on,
        "status": status,
        "currency": "USD",
        "updated_at": changed_at,
    }


@pytest.fixture
def lake(sail_url, layout: LakeLayout):
    settings = LakehouseSettings(Deployment.TEST, layout, EngineSettings(remote_url=sail_url))
    with dg.instance_for_test() as instance:
        yield build_definitions(settings), instance, Path(layout.landing)


def materialize(defs: dg.Definitions, instance, *keys: dg.AssetKey) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("lakehouse_job").execute_in_process(
        instance=instance, asset_selection=list(keys), raise_on_error=False
    )


def of_silver(result: dg.ExecuteInProcessResult) -> list[dg.AssetMaterialization]:
    return [
        m for m in result.asset_materializations_for_node("silver__sales_orders") if m.asset_key == SILVER
    ]


def dies_once_after_recording_its_progress(monkeypatch) -> None:
    """The next unit's report (its checks, its result) fails once: its progress is recorded."""
    real_result = UnitContext.result

    def dies_once(self, *args, **kwargs):
        monkeypatch.setattr(UnitContext, "result", real_result)
        raise RuntimeError("killed after the progress was recorded, before the report")

    monkeypatch.setattr(UnitContext, "result", dies_once)


def test_dates_of_a_run_that_died_after_recording_its_progress_are_refreshed(lake, monkeypatch) -> None:
    defs, instance, landing = lake
    land(landing, "LOAD00000001.csv", [order(1, "placed", PLACED_ON, "2026-11-01 09:00:00")], full_load=True)
    assert materialize(defs, instance, BRONZE, SILVER).success
    sensor = defs.resolve_sensor_def("refresh_touched_order_dates")
    cursor = sensor(dg.build_sensor_context(instance=instance)).cursor  # the first build is done

    # Three weeks later, a late cancellation of an order placed on 2026-11-01 (and a new order).
    late = [
        order(1, "cancelled", PLACED_ON, "2026-11-22 09:00:00", op="U"),
        order(2, "placed", "2026-11-22 08:30:00", "2026-11-22 09:00:01", op="I"),
    ]
    land(landing, "20261122-090000000.csv", late, full_load=False)
    assert materialize(defs, instance, BRONZE).success
    dies_once_after_recording_its_progress(monkeypatch)
    assert not materialize(defs, instance, SILVER).success
    rerun = materialize(defs, instance, SILVER)
    assert rerun.success

    (reported,) = of_silver(rerun)
    assert reported.metadata["lakehouse/batches_applied"].value == []  # the dead run applied them
    expected = sorted({row["order_ts"][:10] for row in late})
    assert reported.metadata[TOUCHED_DATES].value == expected
    requested = sensor(dg.build_sensor_context(instance=instance, cursor=cursor)).run_requests
    ranges = sorted((r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG]) for r in requested)
    assert ranges == [(day, day) for day in expected]

    # Reported once: a later run with nothing new reports no date again.
    again = materialize(defs, instance, SILVER)
    (quiet,) = of_silver(again)
    assert quiet.metadata[TOUCHED_DATES].value == []


def test_a_first_build_that_died_after_recording_its_progress_loses_no_date(lake, monkeypatch) -> None:
    defs, instance, landing = lake
    first = [
        order(1, "placed", PLACED_ON, "2026-11-01 09:00:00"),
        order(2, "paid", "2026-11-03 10:00:00", "2026-11-03 11:00:00"),
    ]
    land(landing, "LOAD00000001.csv", first, full_load=True)
    assert materialize(defs, instance, BRONZE).success
    dies_once_after_recording_its_progress(monkeypatch)
    assert not materialize(defs, instance, SILVER).success
    rerun = materialize(defs, instance, SILVER)

    (reported,) = of_silver(rerun)
    assert reported.metadata["lakehouse/batches_applied"].value == []
    assert reported.metadata[TOUCHED_DATES].value == sorted({row["order_ts"][:10] for row in first})
