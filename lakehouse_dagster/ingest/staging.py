"""A batch of landed files as bronze rows, built with Arrow a whole column at a time.

Each file is parsed (``csv_files.py``) and mapped onto the table's columns; the batch is
then typed (``typing.py``), and what did not fit goes, as a JSON object, into
``_rescued_data``: values that fail their column's type, rescued columns, and malformed
lines under ``_malformed_row``. No row is ever dropped.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_dagster.ingest.columns import ColumnPlan
from lakehouse_dagster.ingest.csv_files import LINE_NUMBER, MALFORMED_LINE, MALFORMED_ROW, ParsedCsv
from lakehouse_dagster.ingest.sources import (
    BATCH_ID,
    INGESTED_AT,
    RESCUED_DATA,
    SOURCE_FILE,
    SOURCE_FILE_MODIFIED_AT,
    SOURCE_ROW,
    FileSource,
)
from lakehouse_dagster.ingest.typing import try_cast
from lakehouse_dagster.lake.files import LandingFile

_WHOLE_COLUMNS = "_rescued_columns"
_TIMESTAMP = pa.timestamp("us", tz="UTC")


def staged_file(
    parsed: ParsedCsv, mapping: dict[str, str | None], plan: ColumnPlan, landed: LandingFile
) -> pa.Table:
    """One file's rows as text in the table's columns, its rescued columns as JSON, and where
    each row came from."""
    table, rows = parsed.table, parsed.table.num_rows
    by_column = {column: header for header, column in mapping.items() if column is not None}
    columns = {
        name: table.column(by_column[name]) if name in by_column else pa.nulls(rows, pa.string())
        for name in plan.table_columns
    }
    rescued = [header for header, column in mapping.items() if column is None]
    columns[_WHOLE_COLUMNS] = rescued_json(
        [(name, table.column(name), pc.is_valid(table.column(name))) for name in rescued], rows
    )
    columns[SOURCE_ROW] = table.column(LINE_NUMBER)
    columns[MALFORMED_ROW] = table.column(MALFORMED_LINE)
    columns[SOURCE_FILE] = pa.repeat(pa.scalar(landed.uri, pa.string()), rows)
    columns[SOURCE_FILE_MODIFIED_AT] = pa.repeat(pa.scalar(landed.modified_at, _TIMESTAMP), rows)
    return pa.table({name: _combined(values) for name, values in columns.items()})


def bronze_batch(
    staged: list[pa.Table], plan: ColumnPlan, source: FileSource, batch_id: str, ingested_at: datetime
) -> pa.Table:
    """Type the hinted columns and gather everything that did not fit into ``_rescued_data``."""
    batch = pa.concat_tables(staged, promote_options="permissive")
    rows = batch.num_rows
    output: dict[str, pa.Array] = {}
    failed: list[tuple[str, pa.Array, pa.Array]] = []
    for name in plan.table_columns:
        raw = _combined(batch.column(name))
        hint = source.column_types.get(name)
        if hint is None:
            output[name] = raw
            continue
        typed = try_cast(raw, hint)
        output[name] = typed
        failed.append((name, raw, pc.and_(pc.is_valid(raw), pc.is_null(typed))))
    malformed = _combined(batch.column(MALFORMED_ROW))
    failed.append((MALFORMED_ROW, malformed, pc.is_valid(malformed)))
    for name in (SOURCE_FILE, SOURCE_FILE_MODIFIED_AT, SOURCE_ROW):
        output[name] = _combined(batch.column(name))
    output[INGESTED_AT] = pa.repeat(pa.scalar(ingested_at, _TIMESTAMP), rows)
    output[BATCH_ID] = pa.repeat(pa.scalar(batch_id, pa.string()), rows)
    output[RESCUED_DATA] = merge_json(rescued_json(failed, rows), _combined(batch.column(_WHOLE_COLUMNS)))
    return pa.table(output)


def file_counts(batch: pa.Table) -> dict[str, tuple[int, int]]:
    """Rows and rescued rows per file of a batch."""
    counts = batch.group_by(SOURCE_FILE).aggregate([(SOURCE_ROW, "count"), (RESCUED_DATA, "count")])
    return {
        row[SOURCE_FILE]: (row[f"{SOURCE_ROW}_count"], row[f"{RESCUED_DATA}_count"])
        for row in counts.to_pylist()
    }


def _combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


# _rescued_data as JSON, a column at a time -------------------------------------------------------
# Arrow 26 returns an array of the wrong length when it joins strings with an all-null column,
# so nothing joined here is ever null: absent entries are empty strings.

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _json_string(values: pa.Array) -> pa.Array:
    """Each value (never null) as a JSON string literal, quoted and escaped."""
    escaped = values
    for raw, replacement in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        escaped = pc.replace_substring(escaped, raw, replacement)
    if pc.any(pc.match_substring_regex(escaped, _CONTROL.pattern)).as_py():
        escaped = pa.array([json.dumps(v)[1:-1] for v in values.to_pylist()], pa.string())
    return pc.binary_join_element_wise('"', escaped, '"', "")


def rescued_json(entries: list[tuple[str, pa.Array, pa.Array]], rows: int) -> pa.Array:
    """``{"name": "value", ...}`` of the (name, values, present) entries present in each row;
    null where none is. Only the rows that have an entry are escaped (usually few)."""
    members = []
    for name, values, present in entries:
        mask = pc.fill_null(present, False)
        if not pc.any(mask).as_py():
            continue
        text = pc.filter(_combined(values).cast(pa.string()), mask)
        member = pc.binary_join_element_wise(json.dumps(name) + ":", _json_string(pc.fill_null(text, "")), ",", "")
        members.append(pc.replace_with_mask(pa.repeat(pa.scalar("", pa.string()), rows), mask, member))
    if not members:
        return pa.nulls(rows, pa.string())
    return _as_object(pc.binary_join_element_wise(*members, "") if len(members) > 1 else members[0])


def merge_json(first: pa.Array, second: pa.Array) -> pa.Array:
    """Two JSON objects (or nulls) per row, as one object."""
    members = [
        pc.if_else(
            pc.is_valid(part),
            pc.binary_join_element_wise(pc.fill_null(pc.utf8_slice_codeunits(part, 1, -1), ""), ",", ""),
            "",
        )
        for part in (first, second)
    ]
    return _as_object(pc.binary_join_element_wise(*members, ""))


def _as_object(members: pa.Array) -> pa.Array:
    """``{members}`` without the trailing comma, or null where there are no members."""
    present = pc.greater(pc.utf8_length(members), 0)
    inner = pc.utf8_slice_codeunits(members, 0, -1)
    return pc.if_else(present, pc.binary_join_element_wise("{", inner, "}", ""), pa.scalar(None, pa.string()))
