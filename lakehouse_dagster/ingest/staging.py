"""Landed files as bronze rows, built with Arrow a whole column at a time, a file at a time.

Each file is parsed (``csv_files.py``), mapped onto the table's columns and typed
(``typing.py``); what did not fit goes, as a JSON object, into ``_rescued_data``: values
that fail their column's type, rescued columns, and malformed lines under ``_malformed_row``.
No row is ever dropped. A batch's files are written one after the other to one staged
Parquet file, so memory holds one file, not the batch.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import reduce

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
from lakehouse_dagster.ingest.typing import arrow_type, try_cast
from lakehouse_dagster.lake.files import LandingFile

_TIMESTAMP = pa.timestamp("us", tz="UTC")


def bronze_schema(plan: ColumnPlan, source: FileSource) -> pa.Schema:
    """The staged batch's schema: the table's columns, typed where hinted, then the metadata."""
    return pa.schema(
        [
            *(
                pa.field(name, arrow_type(source.column_types.get(name, "STRING")))
                for name in plan.table_columns
            ),
            pa.field(SOURCE_FILE, pa.string()),
            pa.field(SOURCE_FILE_MODIFIED_AT, _TIMESTAMP),
            pa.field(SOURCE_ROW, pa.int64()),
            pa.field(INGESTED_AT, _TIMESTAMP),
            pa.field(BATCH_ID, pa.string()),
            pa.field(RESCUED_DATA, pa.string()),
        ]
    )


def bronze_rows(
    parsed: ParsedCsv,
    mapping: dict[str, str | None],
    plan: ColumnPlan,
    source: FileSource,
    landed: LandingFile,
    batch_id: str,
    ingested_at: datetime,
) -> pa.Table:
    """One file's rows as bronze keeps them: the table's columns typed where hinted, and
    everything that did not fit in ``_rescued_data``."""
    table, rows = parsed.table, parsed.table.num_rows
    by_column = {column: header for header, column in mapping.items() if column is not None}
    output: dict[str, pa.Array] = {}
    failed: list[tuple[str, pa.Array, pa.Array]] = []
    for name in plan.table_columns:
        raw = _combined(table.column(by_column[name])) if name in by_column else pa.nulls(rows, pa.string())
        hint = source.column_types.get(name)
        if hint is None:
            output[name] = raw
            continue
        typed = try_cast(raw, hint)
        output[name] = typed
        failed.append((name, raw, pc.and_(pc.is_valid(raw), pc.is_null(typed))))
    for header in (header for header, column in mapping.items() if column is None):
        values = _combined(table.column(header))
        failed.append((header, values, pc.is_valid(values)))
    malformed = _combined(table.column(MALFORMED_LINE))
    failed.append((MALFORMED_ROW, malformed, pc.is_valid(malformed)))
    output[SOURCE_FILE] = pa.repeat(pa.scalar(landed.uri, pa.string()), rows)
    output[SOURCE_FILE_MODIFIED_AT] = pa.repeat(pa.scalar(landed.modified_at, _TIMESTAMP), rows)
    output[SOURCE_ROW] = _combined(table.column(LINE_NUMBER))
    output[INGESTED_AT] = pa.repeat(pa.scalar(ingested_at, _TIMESTAMP), rows)
    output[BATCH_ID] = pa.repeat(pa.scalar(batch_id, pa.string()), rows)
    output[RESCUED_DATA] = rescued_json(failed, rows)
    return pa.table(output).cast(bronze_schema(plan, source))


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
    null where none is. Only the rows that have an entry (usually few) are joined and escaped."""
    present = [(name, values, _combined(pc.fill_null(mask, False))) for name, values, mask in entries]
    present = [(name, values, mask) for name, values, mask in present if pc.any(mask).as_py()]
    if not present:
        return pa.nulls(rows, pa.string())
    rescued = reduce(pc.or_, (mask for _, _, mask in present))
    members = []
    for name, values, mask in present:
        text = pc.fill_null(pc.filter(_combined(values), rescued).cast(pa.string()), "")
        member = pc.binary_join_element_wise(json.dumps(name) + ":", _json_string(text), ",", "")
        members.append(pc.if_else(pc.filter(mask, rescued), member, ""))
    objects = _as_object(pc.binary_join_element_wise(*members, "") if len(members) > 1 else members[0])
    return pc.replace_with_mask(pa.nulls(rows, pa.string()), rescued, objects)


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
