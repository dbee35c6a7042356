"""Parse one landed CSV file into an Arrow table of strings, keeping malformed rows.

Records are lines, as in Spark's CSV reader with ``multiLine`` off: a broken quote or a
wrong field count spoils its own line only. Such a line is kept as a row whose data
columns are null and whose raw text is in ``MALFORMED_LINE``. Empty fields are null;
blank lines are skipped; ``LINE_NUMBER`` is the line number. Malformed lines come after
the others. Each line reads as pyarrow's reader reads that line alone: a quote opens a
quoted value at a field's start only (``ab"c`` is text), and one still open at the line's
end closes there.

pyarrow's reader parses the file. A quote left open would make it read on into the
next lines, so when its records do not map one to one onto lines, the lines with an odd
number of quotes (the only ones that can open a quote without closing it) are set aside
and split one by one by the same rules, and pyarrow parses the rest.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

#: Where a parsed row comes from (its line number) and, for a malformed line, its raw text.
#: A NUL byte cannot occur in a readable file, so these names never clash with a header's.
LINE_NUMBER = "\x00line_number"
MALFORMED_LINE = "\x00malformed_line"
#: The names bronze gives them: the ``_source_row`` column, and the ``_rescued_data`` key.
SOURCE_ROW = "_source_row"
MALFORMED_ROW = "_malformed_row"
_QUOTE = b'"'


class UnreadableFileError(ValueError):
    """The file cannot be parsed at all (not text, no usable header)."""


@dataclass(frozen=True)
class ParsedCsv:
    columns: list[str]
    #: One string column per header column, plus ``LINE_NUMBER`` and ``MALFORMED_LINE``.
    table: pa.Table


def decode(data: bytes) -> str:
    if b"\x00" in data:
        raise UnreadableFileError("binary content (NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFileError(f"not UTF-8 text (byte {error.start})") from None


def parse_header(first_line: str) -> list[str]:
    try:
        fields = next(csv.reader([first_line], strict=True))
    except (csv.Error, StopIteration):
        raise UnreadableFileError("the header row is not valid CSV") from None
    columns = [field.strip() for field in fields]
    if not any(columns):
        raise UnreadableFileError("the header row is empty")
    unnamed = [str(position) for position, name in enumerate(columns, start=1) if not name]
    if unnamed:
        raise UnreadableFileError(f"header column(s) {', '.join(unnamed)} have no name")
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise UnreadableFileError(f"duplicate header column(s): {', '.join(duplicates)}")
    return columns


def read_header(head: bytes) -> list[str]:
    """The header of a file, from its first bytes."""
    return parse_header(decode(head.split(b"\n", 1)[0]).rstrip("\r"))


def parse_csv(data: bytes) -> ParsedCsv:
    """Parse a whole file. Raises ``UnreadableFileError`` if it is not text or has no usable header."""
    decode(data)
    header, _, body = data.partition(b"\n")
    columns = parse_header(decode(header).rstrip("\r"))
    if not body.strip():
        return ParsedCsv(columns, _empty(columns))
    if b"\n\n" not in body and b"\n\r\n" not in body:
        table = _parse_block(body, columns, _line_numbers(body, first=2))
        if table is not None:
            return ParsedCsv(columns, table)
    return ParsedCsv(columns, _parse_isolating_open_quotes(body, columns))


def _line_numbers(block: bytes, first: int) -> np.ndarray:
    lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    return np.arange(first, first + lines, dtype=np.int64)


def _parse_block(block: bytes, columns: list[str], line_numbers: np.ndarray) -> pa.Table | None:
    """pyarrow over lines without a header; None unless every line is one record or one invalid row."""
    invalid: list[tuple[int, str]] = []

    def keep_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=columns, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=keep_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in columns},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid:
        return None
    if table.num_rows + len(invalid) != len(line_numbers) or any(number < 1 for number, _ in invalid):
        return None
    valid = np.ones(len(line_numbers), dtype=bool)
    valid[[number - 1 for number, _ in invalid]] = False
    table = table.append_column(LINE_NUMBER, pa.array(line_numbers[valid]))
    table = table.append_column(MALFORMED_LINE, pa.nulls(table.num_rows, pa.string()))
    malformed = [(int(line_numbers[number - 1]), text) for number, text in invalid if text.strip()]
    return _with_malformed(table, columns, malformed)


def _parse_isolating_open_quotes(body: bytes, columns: list[str]) -> pa.Table:
    kept: list[bytes] = []
    kept_numbers: list[int] = []
    by_line: list[tuple[int, str]] = []
    for number, line in enumerate(body.split(b"\n"), start=2):
        if not line.strip():
            continue
        if line.count(_QUOTE) % 2:
            by_line.append((number, line.decode("utf-8").rstrip("\r")))
        else:
            kept.append(line)
            kept_numbers.append(number)
    table = _parse_block(b"\n".join(kept), columns, np.array(kept_numbers, dtype=np.int64)) if kept else None
    if table is None:
        table = _empty(columns)
        by_line = [
            (n, line.decode("utf-8").rstrip("\r")) for n, line in zip(kept_numbers, kept, strict=True)
        ] + by_line
    well_formed, malformed = [], []
    for number, line in by_line:
        fields = _split_line(line)
        if fields is None or len(fields) != len(columns):
            malformed.append((number, line))
        else:
            well_formed.append((number, fields))
    if well_formed:
        rows = {name: [fields[i] or None for _, fields in well_formed] for i, name in enumerate(columns)}
        rows[LINE_NUMBER] = [number for number, _ in well_formed]
        rows[MALFORMED_LINE] = [None] * len(well_formed)
        table = pa.concat_tables([table, pa.table(rows, schema=table.schema)])
    return _with_malformed(table, columns, malformed)


def _with_malformed(table: pa.Table, columns: list[str], malformed: list[tuple[int, str]]) -> pa.Table:
    if not malformed:
        return table
    rows: dict[str, list] = {name: [None] * len(malformed) for name in columns}
    rows[LINE_NUMBER] = [number for number, _ in malformed]
    rows[MALFORMED_LINE] = [text for _, text in malformed]
    # Appended after the well-formed rows, not sorted in: a sort copies every column of the
    # file for a handful of rows, and LINE_NUMBER keeps each row's place.
    return pa.concat_tables([table, pa.table(rows, schema=table.schema)])


def _empty(columns: list[str]) -> pa.Table:
    schema = pa.schema(
        [
            *(pa.field(name, pa.string()) for name in columns),
            (LINE_NUMBER, pa.int64()),
            (MALFORMED_LINE, pa.string()),
        ]
    )
    return schema.empty_table()


def _split_line(line: str) -> list[str] | None:
    """One line's fields as pyarrow's reader splits a line (values without line breaks), so that a
    line reads the same whichever way its file is parsed: a quote opens a quoted part at a
    field's start only; in it ``""`` is a quote and a lone quote ends it, after which the field
    goes on as plain text (where quotes are text); a quoted part still open ends with the line.
    None for a line with a carriage return inside, which pyarrow reads as two lines."""
    if "\r" in line:
        return None
    fields: list[str] = []
    position, end = 0, len(line)
    while True:
        value = ""
        if line.startswith('"', position):
            position += 1
            while position < end:
                quote = line.find('"', position)
                if quote < 0:
                    value, position = value + line[position:], end
                elif line.startswith('"', quote + 1):
                    value, position = value + line[position : quote + 1], quote + 2
                else:
                    value, position = value + line[position:quote], quote + 1
                    break
        comma = line.find(",", position)
        if comma < 0:
            fields.append(value + line[position:])
            return fields
        fields.append(value + line[position:comma])
        position = comma + 1
