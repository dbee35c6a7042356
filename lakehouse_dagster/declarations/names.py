"""Checks every declaration module shares: a tuple of names given as a plain string, and names
that are not among the known ones (with the close matches)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import TypeVar


def names_tuple(value: Iterable[str], setting: str, of: str = "column names") -> tuple[str, ...]:
    """``value`` as a tuple of names; a plain string is refused: it would be iterated a
    character at a time (``"id"`` as the columns ``i`` and ``d``)."""
    if isinstance(value, str):
        raise ValueError(f"{setting} must be a tuple of {of}, got the string {value!r} (write ({value!r},))")
    return tuple(value)


def close_matches(name: str, known: Sequence[str]) -> list[str]:
    """The names of ``known`` that ``name`` may have meant: a different case, or a typo."""
    by_lower = {k.lower(): k for k in known}
    same_case = [k for k in known if k.lower() == name.lower()]
    typos = [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.75)]
    return list(dict.fromkeys([*same_case, *typos]))


def check_among(setting: str, names: Iterable[str], known: Sequence[str], what: str = "columns") -> None:
    """Raise naming ``setting`` and each of ``names`` not in ``known``, with its close matches."""
    unknown = [name for name in names if name not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        matches = close_matches(name, known)
        hints.append(f"{name!r}" + (f" (did you mean {' or '.join(map(repr, matches))}?)" if matches else ""))
    raise ValueError(f"{setting}: {', '.join(hints)} not among the {what} {', '.join(known)}")


Choice = TypeVar("Choice", bound=StrEnum)


def enum_value(kind: type[Choice], value: object, refused: str) -> Choice:
    """``value`` (a member, or its value in any case: ``"drop"``, ``"DROP"``) as a member of
    ``kind``; otherwise a ValueError, ``refused`` followed by the value and the allowed ones.
    Declarations compare these with ``is``: a plain string would silently match none."""
    by_value = {member.value.lower(): member for member in kind}
    member = by_value.get(value.lower()) if isinstance(value, str) else None
    if member is None:
        allowed = ", ".join(repr(member.value) for member in kind)
        raise ValueError(f"{refused}{value!r}; expected one of {allowed}")
    return member
