"""Rules that several tables share, written once: pass the action each table wants."""

from __future__ import annotations

from collections.abc import Iterable

from lakehouse_dagster.lake.layout import sql_string
from lakehouse_dagster.quality.expectations import Action, Expectation

#: A well-formed email, as a regular expression that needs no escaping inside SQL quotes.
EMAIL_PATTERN = "^[^@ ]+@[^@ ]+[.][^@ ]+$"


def valid_email(action: Action = Action.WARN, column: str = "email") -> Expectation:
    return Expectation("valid_email", f"{column} RLIKE '{EMAIL_PATTERN}'", action, "a well-formed email")


def known_country(action: Action = Action.WARN, column: str = "country") -> Expectation:
    return Expectation("known_country", f"{column} RLIKE '^[A-Z]{{2}}$'", action, "an ISO country code")


def one_of(name: str, column: str, allowed: Iterable[str], action: Action, description: str) -> Expectation:
    """``column`` is one of ``allowed`` (declared values, never data)."""
    values = ", ".join(sql_string(value) for value in allowed)
    return Expectation(name, f"{column} IN ({values})", action, description)


def not_negative(name: str, column: str, action: Action, description: str) -> Expectation:
    return Expectation(name, f"{column} >= 0", action, description)
