"""The retail DMS simulator: the files are what AWS DMS writes, the trouble is real, the truth is exact.

The simulator's own bookkeeping (``stats``) is never trusted alone: every kind of trouble is also
found in the written files, and the truth is recomputed here by replaying the files with the csv
module and pandas (``dms_replay``: the semantics are documented there).
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from bisect import bisect
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest

from lakehouse_dagster.sample_data.__main__ import main
from lakehouse_dagster.sample_data.retail import (
    CUSTOMER_HISTORY_COLUMNS,
    CUSTOMER_HISTORY_OUTPUT_COLUMNS,
    FIRST_TOUCH_DUPLICATES,
    HALF_CENT_CUSTOMER_ID,
    HALF_CENT_ORDER_IDS,
    RATES_BP,
    RETAIL_TABLES,
    TABLE_COLUMNS,
    TABLE_KEYS,
    RetailSimulation,
    simulate_retail,
    write_landing,
    write_truth,
)
from lakehouse_dagster_tests.dms_replay import (
    CDC_OPS,
    COLUMNS,
    KEYS,
    Line,
    ordered_changes,
    read_lines,
    replay,
    sort_key,
)

TRACKED = ("email", "street", "city", "country")
# The flat SCD2 truth: DLT's struct __START_AT / __END_AT as (dms_commit_ts, AR_H_CHANGE_SEQ) columns.
HISTORY_COLUMNS = (
    *COLUMNS["customers"],
    "__START_AT",
    "__START_AT_CHANGE_SEQ",
    "__END_AT",
    "__END_AT_CHANGE_SEQ",
)
SMALL = {"days": 4, "seed": 11, "customers": 300, "products": 40, "orders_per_day": 40}
ROWS_PER_LOAD_FILE = 64
MICROS = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}")
CHANGE_SEQ = re.compile(r"\d{35}")  # YYYYMMDDHHmmSShh, then a 19-digit change number
SECONDS = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
MONEY = re.compile(r"\d+\.\d{2}")
LOAD_NAME = re.compile(r"LOAD([0-9A-F]{8})\.csv")
CDC_NAME = re.compile(r"(\d{8}-\d{6})(\d{4})\.csv")


def scd2(changes: list[Line]) -> pd.DataFrame:
    """DLT's SCD2 with sequence_by = struct(dms_commit_ts, AR_H_CHANGE_SEQ), the struct written flat."""
    tracked = [COLUMNS["customers"].index(name) for name in TRACKED]
    versions: dict[tuple, list[list]] = defaultdict(list)
    for change in changes:
        history = versions[change.key]
        current = history[-1] if history and history[-1][2] is None else None
        at = (change.ts, change.seq or None)
        if change.op == "D":
            current[2] = at
        elif (
            current is not None
            and change.op == "U"
            and all(current[0][i] == change.values[i] for i in tracked)
        ):
            current[0] = change.values
        else:
            if current is not None:
                current[2] = at
            history.append([change.values, at, None])
    rows = [
        (*values, *start, *(end or (None, None)))
        for key in sorted(versions, key=sort_key)
        for values, start, end in versions[key]
    ]
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS), dtype=object)


@pytest.fixture(scope="module")
def simulation() -> RetailSimulation:
    return simulate_retail(**SMALL, full_load_rows_per_file=ROWS_PER_LOAD_FILE)


@pytest.fixture(scope="module")
def landing(simulation: RetailSimulation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("retail") / "landing"
    write_landing(simulation, root)
    return root


@pytest.fixture(scope="module")
def lines(landing: Path) -> dict[str, list[Line]]:
    return {table: read_lines(landing, table) for table in COLUMNS}


@pytest.fixture(scope="module")
def changes(lines: dict[str, list[Line]]) -> dict[str, list[Line]]:
    return {table: ordered_changes(table_lines) for table, table_lines in lines.items()}


def cdc_time(name: str) -> datetime:
    match = CDC_NAME.fullmatch(name)
    assert match, name
    moment = datetime.strptime(match[1], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    return moment + timedelta(microseconds=int(match[2]) * 100)


def micros(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_the_published_names_are_the_specified_ones() -> None:
    assert RETAIL_TABLES == ("customers", "products", "orders", "order_items")
    assert TABLE_COLUMNS == COLUMNS
    assert TABLE_KEYS == {
        "customers": ("customer_id",),
        "products": ("product_id",),
        "orders": ("order_id",),
        "order_items": ("order_id", "line_number"),
    }
    assert CUSTOMER_HISTORY_COLUMNS == TRACKED
    assert CUSTOMER_HISTORY_OUTPUT_COLUMNS == HISTORY_COLUMNS


def test_same_arguments_same_bytes_other_seed_other_bytes(tmp_path: Path, capsys) -> None:
    arguments = ["--days", "3", "--customers", "150", "--products", "30", "--orders-per-day", "25"]
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert main(["retail", "--out", str(tmp_path / name / "landing"), "--seed", seed, *arguments]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 3 and "retail_truth" in summary[0]

    a, b, c = (tree(tmp_path / name / "landing") for name in "abc")
    assert a == b, "same bytes and same mtimes"
    assert all(path.startswith("dms/sales/") for path in a)
    assert {path: content for path, (content, _) in a.items()} != {
        path: content for path, (content, _) in c.items()
    }
    truths = [
        {path: content for path, (content, _) in tree(tmp_path / name / "retail_truth").items()}
        for name in "abc"
    ]
    assert set(truths[0]) == {f"{name}.csv" for name in (*RETAIL_TABLES, "customers_history")}
    assert truths[0] == truths[1] and truths[0] != truths[2]
    assert sorted(path.name for path in (tmp_path / "a").iterdir()) == ["landing", "retail_truth"]

    again = simulate_retail(**SMALL, full_load_rows_per_file=ROWS_PER_LOAD_FILE)
    twice = simulate_retail(**SMALL, full_load_rows_per_file=ROWS_PER_LOAD_FILE)
    assert again.files == twice.files and again.stats == twice.stats
    for table in RETAIL_TABLES:
        pd.testing.assert_frame_equal(again.truth.tables[table], twice.truth.tables[table])
    pd.testing.assert_frame_equal(again.truth.customers_history, twice.truth.customers_history)
    other = simulate_retail(
        **{**SMALL, "seed": SMALL["seed"] + 1}, full_load_rows_per_file=ROWS_PER_LOAD_FILE
    )
    assert [f.content for f in other.files] != [f.content for f in again.files]
    assert not other.truth.tables["customers"].equals(again.truth.tables["customers"])


def test_folder_layout_file_names_and_delivery(simulation: RetailSimulation, landing: Path) -> None:
    assert sorted(path.name for path in (landing / "dms" / "sales").iterdir()) == sorted(RETAIL_TABLES)
    assert [path.name for path in landing.iterdir()] == ["dms"]
    assert len({f.relative_path for f in simulation.files}) == len(simulation.files)
    deliveries = [f.delivered_at for f in simulation.files]
    assert deliveries == sorted(deliveries), "files come in delivery order"
    assert all(moment.utcoffset() == timedelta(0) for moment in deliveries)
    first_cdc = min(f.delivered_at for f in simulation.files if "/LOAD" not in f.relative_path)
    for dms_file in simulation.files:
        path = landing / dms_file.relative_path
        assert dms_file.relative_path == f"dms/sales/{dms_file.table}/{path.name}"
        assert path.read_bytes() == dms_file.content
        assert (
            path.stat().st_mtime_ns
            == (dms_file.delivered_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1_000
        )
        if path.name.startswith("LOAD"):
            assert dms_file.delivered_at < first_cdc and not dms_file.late
        else:
            assert cdc_time(path.name) <= dms_file.delivered_at

    for table in RETAIL_TABLES:
        names = sorted(path.name for path in (landing / "dms" / "sales" / table).iterdir())
        loads = [name for name in names if name.startswith("LOAD")]
        assert all(LOAD_NAME.fullmatch(name) for name in loads)
        assert [int(LOAD_NAME.fullmatch(name)[1], 16) for name in loads] == list(range(1, len(loads) + 1))
        cdc = [name for name in names if not name.startswith("LOAD")]
        assert cdc, table
        if table in ("orders", "order_items"):
            assert len(cdc) >= 3 * SMALL["days"], "busy tables are flushed several times a day"
        times = [cdc_time(name) for name in cdc]
        assert all(simulation.start < moment <= simulation.end for moment in times)
        assert all(
            f"{t:%Y%m%d-%H%M%S}{t.microsecond // 100:04d}.csv" == n for t, n in zip(times, cdc, strict=True)
        )
    order_loads = sorted(p.name for p in (landing / "dms/sales/order_items").glob("LOAD*"))
    assert "LOAD00000009.csv" in order_loads and "LOAD0000000A.csv" in order_loads, "hex, not decimal"
    assert "LOAD00000010.csv" in order_loads and order_loads.index("LOAD00000010.csv") == 15


def test_headers_timestamps_and_values(
    simulation: RetailSimulation, lines: dict[str, list[Line]], landing: Path
) -> None:
    start_ts = f"{simulation.start:%Y-%m-%d %H:%M:%S}.000000"
    for table, columns in COLUMNS.items():
        for path in (landing / "dms" / "sales" / table).iterdir():
            header = path.read_text(encoding="utf-8").split("\n", 1)[0]
            if path.name.startswith("LOAD"):
                assert header == ",".join(("dms_commit_ts", *columns, "AR_H_CHANGE_SEQ"))
            else:
                assert header == ",".join(("Op", "dms_commit_ts", *columns, "AR_H_CHANGE_SEQ"))
        load_counts = Counter(line.file for line in lines[table] if line.load)
        assert all(count <= ROWS_PER_LOAD_FILE for count in load_counts.values())
        assert sorted(load_counts.values())[1:] == [ROWS_PER_LOAD_FILE] * (len(load_counts) - 1)
        for line in lines[table]:
            if not line.change:
                continue
            values = dict(zip(columns, line.values, strict=True))
            assert MICROS.fullmatch(line.ts)
            if line.load:
                assert line.ts == start_ts and line.seq == "", "DMS leaves header values empty in a full load"
            else:
                assert CHANGE_SEQ.fullmatch(line.seq), line.seq
                assert line.seq[:16] == re.sub(r"\D", "", line.ts)[:16], "the commit time, to the hundredth"
                assert simulation.start < micros(line.ts) < simulation.end
                assert micros(line.ts) <= cdc_time(line.file), "no change is written before it is committed"
                if line.op != "D":
                    assert values["updated_at"] == line.ts[:19], "updated_at is the commit time"
            for name in ("created_at", "updated_at", "order_ts"):
                if name in values:
                    assert SECONDS.fullmatch(values[name]), (name, values[name])
            assert all(values[key].isdigit() and int(values[key]) >= 1 for key in columns[: KEYS[table]])
            if table == "customers":
                assert re.fullmatch(r"[A-Z]{2}", values["country"]) and "@" in values["email"]
            elif table == "products":
                assert MONEY.fullmatch(values["price"]) and values["currency"] == "USD"
            elif table == "orders":
                assert values["status"] in {"placed", "paid", "shipped", "delivered", "cancelled"}
                assert values["currency"] in {"USD", "EUR", "GBP"}
            else:
                assert MONEY.fullmatch(values["unit_price"]) and int(values["quantity"]) >= 1

    customers = simulation.truth.tables["customers"]
    assert customers["phone"].isna().any(), "some nulls"
    assert customers["country"].eq("NA").any() or customers["street"].str.contains(",").any()
    categories = set(simulation.truth.tables["products"]["category"])
    assert 5 <= len(categories) <= 8
    assert any('"' in line.text for table_lines in lines.values() for line in table_lines if line.change)
    assert any(
        "," in value for line in lines["customers"] if line.change for value in line.values if value
    ), "values that need quoting"
    orders = simulation.truth.tables["orders"]
    assert set(orders["status"]) == {"placed", "paid", "shipped", "delivered", "cancelled"}
    assert set(orders["currency"]) == {"USD", "EUR", "GBP"}
    items_per_order = simulation.truth.tables["order_items"].groupby("order_id").size()
    assert items_per_order.min() == 1 and items_per_order.max() == 5


def test_u_carries_the_after_image_and_d_the_before_image(
    simulation: RetailSimulation, changes: dict[str, list[Line]]
) -> None:
    history = simulation.truth.customers_history
    deleted = [line for line in changes["customers"] if line.op == "D"]
    assert deleted
    for line in deleted:
        closed = history[
            (history["customer_id"] == line.key[0])
            & (history["__END_AT"] == line.ts)
            & (history["__END_AT_CHANGE_SEQ"] == line.seq)
        ]
        assert len(closed) == 1, "a delete closes the current version at its sequence"
        assert tuple(closed.iloc[0][list(COLUMNS["customers"])]) == line.values, "D carries the before-image"

    for table in RETAIL_TABLES:
        last: dict[tuple, Line] = {}
        for line in changes[table]:
            last[line.key] = line
        truth = simulation.truth.tables[table]
        final = {tuple(row[: KEYS[table]]): tuple(row) for row in truth.itertuples(index=False, name=None)}
        updated = [line for line in last.values() if line.op == "U"]
        assert updated or table == "order_items"
        for line in updated:
            assert final[line.key] == line.values, "U carries the after-image"
        assert all(line.key not in final for line in last.values() if line.op == "D")


def test_some_changes_are_delivered_twice(simulation: RetailSimulation, lines: dict[str, list[Line]]) -> None:
    assert simulation.stats["duplicates_same_file"] >= 1 and simulation.stats["duplicates_next_file"] >= 1
    same_file = next_file = 0
    for table_lines in lines.values():
        real = [line for line in table_lines if line.change and not line.load]
        files = sorted({line.file for line in real})
        following = dict(itertools.pairwise(files))
        places = defaultdict(list)
        for line in real:
            places[line.text].append(line.file)
        for found in places.values():
            same_file += len(found) - len(set(found))
            next_file += any(following.get(one) == other for one in found for other in found)
    assert same_file >= 1, "a line repeated in its own file"
    assert next_file >= 1, "a line repeated in the next file of its table"
    assert same_file + next_file >= simulation.stats["duplicates"] > 0


def test_changes_of_one_key_arrive_out_of_order(
    simulation: RetailSimulation, lines: dict[str, list[Line]]
) -> None:
    assert simulation.stats["reordered"] >= 1
    found = []
    for table_lines in lines.values():
        copies = Counter(line.text for line in table_lines)
        seen: dict[tuple, list[Line]] = defaultdict(list)
        for line in table_lines:
            if line.change and not line.load:
                seen[line.key].append(line)
        for key_lines in seen.values():
            found += [
                (early, late)
                for early in key_lines
                for late in key_lines
                if early.file < late.file and early.at > late.at and copies[late.text] == 1
            ]
    assert found, "a change (not a copy) sits in a later file than a later change of its key"
    assert len({late for _, late in found}) >= simulation.stats["reordered"]


def test_a_file_arrives_late(simulation: RetailSimulation, landing: Path, tmp_path: Path) -> None:
    late = [f for f in simulation.files if f.late]
    assert len(late) == simulation.stats["late_files"] >= 1
    for dms_file in late:
        path = landing / dms_file.relative_path
        assert dms_file.delivered_at - cdc_time(path.name) > timedelta(hours=12)
        overtaken = [
            other
            for other in path.parent.iterdir()
            if other.name > path.name and other.stat().st_mtime_ns < path.stat().st_mtime_ns
        ]
        assert overtaken, "a file with a later name was delivered before the late one"

    on_time = write_landing(simulation, tmp_path / "on_time", include_late=False)
    afterwards = write_landing(simulation, tmp_path / "on_time", only_late=True)
    assert [p.relative_to(tmp_path / "on_time").as_posix() for p in afterwards] == [
        f.relative_path for f in late
    ]
    assert len(on_time) + len(afterwards) == len(simulation.files)
    assert tree(tmp_path / "on_time") == tree(landing)


def test_a_deleted_key_comes_back(simulation: RetailSimulation, changes: dict[str, list[Line]]) -> None:
    assert simulation.stats["reinserted_customers"] >= 1 and simulation.stats["reinserted_orders"] >= 1
    for table in ("customers", "orders", "order_items"):
        deleted_at: dict[tuple, Line] = {}
        back = []
        for line in changes[table]:
            if line.op == "D":
                deleted_at[line.key] = line
            elif line.op == "I" and line.key in deleted_at:
                back.append((deleted_at[line.key], line))
        assert back, table
        if table == "customers":
            assert all(gone.values[3] != again.values[3] for gone, again in back), "new values"
            history = simulation.truth.customers_history
            key = back[0][1].key[0]
            versions = history[history["customer_id"] == key]
            starts = set(zip(versions["__START_AT"], versions["__START_AT_CHANGE_SEQ"], strict=True))
            assert back[0][1].at in starts, "a re-insert starts a new version"


def test_change_sequences_follow_the_commit_order_across_tables(changes: dict[str, list[Line]]) -> None:
    cdc = [line for table_changes in changes.values() for line in table_changes if not line.load]
    assert len({line.seq for line in cdc}) == len(cdc), "one change number per change, for the whole task"
    by_sequence = sorted(cdc, key=lambda line: line.seq)
    assert [line.ts for line in by_sequence] == sorted(line.ts for line in cdc), "in commit order"


def touched_twice(changes: list[Line]) -> list[tuple[Line, Line]]:
    """The (first, second) changes of a key in one transaction."""
    by_transaction: dict[tuple, list[Line]] = defaultdict(list)
    for line in changes:
        if not line.load:
            by_transaction[(line.key, line.ts)].append(line)
    assert all(len(pair) <= 2 for pair in by_transaction.values())
    return [(pair[0], pair[1]) for pair in by_transaction.values() if len(pair) == 2]


def test_some_transactions_touch_a_key_twice(
    simulation: RetailSimulation, changes: dict[str, list[Line]]
) -> None:
    customers, orders = touched_twice(changes["customers"]), touched_twice(changes["orders"])
    assert len(customers) == simulation.stats["customers_updated_twice"] >= 1
    assert len(orders) == simulation.stats["orders_moved_twice"] >= 1
    assert len(customers) + len(orders) == simulation.stats["transactions_touching_a_key_twice"]
    assert not touched_twice(changes["products"]) and not touched_twice(changes["order_items"])
    for first, second in customers + orders:
        assert first.op == second.op == "U"
        assert int(second.seq[16:]) == int(first.seq[16:]) + 1, "consecutive change numbers"

    email, street, city = (COLUMNS["customers"].index(name) for name in ("email", "street", "city"))
    history = simulation.truth.customers_history
    for first, second in customers:
        assert first.values[email] == second.values[email], "an e-mail change, then a move"
        assert (first.values[street], first.values[city]) != (second.values[street], second.values[city])
        version = history[
            (history["customer_id"] == first.key[0])
            & (history["__START_AT_CHANGE_SEQ"] == first.seq)
            & (history["__END_AT_CHANGE_SEQ"] == second.seq)
        ]
        assert len(version) == 1 and version.iloc[0]["__START_AT"] == version.iloc[0]["__END_AT"], (
            "a version that starts and ends within one commit time"
        )
    status = COLUMNS["orders"].index("status")
    assert {(first.values[status], second.values[status]) for first, second in orders} <= {
        ("shipped", "delivered"),
        ("paid", "cancelled"),
    }


def latest_images(lines: list[Line], order) -> dict[tuple, tuple]:
    """The state per key that applying ``lines`` in ``order``, the last one winning, gives."""
    last = {line.key: line for line in sorted(lines, key=order)}
    return {key: line.values for key, line in last.items() if line.op != "D"}


def test_a_duplicate_of_a_first_touch_in_a_later_file_needs_the_change_sequence(
    simulation: RetailSimulation, lines: dict[str, list[Line]], changes: dict[str, list[Line]]
) -> None:
    """Ordered by dms_commit_ts and position (file, line) alone, the copy of the first change of a
    key in a transaction, delivered in a later file, wins over the second: the state is wrong."""
    assert simulation.stats[FIRST_TOUCH_DUPLICATES] >= 2
    for table in ("customers", "orders"):
        real = [line for line in lines[table] if line.change]
        late_copies = [
            (first, copy)
            for first, second in touched_twice(changes[table])
            for copy in real
            if copy.text == first.text and copy.file > second.file
        ]
        assert late_copies, table

        truth = simulation.truth.tables[table].itertuples(index=False, name=None)
        truth = {row[: KEYS[table]]: row for row in truth}
        by_position = latest_images(real, lambda line: (line.ts, line.file, line.number))
        by_sequence = latest_images(real, lambda line: (line.at, line.file, line.number))
        assert by_sequence == truth
        assert all(by_position[first.key] != truth[first.key] for first, _ in late_copies), table


def test_junk_lines_are_there_and_are_not_changes(
    simulation: RetailSimulation, lines: dict[str, list[Line]]
) -> None:
    every = [line for table_lines in lines.values() for line in table_lines]
    broken_quote = [line for line in every if line.fields is None]
    wrong_count = [
        line for line in every if line.fields is not None and len(line.fields) not in (1, line.width)
    ]
    garbage = [line for line in every if line.fields is not None and len(line.fields) == 1]
    unknown = [line for line in every if line.well_formed and not line.load and line.fields[0] not in CDC_OPS]
    assert broken_quote and wrong_count and garbage
    assert all(line.text.count('"') % 2 == 1 for line in broken_quote)
    last_lines = {(line.table, line.file): line.number for line in every}
    assert all(last_lines[(line.table, line.file)] == line.number for line in broken_quote), "always last"
    assert len(broken_quote) + len(wrong_count) + len(garbage) == simulation.stats["malformed_rows"]
    assert unknown and all(line.fields[0] in {"X", "Z"} for line in unknown)
    assert len(unknown) == simulation.stats["unknown_op_rows"]
    real = {(line.table, line.fields[1:]) for line in every if line.change and not line.load}
    assert all((line.table, line.fields[1:]) not in real for line in unknown), "never a real image"


def test_replaying_the_files_gives_the_truth(
    simulation: RetailSimulation, changes: dict[str, list[Line]]
) -> None:
    for table in RETAIL_TABLES:
        expected = replay(table, changes[table])
        assert len(expected) > 10
        pd.testing.assert_frame_equal(simulation.truth.tables[table], expected)


def test_replaying_the_files_gives_the_scd2_history(
    simulation: RetailSimulation, changes: dict[str, list[Line]]
) -> None:
    expected = scd2(changes["customers"])
    pd.testing.assert_frame_equal(simulation.truth.customers_history, expected)
    versions = expected.groupby("customer_id").size()
    assert (versions >= 2).any(), "tracked changes open new versions"
    updates = [line for line in changes["customers"] if line.op == "U"]
    assert len(updates) > versions.sum() - versions.size, "untracked changes update in place"
    current = expected[expected["__END_AT"].isna()]
    assert current["customer_id"].is_unique
    assert sorted(current["customer_id"], key=int) == list(
        simulation.truth.tables["customers"]["customer_id"]
    )


def test_orders_use_the_customers_currency_and_converted_prices(
    simulation: RetailSimulation, changes: dict[str, list[Line]]
) -> None:
    def timeline(table: str) -> dict[tuple, tuple[list[str], list[tuple]]]:
        found: dict[tuple, tuple[list[str], list[tuple]]] = defaultdict(lambda: ([], []))
        for line in changes[table]:
            found[line.key][0].append(line.ts)
            found[line.key][1].append(line.values if line.op != "D" else None)
        return found

    def as_of(history: dict, key: tuple, ts: str) -> tuple:
        moments, images = history[key]
        index = bisect(moments, ts) - 1
        assert index >= 0 and images[index] is not None, (key, ts)
        return images[index]

    customers, products = timeline("customers"), timeline("products")
    currency_of: dict[str, set[str]] = defaultdict(set)
    placed = {}
    for line in changes["orders"]:
        if line.op == "I" and line.key not in placed:
            placed[line.key] = line
            customer = as_of(customers, (line.values[1],), line.ts)
            currency_of[customer[7]].add(line.values[4])
    assert all(len(currencies) == 1 for currencies in currency_of.values()), "a function of the country"
    assert currency_of["US"] == {"USD"} and currency_of["GB"] == {"GBP"} and currency_of["DE"] == {"EUR"}

    ratios: dict[str, set[Decimal]] = defaultdict(set)
    for line in changes["order_items"]:
        order = placed.get(line.key[:1])
        if line.op != "I" or order is None or order.ts != line.ts:
            continue  # restored orders keep the prices of their first placement
        price = Decimal(as_of(products, (line.values[2],), line.ts)[4])
        unit = Decimal(line.values[4])
        currency = order.values[4]
        if currency == "USD":
            assert unit == price
        converted = price * RATES_BP[currency] / 10_000  # exact: four places at most
        assert unit == converted.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "rounded once, half up"
        ratios[currency].add(((unit - Decimal("0.005")) / price, (unit + Decimal("0.005")) / price))
    for currency, bounds in ratios.items():
        low, high = max(low for low, _ in bounds), min(high for _, high in bounds)
        assert low <= high, f"one fixed rate for {currency}"


def test_the_half_cent_customer_is_in_the_full_load_only_and_averages_a_half_cent(
    changes: dict[str, list[Line]],
) -> None:
    customer_id, order_ids = str(HALF_CENT_CUSTOMER_ID), {str(order_id) for order_id in HALF_CENT_ORDER_IDS}
    (customer,) = [line for line in changes["customers"] if line.key == (customer_id,)]
    assert customer.load and customer.values[7] == "US"
    orders = [line for line in changes["orders"] if line.key[0] in order_ids]
    assert [(o.load, o.values[1], o.values[3], o.values[4]) for o in orders] == [
        (True, customer_id, "delivered", "USD")
    ] * 2
    assert [line.key for line in changes["orders"] if line.values[1] == customer_id] == [
        o.key for o in orders
    ]
    items = [line for line in changes["order_items"] if line.key[0] in order_ids]
    assert len(items) == 2 and all(item.load for item in items)
    average = sum(int(item.values[3]) * Decimal(item.values[4]) for item in items) / 2
    _, digits, exponent = average.as_tuple()
    assert exponent == -3 and digits[-1] == 5, f"{average} is a half cent"
    assert digits[-2] % 2 == 0, "an even cent: half up and half even round it apart"


def test_write_truth_writes_every_table_and_the_history(simulation: RetailSimulation, tmp_path: Path) -> None:
    written = write_truth(simulation, tmp_path / "truth")
    assert sorted(path.name for path in written) == sorted(
        f"{name}.csv" for name in (*RETAIL_TABLES, "customers_history")
    )
    frames = {**simulation.truth.tables, "customers_history": simulation.truth.customers_history}
    for path in written:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        frame = frames[path.stem]
        assert rows[0] == list(frame.columns)
        assert rows[1:] == [
            [value or "" for value in row] for row in frame.itertuples(index=False, name=None)
        ]


@pytest.mark.parametrize("seed", [1, 2])
def test_default_parameters_make_every_kind_of_trouble_in_three_days(seed: int) -> None:
    stats = simulate_retail(days=3, seed=seed, end_date=date(2026, 3, 1)).stats
    for kind in (
        "duplicates_same_file",
        "duplicates_next_file",
        "reordered",
        "late_files",
        "reinserted_customers",
        "reinserted_orders",
        "malformed_field_count",
        "malformed_garbage",
        "malformed_broken_quote",
        "unknown_op_rows",
        "deleted_customers",
        "deleted_orders",
        "customers_updated_twice",
        "orders_moved_twice",
        FIRST_TOUCH_DUPLICATES,
    ):
        assert stats[kind] >= 1, kind
    assert stats["duplicates"] < stats["changes"] / 100, "trouble stays rare"


def test_files_land_with_their_delivery_time_as_mtime(simulation: RetailSimulation, tmp_path: Path) -> None:
    written = write_landing(simulation, tmp_path)
    assert len(written) == len(simulation.files)
    mtimes = [os.stat(path).st_mtime_ns for path in written]
    assert mtimes == sorted(mtimes)
