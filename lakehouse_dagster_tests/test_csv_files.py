"""Parsing one landed CSV file: records are lines, malformed lines are kept, not dropped."""

from __future__ import annotations

import csv
import io
import random

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from lakehouse_dagster.ingest.csv_files import LINE_NUMBER as SOURCE_ROW
from lakehouse_dagster.ingest.csv_files import MALFORMED_LINE as MALFORMED_ROW
from lakehouse_dagster.ingest.csv_files import UnreadableFileError, parse_csv


def rows(data: bytes) -> list[dict]:
    """The parsed rows in line order (the parser puts malformed lines last)."""
    return sorted(parse_csv(data).table.to_pylist(), key=lambda row: row[SOURCE_ROW])


def pyarrow_alone(line: str, header: list[str]) -> tuple | None:
    """How pyarrow's reader reads one line as a file of its own: its fields (empty ones null, as
    in bronze), or None (malformed)."""
    try:
        table = pacsv.read_csv(
            io.BytesIO(line.encode()),
            read_options=pacsv.ReadOptions(column_names=header),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid:
        return None
    return tuple(table.to_pylist()[0].values()) if table.num_rows == 1 else None


def line_oracle(data: bytes) -> list[dict]:
    """What the documented semantics say, line by line: each line as pyarrow reads it alone."""
    lines = data.decode().splitlines()
    header = next(csv.reader([lines[0]]))
    expected = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = pyarrow_alone(line, header)
        if fields is not None:
            expected.append(
                {**dict(zip(header, fields, strict=True)), SOURCE_ROW: number, MALFORMED_ROW: None}
            )
        else:
            expected.append({**dict.fromkeys(header), SOURCE_ROW: number, MALFORMED_ROW: line})
    return expected


@pytest.mark.parametrize("dirt", [0.0, 0.01, 0.2])
def test_parsing_matches_the_line_oracle(dirt: float) -> None:
    rng = random.Random(int(dirt * 100))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "name", "note"])
    for number in range(3_000):
        roll = rng.random()
        if roll < dirt / 4:
            buffer.write(f'{number},"open quote,x\n')
        elif roll < dirt / 2:
            buffer.write(f"{number},too,many,fields\n")
        elif roll < 3 * dirt / 4:
            buffer.write(f"{number},short\n")
        elif roll < dirt:
            buffer.write("\n" if rng.random() < 0.5 else "   \n")
        else:
            writer.writerow(
                [number, rng.choice(["Ann", "O'Brien, Jr.", 'say "hi"', ""]), rng.choice(["NA", "null", ""])]
            )
    data = buffer.getvalue().encode()

    parsed = parse_csv(data)

    assert sorted(parsed.table.to_pylist(), key=lambda row: row[SOURCE_ROW]) == line_oracle(data)
    assert malformed_count(parsed) == sum(row[MALFORMED_ROW] is not None for row in line_oracle(data))


def test_a_broken_quote_spoils_only_its_own_line() -> None:
    data = b'id,name,email\n1,Ann,a@x\n2,"Bob,b@x\n3,Cy,c@x\n4,"Di, Jr",d@x\n'

    parsed = rows(data)

    assert [row["id"] for row in parsed] == ["1", None, "3", "4"]
    assert parsed[1][MALFORMED_ROW] == '2,"Bob,b@x'
    assert parsed[3]["name"] == "Di, Jr"
    assert [row[SOURCE_ROW] for row in parsed] == [2, 3, 4, 5]


def test_a_line_reads_the_same_whichever_way_its_file_is_parsed() -> None:
    """A file pyarrow reads whole, and the same file with a blank line (which sends it the
    line-by-line way), give each line the same fields or the same malformed text: the fields
    pyarrow gives that line alone (``1,ab"c,3`` is three fields, a quote inside a field is text)."""
    rng = random.Random(7)
    pieces = ["a", "1", '"', '""', ",", " ", "é", "\t", '"""']
    lines = ['1,ab"c,3', '1,"a"b"c",3', '1,2,"abc', '2,"Bob,b@x']
    lines += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 10))) for _ in range(400)]
    lines = [line for line in lines if line.strip()]
    header = ["x", "y", "z"]

    for line in lines:
        whole = rows(("x,y,z\n1,2,3\n" + line + "\n4,5,6\n").encode())
        by_line = rows(("x,y,z\n1,2,3\n" + line + "\n4,5,6\n\n").encode())
        assert whole == by_line, line
        read = whole[1]
        fields = None if read[MALFORMED_ROW] is not None else tuple(read[name] for name in header)
        assert fields == pyarrow_alone(line, header), line
        assert [row[SOURCE_ROW] for row in whole] == [2, 3, 4]
    assert sum(pyarrow_alone(line, header) is None for line in lines) > 50, (
        "malformed lines are in the sample"
    )


def test_wrong_field_counts_are_kept_with_their_raw_text() -> None:
    parsed = parse_csv(b"a,b,c\n1,2,3\n1,2\n1,2,3,4\n")

    assert malformed_count(parsed) == 2
    assert [row[MALFORMED_ROW] for row in parsed.table.to_pylist()] == [None, "1,2", "1,2,3,4"]
    assert all(row["a"] is None for row in parsed.table.to_pylist()[1:])


def test_blank_lines_are_skipped_and_line_numbers_stay_true() -> None:
    parsed = rows(b"a,b\r\n1,2\r\n\r\n3,4\r\n")

    assert [(row["a"], row[SOURCE_ROW]) for row in parsed] == [("1", 2), ("3", 4)]


def test_byte_order_mark_and_padded_header_names_are_cleaned() -> None:
    parsed = parse_csv("\ufeff id , name \n1,Ann\n".encode())

    assert parsed.columns == ["id", "name"]


def test_header_only_file_has_no_rows() -> None:
    assert parse_csv(b"a,b\n").table.num_rows == 0
    assert parse_csv(b"a,b").table.num_rows == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x01\x02binary", "binary"),
        (b"a,b\n1,\xff\n", "not UTF-8"),
        (b"a,,c\n1,2,3\n", "no name"),
        (b"a,a\n1,2\n", "duplicate"),
        (b"\n1,2\n", "empty"),
    ],
)
def test_unreadable_files_raise_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFileError, match=reason):
        parse_csv(data)


def malformed_count(parsed) -> int:
    return parsed.table.num_rows - parsed.table.column(MALFORMED_ROW).null_count


# Records are \n lines: pyarrow's own line breaks (a lone \r, a quoted value across lines, a
# blank line it skips) must never shift rows against lines, even where their counts agree.


def csv_module_oracle(data: bytes) -> list[tuple[int, tuple | None, str | None]]:
    """(line number, fields or None, malformed text or None) per non-blank line, in line order,
    from Python's csv module reading each ``\\n`` line alone: one final ``\\r`` ends the line, any
    other ``\\r`` or a wrong field count makes it malformed; empty fields are null."""
    header_line, _, body = data.decode().partition("\n")
    header = next(csv.reader([header_line.removesuffix("\r")]))
    expected = []
    for number, line in enumerate(body.split("\n"), start=2):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        fields = None if "\r" in line else next(csv.reader([line]))
        if fields is None or len(fields) != len(header):
            expected.append((number, None, line))
        else:
            expected.append((number, tuple(value or None for value in fields), None))
    return expected


def parsed_by_line(data: bytes) -> list[tuple[int, tuple | None, str | None]]:
    parsed = parse_csv(data)
    return sorted(
        (
            row[SOURCE_ROW],
            None if row[MALFORMED_ROW] is not None else tuple(row[name] for name in parsed.columns),
            row[MALFORMED_ROW],
        )
        for row in parsed.table.to_pylist()
    )


@pytest.mark.parametrize(
    "data",
    [
        # a quoted value across two lines (one record less) and a lone \r (one more): they compensate
        b'id,note\n1,"line one\nline two"\n2,x\ry\n3,z\n',
        # a blank line right after the header (skipped by pyarrow) and a lone \r
        b"id,note\n\n1,a\rb\n2,c\n",
        b"id,note\r\n\r\n1,a\rb\r\n2,c\r\n",
        # a lone \r and a quote left open with an even number of quotes
        b'id,note\n1,ab"c,"d\n2,x\ry\n3,z\n',
        # more \r than one at a line's end: the first is data
        b"id,note\n1,a\r\r\n2,b\n",
    ],
)
def test_pyarrows_line_breaks_never_shift_rows_against_lines(data: bytes) -> None:
    assert parsed_by_line(data) == csv_module_oracle(data)


def test_every_line_is_its_own_record_in_random_files() -> None:
    """A property test against the csv module's reading of each line alone, over small random
    files made of the characters that move pyarrow's records: quotes, commas, \\r, blank lines."""
    rng = random.Random(20261129)
    pieces = ["a", "b", ",", '"', '""', " ", "\r", "é", "\t", "1,2", '"x,y"']
    for _ in range(3_000):
        lines = [
            "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(rng.randint(1, 6))
        ]
        data = ("a,b\n" + "\n".join(lines) + rng.choice(["", "\n", "\r\n"])).encode()
        if rng.random() < 0.5:
            data = data.replace(b"\n", b"\r\n")
        assert parsed_by_line(data) == csv_module_oracle(data), data


def test_a_quote_left_open_on_the_last_line_keeps_no_line_break() -> None:
    for data in (b'id,email\n1,"a@x.com\n', b'id,email\r\n1,"a@x.com\r\n', b'id,email\n1,"a@x.com'):
        assert [row["email"] for row in rows(data)] == ["a@x.com"], data


def test_ordinary_files_take_pyarrows_whole_file_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-line way is for files with broken lines: a clean file (CRLF or LF, quoted values
    with commas and quotes) is parsed whole."""
    from lakehouse_dagster.ingest import csv_files

    def per_line(*args: object) -> None:
        raise AssertionError("parsed line by line")

    monkeypatch.setattr(csv_files, "_parse_isolating_open_quotes", per_line)
    for newline in (b"\n", b"\r\n"):
        data = newline.join([b"id,name", b'1,"Silva, Jr."', b'2,"say ""hi"""', b"3,", b""])
        assert [row["name"] for row in rows(data)] == ["Silva, Jr.", 'say "hi"', None]
