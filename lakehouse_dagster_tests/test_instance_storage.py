"""The local instance's SQLite storage (``lakehouse_dagster/instance_storage.py``): Dagster's files,
read and written alike, with one engine per database file instead of one per connection."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance, asset, materialize
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.runs.sqlite import sqlite_run_storage

from lakehouse_dagster import instance_storage
from lakehouse_dagster.instance_storage import (
    EngineCache,
    LakehouseSqliteEventLogStorage,
    LakehouseSqliteRunStorage,
    LakehouseSqliteScheduleStorage,
)

PROJECT_INSTANCE = Path(__file__).resolve().parents[1] / "dagster.yaml"
KEY = AssetKey(["silver", "orders"])


def project_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_INSTANCE, home / "dagster.yaml")
    return home


def open_instance(home: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterInstance.from_config(str(home))


def materialisations(instance: DagsterInstance) -> list[int]:
    records = instance.fetch_materializations(KEY, limit=10_000).records
    return sorted(int(r.asset_materialization.metadata["n"].value) for r in records)


@asset(key=KEY)
def orders() -> int:
    return 1


def test_the_local_instance_stores_under_dagsters_default_folders(tmp_path, monkeypatch):
    home = project_home(tmp_path / "home")
    with open_instance(home, monkeypatch) as instance:
        assert isinstance(instance.run_storage, LakehouseSqliteRunStorage)
        assert isinstance(instance.event_log_storage, LakehouseSqliteEventLogStorage)
        assert isinstance(instance.schedule_storage, LakehouseSqliteScheduleStorage)
        assert materialize([orders], instance=instance).success
    # Dagster's default layout (storage: sqlite, base_dir: $DAGSTER_HOME).
    assert (home / "history" / "runs.db").is_file()
    assert (home / "history" / "runs" / "index.db").is_file()
    assert (home / "schedules" / "schedules.db").is_file()


@pytest.mark.parametrize("written_by", ["dagster", "lakehouse"])
def test_history_is_read_whichever_storage_wrote_it(tmp_path, monkeypatch, written_by):
    """An instance's runs and events survive switching the ``storage`` block on or off."""
    home = tmp_path / "home"
    home.mkdir()
    if written_by == "lakehouse":
        project_home(home)
    with open_instance(home, monkeypatch) as instance:
        result = materialize([orders], instance=instance)
        events_written = len(instance.all_logs(result.run_id))
    if written_by == "lakehouse":
        (home / "dagster.yaml").unlink()
    else:
        project_home(home)
    with open_instance(home, monkeypatch) as instance:
        expected = (
            LakehouseSqliteEventLogStorage
            if written_by == "dagster"
            else sqlite_event_log.SqliteEventLogStorage
        )
        assert type(instance.event_log_storage) is expected
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.is_success
        assert len(instance.all_logs(result.run_id)) == events_written
        latest = instance.get_latest_materialization_event(KEY)
        assert latest is not None and latest.run_id == result.run_id


def test_connections_reuse_one_engine_per_database_file(tmp_path, monkeypatch):
    """Dagster's storages create an engine per connection; these create one per file."""
    created: list[str] = []
    real_create_engine = instance_storage.create_engine

    def counting(url, **kwargs):
        created.append(str(url))
        return real_create_engine(url, **kwargs)

    def dagsters_own(*args, **kwargs):
        raise AssertionError("a connection was opened through Dagster's own engine creation")

    home = project_home(tmp_path / "home")
    with open_instance(home, monkeypatch) as instance:
        instance.report_runless_asset_event(AssetMaterialization(KEY, metadata={"n": 0}))
        monkeypatch.setattr(instance_storage, "ENGINES", EngineCache())
        monkeypatch.setattr(instance_storage, "create_engine", counting)
        monkeypatch.setattr(sqlite_event_log, "create_engine", dagsters_own)
        monkeypatch.setattr(sqlite_run_storage, "create_engine", dagsters_own)
        for n in range(1, 41):
            instance.report_runless_asset_event(AssetMaterialization(KEY, metadata={"n": n}))
        instance.get_runs(limit=5)
        assert materialisations(instance) == list(range(41))
    # 40 events and their index rows, and a run query: one engine per file touched.
    assert len(created) == len(set(created)) <= 3, created


def test_the_least_recently_used_engine_is_dropped_beyond_the_cap(tmp_path):
    cache = EngineCache(size=2)
    urls = [f"sqlite:///{tmp_path / name}.db" for name in "abc"]
    first = cache.get(urls[0])
    assert cache.get(urls[0]) is first
    cache.get(urls[1])
    cache.get(urls[0])  # used again: b is now the least recently used
    cache.get(urls[2])
    assert len(cache) == 2
    assert cache.get(urls[0]) is first
    b_again = cache.get(urls[1])  # evicts c; b was disposed of and is created again
    assert len(cache) == 2 and b_again.url.database.endswith("b.db")


WRITER = """
import sys
from dagster import AssetKey, AssetMaterialization, DagsterInstance
instance = DagsterInstance.from_config(sys.argv[1])
key = AssetKey(["silver", "orders"])
for n in range(int(sys.argv[2]), int(sys.argv[3])):
    instance.report_runless_asset_event(AssetMaterialization(key, metadata={"n": n}))
"""


def test_threads_and_another_process_writing_at_once_lose_no_event(tmp_path, monkeypatch):
    home = project_home(tmp_path / "home")
    with open_instance(home, monkeypatch) as instance:
        instance.report_runless_asset_event(AssetMaterialization(KEY, metadata={"n": 0}))
        other = subprocess.Popen([sys.executable, "-c", WRITER, str(home), "1000", "1060"])
        errors: list[BaseException] = []

        def write(start: int) -> None:
            try:
                for n in range(start, start + 30):
                    instance.report_runless_asset_event(AssetMaterialization(KEY, metadata={"n": n}))
            except BaseException as error:  # surfaced below
                errors.append(error)

        threads = [threading.Thread(target=write, args=(start,)) for start in (1, 101, 201)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert other.wait(timeout=120) == 0
        assert errors == []
        expected = [0, *range(1, 31), *range(101, 131), *range(201, 231), *range(1000, 1060)]
        assert materialisations(instance) == expected


def test_an_instance_opened_with_dagster_home_elsewhere_is_refused(tmp_path, monkeypatch):
    """The storage's folder is ``$DAGSTER_HOME``: opening another folder's instance would mix
    two histories, so it is refused, naming both."""
    home, elsewhere = project_home(tmp_path / "home"), project_home(tmp_path / "elsewhere")
    monkeypatch.setenv("DAGSTER_HOME", str(elsewhere))
    with pytest.raises(ValueError, match="set DAGSTER_HOME=") as refused:
        DagsterInstance.from_config(str(home))
    assert str(home) in str(refused.value) and str(elsewhere) in str(refused.value)
    assert not (home / "history").exists() or not any((home / "history").iterdir())
