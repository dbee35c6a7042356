"""Per-table quality thresholds, kept out of the transform code.

``thresholds.yaml`` (next to this module) maps a table to its checks and the largest share
of failing rows each tolerates (0 when absent: any failing row fails the check). A
deployment can point ``LAKEHOUSE_QUALITY_THRESHOLDS`` at a file of its own.

    silver.customers:
      valid_email: 0.03        # up to 3% of customers may have no valid email
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_FILE = Path(__file__).with_name("thresholds.yaml")


class ThresholdsError(ValueError):
    pass


@dataclass(frozen=True)
class Thresholds:
    by_table: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def for_check(self, table: str, check: str, default: float = 0.0) -> float:
        return self.by_table.get(table, {}).get(check, default)

    def unknown_tables(self, tables: Iterable[str]) -> list[str]:
        """The tables named that are not among ``tables``."""
        known = set(tables)
        return [table for table in self.by_table if table not in known]

    def unknown_checks(self, checks_by_table: Mapping[str, Iterable[str]]) -> list[str]:
        """``table.check`` entries of the given tables that name no check of theirs: a typo would
        otherwise leave the check at 0 silently."""
        found = []
        for table, declared in checks_by_table.items():
            names = set(declared)
            found += [f"{table}.{check}" for check in self.by_table.get(table, {}) if check not in names]
        return found

    @classmethod
    def load(cls, path: str | Path | None = None) -> Thresholds:
        source = Path(path) if path else DEFAULT_FILE
        try:
            raw = yaml.safe_load(source.read_text()) or {}
        except FileNotFoundError:
            raise ThresholdsError(f"quality thresholds file {source} does not exist") from None
        except yaml.YAMLError as error:
            raise ThresholdsError(f"quality thresholds file {source} is not valid YAML: {error}") from None
        if not isinstance(raw, dict):
            raise ThresholdsError(f"{source}: expected a mapping of table -> check -> share")
        by_table: dict[str, dict[str, float]] = {}
        for table, checks in raw.items():
            if not isinstance(checks, dict):
                raise ThresholdsError(f"{source}: {table} must map check names to shares")
            for check, share in checks.items():
                if not isinstance(share, int | float) or not 0 <= share <= 1:
                    raise ThresholdsError(
                        f"{source}: {table}.{check} must be a share between 0 and 1, got {share!r}"
                    )
            by_table[str(table)] = {str(check): float(share) for check, share in checks.items()}
        return cls(by_table)
