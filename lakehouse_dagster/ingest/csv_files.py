"""Parse one landed CSV file into an Arrow table of strings, keeping malformed rows.

Records are lines, as in Spark's CSV reader with ``multiLine`` off: a broken quote or a
wrong field count spoils its own line only. Such a line is kept as a row whose data
columns are null and whose raw text is in ``MALFORMED_LINE``. Empty fields are null;
blank lines are skipped; ``LINE_NUMBER`` is the line number. Malformed lines come after
the others. Each line reads as pyarrow's reader reads that line alone: a quote opens a
quoted value at a field's start only (``ab"c`` is text), and one still open at the line's
end closes there.

A line is split on ``\n`` only: one final ``\r`` is its end (CRLF), any other ``\r`` makes it
malformed (pyarrow would read two lines there).

pyarrow's reader parses the whole file when that cannot shift records against lines: no
carriage return but before ``\n``, no blank line (pyarrow skips it), one record per line and
no value holding a line break (a quote left open reads on into the next lines). Otherwise the
lines that hold a ``\r`` or leave a quote open (``_CLOSES_ITS_QUOTES``) are set aside and split
one by one by the same rules, and pyarrow parses the rest.
"""

from __future__ import annotations

import csv
import re
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
#: Bytes of a file searched at once for line breaks (bounds the memory the search takes).
_PIECE = 1 << 24
#: A line (without ``\r``) that pyarrow reads alone without a quote left open at its end. A field
#: is plain (not starting with a quote), or quoted: ``""`` inside, a lone quote closes it, and
#: plain text may follow. Unambiguous (a run of quotes splits one way), so it never backtracks far.
_FIELD = rb'(?:"(?:[^"]|"")*"(?:[^",][^,]*)?|(?:[^",][^,]*)?)'
_CLOSES_ITS_QUOTES = re.compile(rb"%s(?:,%s)*" % (_FIELD, _FIELD))


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
    breaks = _line_breaks(body)
    if not breaks.blank_line and not breaks.lone_carriage_return:
        table = _parse_block(body, columns, np.arange(2, 2 + breaks.lines, dtype=np.int64))
        if table is not None:
            return ParsedCsv(columns, table)
    return ParsedCsv(columns, _parse_isolating_open_quotes(body, columns, breaks.lone_carriage_return))


@dataclass(frozen=True)
class _LineBreaks:
    lines: int
    #: An empty line, or one of only ``\r``: pyarrow skips it.
    blank_line: bool
    #: A ``\r`` not followed by ``\n``: pyarrow breaks a line there.
    lone_carriage_return: bool


def _line_breaks(body: bytes) -> _LineBreaks:
    """How pyarrow's line breaks in ``body`` can differ from its ``\n`` lines. Vectorised a piece
    at a time: Python's byte search is several times slower."""
    data = np.frombuffer(body, dtype=np.uint8)
    lines, blank, lone = 0, body.startswith((b"\n", b"\r\n")), False
    for start in range(0, len(data), _PIECE):
        piece = data[start : start + _PIECE + 2]  # overlaps the next piece by the longest pattern
        newline, carriage_return = piece == 10, piece == 13
        lines += int(np.count_nonzero(newline[:_PIECE]))
        blank = blank or bool(np.any(newline[:-1] & newline[1:]))
        if np.any(carriage_return):
            at_end = start + len(piece) == len(data)
            lone = lone or bool(
                np.any(carriage_return[:-1] & ~newline[1:]) or (at_end and carriage_return[-1])
            )
            blank = blank or bool(np.any(newline[:-2] & carriage_return[1:-1] & newline[2:]))
    return _LineBreaks(lines + (0 if body.endswith(b"\n") else 1), blank, lone)


def _parse_block(block: bytes, columns: list[str], line_numbers: np.ndarray) -> pa.Table | None:
    """pyarrow over lines without a header (and without a ``\r`` but before ``\n``, nor a blank
    line); None unless every line is one record or one invalid row."""
    invalid: list[tuple[int, str]] = []

    def keep_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(_without_final_line_break(block)),
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
    if _holds_line_break(table):  # a record spanning lines, though the counts agree
        return None
    valid = np.ones(len(line_numbers), dtype=bool)
    valid[[number - 1 for number, _ in invalid]] = False
    table = table.append_column(LINE_NUMBER, pa.array(line_numbers[valid]))
    table = table.append_column(MALFORMED_LINE, pa.nulls(table.num_rows, pa.string()))
    malformed = [(int(line_numbers[number - 1]), text) for number, text in invalid if text.strip()]
    return _with_malformed(table, columns, malformed)


def _parse_isolating_open_quotes(body: bytes, columns: list[str], lone_carriage_return: bool) -> pa.Table:
    """Lines that leave a quote open or hold a lone ``\r`` split one by one, pyarrow over the rest."""
    kept: list[bytes] = []
    kept_numbers: list[int] = []
    by_line: list[tuple[int, bytes]] = []
    for number, line in enumerate(body.split(b"\n"), start=2):
        if not line.strip():
            continue
        # An odd number of quotes leaves one open: cheap, and the usual way a quote is broken.
        if line.count(_QUOTE) % 2 or (lone_carriage_return and b"\r" in line.removesuffix(b"\r")):
            by_line.append((number, line))
        else:
            kept.append(line)
            kept_numbers.append(number)
    table = _parse_kept(kept, kept_numbers, columns)
    if table is None:  # an even number of quotes can leave one open too (ab"c,"d)
        still_kept = [_CLOSES_ITS_QUOTES.fullmatch(line.removesuffix(b"\r")) is not None for line in kept]
        by_line += [
            (n, line) for n, line, keep in zip(kept_numbers, kept, still_kept, strict=True) if not keep
        ]
        kept_numbers = [n for n, keep in zip(kept_numbers, still_kept, strict=True) if keep]
        kept = [line for line, keep in zip(kept, still_kept, strict=True) if keep]
        table = _parse_kept(kept, kept_numbers, columns)
    if table is None:
        table = _empty(columns)
        by_line += zip(kept_numbers, kept, strict=True)
    well_formed, malformed = [], []
    for number, raw in sorted(by_line):
        line = raw.removesuffix(b"\r").decode("utf-8")
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


def _parse_kept(kept: list[bytes], numbers: list[int], columns: list[str]) -> pa.Table | None:
    if not kept:
        return _empty(columns)
    return _parse_block(b"\n".join(kept), columns, np.array(numbers, dtype=np.int64))


def _without_final_line_break(block: bytes) -> pa.Buffer:
    """The block without its final ``\n``, ``\r\n`` or ``\r`` (of a CRLF line, in a block of kept
    lines), which a quote left open on the last line would keep in its value (zero-copy)."""
    end = len(block)
    if block.endswith(b"\n"):
        end -= 1
    if block.endswith(b"\r", 0, end):
        end -= 1
    return pa.py_buffer(block).slice(0, end)


def _holds_line_break(table: pa.Table) -> bool:
    """Whether a value holds ``\r`` or ``\n``. A string chunk's values lie one after another in its
    data buffer: searching the buffer is ten times faster than a compute kernel per value (and a
    buffer holding bytes beyond the chunk's values could only send the file the per-line way)."""
    for column in table.columns:
        if not pa.types.is_string(column.type):
            continue
        for chunk in column.chunks:
            values = chunk.buffers()[2]
            if values is not None and (b"\n" in (raw := values.to_pybytes()) or b"\r" in raw):
                return True
    return False


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
