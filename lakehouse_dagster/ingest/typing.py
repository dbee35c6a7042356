"""Type CSV text with Arrow, and rescue what does not parse: the bronze schema hints.

``try_cast(values, sql_type)`` returns the typed values, null where a value does not parse,
like Spark's ``try_cast``. It runs on the driver, whole columns at a time, on every engine.

Accepted text, after trimming whitespace:

- integers (``BIGINT``, ``INT``, ``SMALLINT``, ``TINYINT``): an optional sign and digits, in range;
- ``DECIMAL(p, s)``: plain notation (``-12.345``, ``.5``), rounded half away from zero to
  ``s`` places; null if it needs more than ``p - s`` integer digits;
- ``DOUBLE`` / ``FLOAT``: decimal or scientific notation, ``NaN``, ``Infinity``;
- ``BOOLEAN``: ``true/false``, ``t/f``, ``yes/no``, ``y/n``, ``1/0`` in any case;
- ``DATE``: ``yyyy-m-d``, optionally followed by a space or ``T`` and anything;
- ``TIMESTAMP``: ``yyyy-m-d``, optionally ``[ T]HH[:mm[:ss[.fraction]]]`` and a zone (``Z`` or
  ``±HH[:mm]``); without a zone the value is UTC. Fractions beyond microseconds are cut.
- dates and timestamps lie in years 1 to 9999 (UTC): year 0 is not a date, and
  ``9999-12-31T23:30:00-01:00`` (year 10000 in UTC) is null too.
- ``STRING``: the text itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

_INTEGERS = {
    "BIGINT": (pa.int64(), -(2**63), 2**63 - 1),
    "LONG": (pa.int64(), -(2**63), 2**63 - 1),
    "INT": (pa.int32(), -(2**31), 2**31 - 1),
    "INTEGER": (pa.int32(), -(2**31), 2**31 - 1),
    "SMALLINT": (pa.int16(), -(2**15), 2**15 - 1),
    "TINYINT": (pa.int8(), -(2**7), 2**7 - 1),
}
_DECIMAL = re.compile(r"^DECIMAL\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_FLOAT = r"(?i)^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([e][+-]?[0-9]+)?|nan|inf|infinity)$"
_TRUE = ["t", "true", "y", "yes", "1"]
_FALSE = ["f", "false", "n", "no", "0"]
_DATE = r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})(?:[ T].*)?$"
_ISO_DATE_PREFIX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[ T].*)?$"
_PLAIN_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP = (
    r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:[ T](?P<H>[0-9]{1,2})(?::(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:\.(?P<f>[0-9]+))?)?)?)?"
    r"\s*(?P<z>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?$"
)


class UnknownTypeError(ValueError):
    """A schema hint names a type the bronze typing does not know."""


def arrow_type(sql_type: str) -> pa.DataType:
    """The Arrow type of a Spark SQL type name, as bronze stores it."""
    name = sql_type.strip().upper()
    if name in _INTEGERS:
        return _INTEGERS[name][0]
    if match := _DECIMAL.match(name):
        return pa.decimal128(int(match[1]), int(match[2]))
    simple = {
        "DOUBLE": pa.float64(),
        "FLOAT": pa.float32(),
        "BOOLEAN": pa.bool_(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "STRING": pa.string(),
    }
    if name not in simple:
        raise UnknownTypeError(
            f"unknown column type {sql_type!r}; known: {', '.join([*_INTEGERS, *simple])}, DECIMAL(p,s)"
        )
    return simple[name]


def same_type(declared: str, stored: str) -> bool:
    """Whether two Spark SQL type names are one type as bronze stores it (``LONG`` is ``bigint``)."""
    try:
        return arrow_type(declared) == arrow_type(stored)
    except UnknownTypeError:
        return declared.strip().lower() == stored.strip().lower()


def try_cast(values: pa.Array | pa.ChunkedArray, sql_type: str) -> pa.Array:
    """``values`` (text) as ``sql_type``; null where a value does not parse."""
    target = arrow_type(sql_type)
    text = pc.utf8_trim_whitespace(_combined(values).cast(pa.string()))
    if pa.types.is_string(target):
        return _combined(values).cast(pa.string())
    if pa.types.is_integer(target):
        _, low, high = _INTEGERS[sql_type.strip().upper()]
        return _integers(text, target, low, high)
    if pa.types.is_decimal(target):
        return _decimals(text, target)
    if pa.types.is_floating(target):
        return pc.cast(_where(pc.match_substring_regex(text, _FLOAT), text), target)
    if pa.types.is_boolean(target):
        lowered = pc.utf8_lower(text)
        return pc.if_else(
            pc.is_in(lowered, pa.array(_TRUE)),
            True,
            pc.if_else(pc.is_in(lowered, pa.array(_FALSE)), False, pa.scalar(None, pa.bool_())),
        )
    if pa.types.is_date(target):
        return _in_years_one_to_9999(_strict(text, pa.date32()) or _dates(text))
    strict = _strict(text, pa.timestamp("us"))
    return _in_years_one_to_9999(strict.cast(target) if strict is not None else _timestamps(text))


def _in_years_one_to_9999(moments: pa.Array) -> pa.Array:
    """Null outside 0001-01-01 to 9999-12-31 (UTC): Arrow reads year 0, and a zone west of UTC
    moves 9999-12-31 into year 10000, which neither Python, pandas nor PostgreSQL can hold
    (reading such a value back, the file's statistics first, would fail, not the typing)."""
    years = pc.year(moments)
    outside = pc.fill_null(pc.or_(pc.less(years, 1), pc.greater(years, 9999)), False)
    return _where(pc.invert(outside), moments) if pc.any(outside).as_py() else moments


def _strict(text: pa.Array, target: pa.DataType) -> pa.Array | None:
    """Arrow's own ISO parsing of the whole column: a column of clean values (the usual case)
    is typed in one pass; a single value it cannot parse sends the column the long way."""
    try:
        return pc.cast(text, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _fast_then_exact(
    text: pa.Array, plain: pa.Array, target: pa.DataType, exact: Callable[[pa.Array], pa.Array]
) -> pa.Array:
    """Arrow's own cast of the ``plain`` values (a form that rules out those Arrow accepts and the
    rules do not, such as hex or exponents), ``exact`` of the others. If the cast refuses a plain
    value (out of range, or needing rounding), ``exact`` types them all."""
    plain = pc.fill_null(plain, False)
    if not pc.any(plain).as_py():
        return exact(text)
    try:
        fast = pc.cast(_where(plain, text), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return exact(text)
    others = pc.and_(pc.is_valid(text), pc.invert(plain))
    if not pc.any(others).as_py():
        return fast
    return pc.replace_with_mask(fast, others, exact(pc.filter(text, others)))


def _combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _where(condition: pa.Array, values: pa.Array) -> pa.Array:
    """``values`` where ``condition`` is true, else null."""
    return pc.if_else(pc.fill_null(condition, False), values, pa.scalar(None, values.type))


def _integers(text: pa.Array, target: pa.DataType, low: int, high: int) -> pa.Array:
    return _fast_then_exact(
        text, _plain_integers(text), target, lambda rest: _exact_integers(rest, target, low, high)
    )


def _plain_integers(text: pa.Array) -> pa.Array:
    """``-?[0-9]+``: ASCII digits, after a minus sign (eight times cheaper than the regex)."""
    plain = pc.ascii_is_decimal(text)
    negative = pc.fill_null(pc.starts_with(text, "-"), False)
    if not pc.any(negative).as_py():
        return plain
    return pc.or_(plain, pc.and_(negative, pc.ascii_is_decimal(pc.utf8_slice_codeunits(text, 1))))


def _exact_integers(text: pa.Array, target: pa.DataType, low: int, high: int) -> pa.Array:
    digits = pc.replace_substring_regex(text, r"^[+-]?0*", "")
    candidates = _where(
        pc.and_(pc.match_substring_regex(text, r"^[+-]?[0-9]+$"), pc.less_equal(pc.utf8_length(digits), 38)),
        text,
    )
    wide = pc.cast(candidates, pa.decimal128(38, 0))
    in_range = pc.and_(
        pc.greater_equal(wide, pa.scalar(low, pa.decimal128(38, 0))),
        pc.less_equal(wide, pa.scalar(high, pa.decimal128(38, 0))),
    )
    return pc.cast(_where(in_range, wide), target)


def _decimals(text: pa.Array, target: pa.Decimal128Type) -> pa.Array:
    # Arrow's own cast of plain values that need no rounding (the usual case).
    plain = pc.match_substring_regex(text, r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$")
    return _fast_then_exact(text, plain, target, lambda rest: _exact_decimals(rest, target))


def _exact_decimals(text: pa.Array, target: pa.Decimal128Type) -> pa.Array:
    precision, scale = target.precision, target.scale
    parts = pc.extract_regex(text, r"^(?P<sign>[+-]?)0*(?P<int>[0-9]*)\.?(?P<frac>[0-9]*)$")
    sign, whole, fraction = (pc.struct_field(parts, name) for name in ("sign", "int", "frac"))
    plain = pc.and_(
        pc.match_substring_regex(text, r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$"),
        pc.less_equal(pc.utf8_length(whole), precision - scale),
    )
    # Exactly scale + 1 fraction digits: enough to round half away from zero, exactly.
    digits = pc.utf8_rpad(pc.utf8_slice_codeunits(fraction, 0, scale + 1), scale + 1, "0")
    whole = pc.if_else(pc.equal(pc.utf8_length(whole), 0), "0", whole)
    exact = pc.binary_join_element_wise(pc.binary_join_element_wise(sign, whole, ""), digits, ".")
    # One more digit on each side: room for the rounding digit and for a carry (9.995 -> 10.00).
    wide_type = (pa.decimal128 if precision < 37 else pa.decimal256)(precision + 2, scale + 1)
    wide = pc.cast(_where(plain, exact), wide_type)
    rounded = pc.round(wide, ndigits=scale, round_mode="half_towards_infinity")
    fits = pc.less(pc.abs(rounded), pa.scalar(10 ** (precision - scale), wide_type))
    return pc.cast(_where(fits, rounded), target)


def _dates(text: pa.Array) -> pa.Array:
    """Dates of a column Arrow's cast refused (a single bad value does): the ``yyyy-mm-dd`` values
    (nearly all) by Arrow's ``strptime`` alone, the others by the full pattern (``_days``), which
    is slower.

    ``strptime`` also reads a space or a sign before a number (``2023-01- 3``), hence the shape
    check; and it rolls a day past the month's end (2023-02-30) over into day 1 to 3 of the next
    month: those days are compared with the day written, and a rolled-over value goes the long
    way (which makes it null)."""
    parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    shaped = pc.match_substring_regex(text, _PLAIN_DATE)
    plain = pc.fill_null(pc.and_(shaped, pc.is_valid(parsed)), False)
    day = pc.day(parsed)
    early = pc.and_(plain, pc.fill_null(pc.less_equal(day, 3), False))
    written = pc.cast(pc.utf8_slice_codeunits(pc.filter(text, early), 8, 10), pa.int64())
    rolled_over = pc.replace_with_mask(early, early, pc.not_equal(written, pc.filter(day, early)))
    plain = pc.and_(plain, pc.invert(rolled_over))
    dates = pc.cast(_where(plain, parsed), pa.date32())
    others = pc.and_(pc.is_valid(text), pc.invert(plain))
    if not pc.any(others).as_py():
        return dates
    return pc.replace_with_mask(dates, others, pc.cast(_days(pc.filter(text, others), _DATE), pa.date32()))


def _days(text: pa.Array, pattern: str) -> pa.Array:
    """Midnight of the ``yyyy-m-d`` at the start of each value, validated (no 2023-02-29).

    Values that start with ``yyyy-mm-dd`` (nearly all) are sliced; only the others go through
    the full pattern, which is several times slower."""
    strict = pc.fill_null(pc.match_substring_regex(text, _ISO_DATE_PREFIX), False)
    normalized = pc.if_else(strict, pc.utf8_slice_codeunits(text, 0, 10), pa.scalar(None, pa.string()))
    loose = pc.and_(pc.is_valid(text), pc.invert(strict))
    if pc.any(loose).as_py():
        parts = pc.extract_regex(pc.filter(text, loose), pattern)
        year, month, day = (pc.struct_field(parts, name) for name in ("y", "m", "d"))
        padded = pc.binary_join_element_wise(
            year, pc.utf8_lpad(month, 2, "0"), pc.utf8_lpad(day, 2, "0"), "-"
        )
        normalized = pc.replace_with_mask(normalized, loose, padded)
    parsed = pc.strptime(normalized, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2023-02-29 over into March: the parsed day must be the one written (a roll
    # over always changes the day: a day past the month's end becomes day 1 to 3).
    written_day = pc.cast(pc.utf8_slice_codeunits(normalized, 8, 10), pa.int64())
    return _where(pc.equal(pc.day(parsed), written_day), parsed)


def _timestamps(text: pa.Array) -> pa.Array:
    parts = pc.extract_regex(text, _TIMESTAMP)
    midnight = _days(text, _TIMESTAMP)

    def number(name: str) -> pa.Array:
        field = pc.struct_field(parts, name)
        return pc.cast(pc.if_else(pc.equal(pc.utf8_length(field), 0), "0", field), pa.int64())

    hours, minutes, seconds = number("H"), number("M"), number("S")
    valid_clock = pc.and_(pc.and_(pc.less(hours, 24), pc.less(minutes, 60)), pc.less(seconds, 60))
    fraction = pc.utf8_slice_codeunits(pc.struct_field(parts, "f"), 0, 6)
    micros = pc.cast(
        pc.utf8_rpad(pc.if_else(pc.equal(pc.utf8_length(fraction), 0), "0", fraction), 6, "0"), pa.int64()
    )
    zone = pc.struct_field(parts, "z")
    zone_digits = pc.replace_substring_regex(zone, r"[^0-9]", "")
    zone_hours = pc.cast(
        pc.if_else(pc.less(pc.utf8_length(zone_digits), 2), "0", pc.utf8_slice_codeunits(zone_digits, 0, 2)),
        pa.int64(),
    )
    zone_minutes = pc.cast(
        pc.if_else(pc.less(pc.utf8_length(zone_digits), 4), "0", pc.utf8_slice_codeunits(zone_digits, 2, 4)),
        pa.int64(),
    )
    sign = pc.if_else(pc.starts_with(zone, "-"), -1, 1)
    offset_minutes = pc.multiply(sign, pc.add(pc.multiply(zone_hours, 60), zone_minutes))
    local_seconds = pc.add(
        pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)),
        pc.subtract(seconds, pc.multiply(offset_minutes, 60)),
    )
    base = pc.cast(pc.cast(midnight, pa.timestamp("s")), pa.int64())
    epoch_micros = pc.add(pc.multiply(pc.add(base, local_seconds), 1_000_000), micros)
    result = pc.cast(epoch_micros, pa.timestamp("us", tz="UTC"))
    return _where(pc.and_(pc.is_valid(midnight), valid_clock), result)
