"""``_rescued_data`` built a column at a time, against ``json.dumps`` one row at a time."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest

from lakehouse_dagster.ingest.staging import rescued_json

NASTY = ['say "hi"', "back\\slash", "line\nbreak", "tab\there", "bell\x07", "é ü 東京", "", "{}", ","]


def row_by_row(entries: list[tuple[str, list, list]], rows: int) -> list[str | None]:
    """What the column must hold: each row's present entries, in order, as one JSON object."""
    out = []
    for row in range(rows):
        members = {name: values[row] or "" for name, values, present in entries if present[row]}
        out.append(json.dumps(members, ensure_ascii=False, separators=(",", ":")) if members else None)
    return out


@pytest.mark.parametrize("share", [0.0, 0.01, 0.3, 1.0], ids=["none", "few", "many", "every row"])
def test_rescued_json_agrees_with_json_dumps(share: float) -> None:
    rng = random.Random(share)
    rows = 3_000
    entries = []
    for name in ("id", 'odd "name"', "_malformed_row"):
        values = [rng.choice([*NASTY, f"v{i}", None]) for i in range(rows)]
        present = [rng.random() < share for _ in range(rows)]
        entries.append((name, values, present))

    built = rescued_json(
        [(name, pa.array(values, pa.string()), pa.array(present)) for name, values, present in entries], rows
    ).to_pylist()

    expected = row_by_row(entries, rows)
    assert [None if b is None else json.loads(b) for b in built] == [
        None if e is None else json.loads(e) for e in expected
    ]
    # Members keep the entries' order.
    assert [None if b is None else list(json.loads(b)) for b in built] == [
        None if e is None else list(json.loads(e)) for e in expected
    ]
    if share > 0:
        assert any(e is not None and len(json.loads(e)) > 1 for e in expected), "rows with several entries"


def test_present_marks_may_be_null_and_chunked() -> None:
    values = pa.chunked_array([["a", "b"], ["c"]])
    present = pa.chunked_array([[True, None], [True]])
    assert rescued_json([("x", values, present)], 3).to_pylist() == ['{"x":"a"}', None, '{"x":"c"}']
