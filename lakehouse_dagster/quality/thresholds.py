"""Per-table quality thresholds, kept out of the transform code.

``thresholds.yaml`` (next to this module) maps a table to its checks and the largest share
of failing rows each tolerates (0 when absent: any failing row fails the check). A
deployment can point ``LAKEHOUSE_QUALITY_THRESHOLDS`` at a file of its own. A share is a number
(a YAML boolean such as ``yes`` is not), and a table or check written twice is refused (YAML
would keep the last one silently).

    silver.customers:
      valid_email: 0.03        # up to 3% of customers may have no valid email
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

DEFAULT_FILE = Path(__file__).with_name("thresholds.yaml")


class ThresholdsError(ValueError):
    pass


class DuplicateKeyError(yaml.YAMLError):
    """A key written twice in one mapping: plain YAML keeps the last one silently."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key written twice in one mapping (a table, or a check of one)."""

    def compose_document(self) -> Node:
        # Checked on the composed nodes, before merge keys (``<<: *cdc``) are expanded: a key
        # written after a merge overrides the merged one on purpose.
        node = super().compose_document()
        _refuse_duplicate_keys(node, set())
        return node


def _refuse_duplicate_keys(node: Node, seen: set[int], path: str = "") -> None:
    """Raise on a mapping key written twice, named with the keys above it (``table.check``)."""
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            name = f"{path}.{key.value}" if path else str(key.value)
            if key.tag != "tag:yaml.org,2002:merge" and isinstance(key.value, str):
                line = key.start_mark.line + 1
                if key.value in lines:
                    raise DuplicateKeyError(
                        f"{name} is written twice (lines {lines[key.value]} and {line}); "
                        "YAML would keep the last one silently"
                    )
                lines[key.value] = line
            _refuse_duplicate_keys(value, seen, name)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, seen, path)


@dataclass(frozen=True)
class Thresholds:
    by_table: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def for_check(self, table: str, check: str, default: float = 0.0) -> float:
        return self.by_table.get(table, {}).get(check, default)

    def unknown_tables(self, tables: Iterable[str]) -> list[str]:
        """The tables named that are not among ``tables``."""
        known = set(tables)
        return [table for table in self.by_table if table not in known]

    def entries(self, checks_by_table: Mapping[str, Iterable[str]], *, named: bool = True) -> list[str]:
        """``table.check`` entries of the given tables that name one of the given checks (or,
        with ``named=False``, none of them)."""
        found = []
        for table, checks in checks_by_table.items():
            names = set(checks)
            found += [f"{table}.{c}" for c in self.by_table.get(table, {}) if (c in names) == named]
        return found

    def unknown_checks(self, checks_by_table: Mapping[str, Iterable[str]]) -> list[str]:
        """``table.check`` entries of the given tables that name no check of theirs: a typo would
        otherwise leave the check at 0 silently."""
        return self.entries(checks_by_table, named=False)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Thresholds:
        source = Path(path) if path else DEFAULT_FILE
        try:
            raw = yaml.load(source.read_text(), Loader=_UniqueKeyLoader) or {}
        except FileNotFoundError:
            raise ThresholdsError(f"quality thresholds file {source} does not exist") from None
        except DuplicateKeyError as error:
            raise ThresholdsError(f"quality thresholds file {source}: {error}") from None
        except yaml.YAMLError as error:
            raise ThresholdsError(f"quality thresholds file {source} is not valid YAML: {error}") from None
        if not isinstance(raw, dict):
            raise ThresholdsError(f"{source}: expected a mapping of table -> check -> share")
        by_table: dict[str, dict[str, float]] = {}
        for table, checks in raw.items():
            if not isinstance(checks, dict):
                raise ThresholdsError(f"{source}: {table} must map check names to shares")
            for check, share in checks.items():
                if not is_share(share):
                    raise ThresholdsError(_not_a_share(source, f"{table}.{check}", share))
            by_table[str(table)] = {str(check): float(share) for check, share in checks.items()}
        return cls(by_table)


def is_share(value: Any) -> bool:
    """A number from 0 to 1; not a YAML boolean (``yes`` loads as True, which is an int 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _not_a_share(source: Path, entry: str, value: Any) -> str:
    boolean = " (YAML reads yes, no, on, off, true and false as booleans)" if isinstance(value, bool) else ""
    return f"{source}: {entry} must be a share between 0 and 1, got {value!r}{boolean}"
