"""The benchmarks are not run by the tests (they print figures and take minutes), but the asset keys
they select must exist: a renamed key would otherwise surface only when someone runs them."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.deployment import LakehouseSettings

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def asset_keys(tmp_path_factory) -> set[dg.AssetKey]:
    root = tmp_path_factory.mktemp("lake")
    env = {
        "LAKEHOUSE_DEPLOYMENT": "local",
        "LAKEHOUSE_ROOT": str(root),
        "LAKEHOUSE_WAREHOUSE_URL": "postgresql://x@127.0.0.1/x",
    }
    defs = build_definitions(LakehouseSettings.from_env(env))
    return set(defs.resolve_asset_graph().get_all_asset_keys())


@pytest.fixture(scope="module")
def benchmarks():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import customers_slice
        import events_latency
        import fixed_overhead
        import pipes_overhead
        import retail

        yield customers_slice, events_latency, fixed_overhead, pipes_overhead, retail
    finally:
        sys.path.remove(str(BENCHMARKS))


def keys_of(selection: str) -> list[dg.AssetKey]:
    return [dg.AssetKey.from_user_string(part) for part in selection.split(",")]


def test_every_asset_a_benchmark_selects_exists(asset_keys, benchmarks) -> None:
    customers_slice, events_latency, fixed_overhead, pipes_overhead, retail = benchmarks
    sales = retail.SALES.tables
    selected = [
        *keys_of(customers_slice.SELECT),
        *keys_of(retail.selection([table for table in sales if table.partitioned])),
        *keys_of(retail.selection([table for table in sales if not table.partitioned])),
        dg.AssetKey(events_latency.SILVER),
        dg.AssetKey(events_latency.GOLD),
        *(dg.AssetKey.from_user_string(key) for key in pipes_overhead.ASSETS),
        *keys_of(fixed_overhead.SELECT),
    ]
    assert len(selected) == 3 + len(sales) + 2 + 3 + 1
    missing = [key.to_user_string() for key in selected if key not in asset_keys]
    assert missing == [], f"benchmarks select assets that do not exist: {missing}"


def test_the_tiny_file_of_the_overhead_benchmark_has_the_customers_columns(benchmarks) -> None:
    from lakehouse_dagster.registry import REGISTRY

    fixed_overhead = benchmarks[2]
    header = fixed_overhead.TINY_FILE.splitlines()[0].split(",")
    assert tuple(header) == REGISTRY.table("bronze.customers").source.columns
