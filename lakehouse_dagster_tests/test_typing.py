"""Bronze typing with Arrow against an oracle written with Python's own parsers."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pyarrow as pa
import pytest

from lakehouse_dagster.ingest.typing import UnknownTypeError, try_cast


def oracle(value: str | None, sql_type: str):
    """What the module's docstring promises, one value at a time."""
    if value is None:
        return None
    text = value.strip()
    if sql_type in ("BIGINT", "INT"):
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            return None
        number = int(text)
        bits = 63 if sql_type == "BIGINT" else 31
        return number if -(2**bits) <= number < 2**bits else None
    if sql_type == "DECIMAL(12,2)":
        if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)", text):
            return None
        try:
            rounded = Decimal(text).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            return None
        return rounded if abs(rounded) < Decimal(10) ** 10 else None
    if sql_type == "DATE":
        match = re.fullmatch(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[ T].*)?", text)
        try:
            return date(int(match[1]), int(match[2]), int(match[3])) if match else None
        except ValueError:
            return None
    if sql_type == "TIMESTAMP":
        match = re.fullmatch(
            r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
            r"(?:[ T]([0-9]{1,2})(?::([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?)?)?"
            r"\s*(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?",
            text,
        )
        if not match:
            return None
        y, mo, d, h, mi, sec, fraction, zone = match.groups()
        try:
            moment = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0), tzinfo=UTC)
        except ValueError:
            return None
        moment += timedelta(microseconds=int((fraction or "0")[:6].ljust(6, "0")))
        if zone and zone != "Z":
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            moment -= offset if zone[0] == "+" else -offset
        return moment
    raise AssertionError(sql_type)


def random_text(rng: random.Random, sql_type: str) -> str | None:
    pick = rng.random()
    if pick < 0.05:
        return None
    if pick < 0.15:
        return rng.choice(
            ["", " ", "abc", "1e3", "--1", "1.2.3", "2024-13-45", "2023-02-29", "12:00", "+", "."]
        )
    if sql_type in ("BIGINT", "INT"):
        digits = rng.randint(1, 21)
        return rng.choice(["", "-", "+", " "]) + "".join(rng.choice("0123456789") for _ in range(digits))
    if sql_type == "DECIMAL(12,2)":
        whole = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 12)))
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 5)))
        return (
            rng.choice(["", "-"])
            + (whole or "0")
            + ("." + fraction if fraction or rng.random() < 0.2 else "")
        )
    day = date(2020, 1, 1) + timedelta(days=rng.randint(0, 2_500))
    text = f"{day.year}-{day.month:0{rng.choice([1, 2])}d}-{day.day:02d}"
    if sql_type == "TIMESTAMP" and rng.random() < 0.8:
        text += f"{rng.choice([' ', 'T'])}{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        if rng.random() < 0.8:
            text += f":{rng.randint(0, 59):02d}"
            if rng.random() < 0.6:
                text += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        text += rng.choice(["", "", "Z", "+02:00", "-0530"])
    return text


@pytest.mark.parametrize("sql_type", ["BIGINT", "INT", "DECIMAL(12,2)", "DATE", "TIMESTAMP"])
@pytest.mark.parametrize("clean", [True, False], ids=["clean column", "dirty column"])
def test_try_cast_agrees_with_the_oracle(sql_type, clean) -> None:
    rng = random.Random(f"{sql_type}:{clean}")
    values = [random_text(rng, sql_type) for _ in range(4_000)]
    if clean:  # a column the fast path takes whole
        values = [v for v in values if v is not None and oracle(v, sql_type) is not None]

    typed = try_cast(pa.array(values, pa.string()), sql_type).to_pylist()

    expected = [oracle(v, sql_type) for v in values]
    mismatches = [(v, t, e) for v, t, e in zip(values, typed, expected, strict=True) if t != e]
    assert mismatches == [], mismatches[:10]
    assert sum(e is not None for e in expected) > len(values) // 5, "the sample exercises valid values"


def test_dates_at_month_ends_and_starts_agree_with_the_oracle() -> None:
    """Days 1 to 3 and 28 to 32 of every month, leap years and not, beside text that is no date:
    a day past the month's end must be null, not rolled over into the next month."""
    values = [
        f"{year:04d}-{month:02d}-{day:02d}"
        for year in (1900, 2000, 2023, 2024)
        for month in range(0, 14)
        for day in (0, 1, 2, 3, 28, 29, 30, 31, 32)
    ]
    values += [
        "31/12/2023",
        "not a date",
        "2024-2-29",
        " 2024-02-29 ",
        "2024-02-29T23:59",
        "+024-02-29",
        None,
    ]

    typed = try_cast(pa.array(values, pa.string()), "DATE").to_pylist()

    expected = [oracle(v, "DATE") for v in values]
    assert [(v, t) for v, t, e in zip(values, typed, expected, strict=True) if t != e] == []
    assert sum(e is None for e in expected) > 100 and sum(e is not None for e in expected) > 300


def test_an_unknown_type_hint_is_named() -> None:
    with pytest.raises(UnknownTypeError, match="'MONEY'"):
        try_cast(pa.array(["1"]), "MONEY")


def test_text_one_character_away_from_a_date_agrees_with_the_oracle() -> None:
    """Ten characters that ``strptime`` may still read as a date (a space or a sign before a
    number: ``2023-01- 3``) are not one unless the rules say so, and never fail the column."""
    rng = random.Random("near dates")
    values = ["2023-01- 3", "2023- 1-15", "2023-01-+3", "+2023-1-15", "2023-1-015", "0000-01-01"]
    for _ in range(3_000):
        day = date(1990, 1, 1) + timedelta(days=rng.randint(0, 15_000))
        text = list(day.isoformat())
        if rng.random() < 0.7:  # the others stay dates, so that both kinds are in the column
            text[rng.randrange(len(text))] = rng.choice(" +-0T/:a")
        values.append("".join(text))

    typed = try_cast(pa.array(values, pa.string()), "DATE").to_pylist()

    expected = [oracle(v, "DATE") for v in values]
    assert [(v, t, e) for v, t, e in zip(values, typed, expected, strict=True) if t != e] == []
    assert sum(e is None for e in expected) > 500 and sum(e is not None for e in expected) > 500


def test_year_zero_is_not_a_date_nor_a_time() -> None:
    """Arrow reads year 0, which Python, pandas and PostgreSQL cannot hold: it is null, like
    any text that is no date, whichever path the column takes."""
    for values in (["0000-01-01", "2024-02-29"], ["0000-01-01", "2024-02-29", "31/12/2023"]):
        assert try_cast(pa.array(values), "DATE").to_pylist()[:2] == [None, date(2024, 2, 29)]
    stamps = ["0000-12-31T23:00:00", "0001-01-01T00:30:00+01:00", "0001-01-01T00:30:00-01:00"]
    assert try_cast(pa.array(stamps), "TIMESTAMP").to_pylist() == [
        None,
        None,
        datetime(1, 1, 1, 1, 30, tzinfo=UTC),
    ]


@pytest.mark.parametrize("sql_type", ["BIGINT", "DECIMAL(12,2)", "DATE", "TIMESTAMP"])
def test_a_value_is_typed_the_same_whatever_the_rest_of_its_column(sql_type) -> None:
    """A column of clean values takes Arrow's own parser whole, any other the rules: both must
    agree value by value (``2023-01-05 05``, an hour alone, was a time in a clean column only)."""
    rng = random.Random(sql_type)
    pieces = [
        "2023",
        "-",
        "01",
        "1",
        "05",
        "T",
        " ",
        ":",
        "30",
        ".",
        "123456789",
        "Z",
        "+01:00",
        "+0100",
        "e3",
    ]
    values = [
        "2023-01-05" + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 5))) for _ in range(1_500)
    ]
    values += [random_text(rng, sql_type) for _ in range(1_500)]

    alone = [try_cast(pa.array([value], pa.string()), sql_type).to_pylist()[0] for value in values]
    beside_text = try_cast(pa.array([*values, "no value"], pa.string()), sql_type).to_pylist()[:-1]

    assert [(v, a, b) for v, a, b in zip(values, alone, beside_text, strict=True) if a != b] == []
    assert sum(a is not None for a in alone) > 100, "the sample exercises values each path takes"


def test_year_10000_in_utc_is_not_a_time() -> None:
    """A zone west of UTC moves 9999-12-31 into year 10000, which Python cannot hold (reading the
    staged file's statistics failed): null, like year 0, whichever path the column takes."""
    stamps = ["9999-12-31T23:30:00-01:00", "9999-12-31T22:30:00-01:00"]
    for values in (stamps, [*stamps, "not a time"]):
        assert try_cast(pa.array(values), "TIMESTAMP").to_pylist()[:2] == [
            None,
            datetime(9999, 12, 31, 23, 30, tzinfo=UTC),
        ]
    assert try_cast(pa.array(["9999-12-31T23:30:00-01:00"]), "DATE").to_pylist() == [date(9999, 12, 31)]
