"""What travels between a Dagster step and a unit that runs elsewhere (a Databricks job run,
through Dagster Pipes). Plain data, free of Dagster and of Pipes.

Out, in the Pipes ``extras``:
- the request: the remote Pipes context of a ranged run (a single-run backfill) has no
  partition range, so the window travels here, with the run id and the as-of date;
- the deployment's lake layout (every field: roots, catalog, AWS region and endpoint, the
  Kinesis stream) and quality thresholds: the cluster does not see the Dagster deployment's
  environment, and a serverless or shared cluster cannot be given one;
- the registry the table is declared in (``module:attribute``).

Back, as one Pipes custom message: the unit's JSON report, error and failed checks included.
``defs/report.py`` turns it into Dagster events, as it does for every other runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.declarations.table import DEFAULT_REGISTRY
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest

#: The extras key of a remote unit.
UNIT_KEY = "lakehouse/unit"
#: The key of the custom message that carries the report back.
REPORT_KEY = "lakehouse/unit_report"


class RemoteUnitError(ValueError):
    """The extras do not describe a unit; the message names what is missing."""


@dataclass(frozen=True)
class RemoteUnit:
    """Everything a unit needs besides the engine: what to do, on which lake, with which thresholds."""

    request: UnitRequest
    layout: LakeLayout
    thresholds: Thresholds
    registry: str = DEFAULT_REGISTRY

    def to_extras(self) -> dict[str, Any]:
        layout = self.layout
        return {
            UNIT_KEY: {
                "request": self.request.to_dict(),
                "layout": {
                    "root": layout.root,
                    "landing": layout.landing,
                    "layer_roots": dict(layout.layer_roots),
                    "catalog": layout.catalog,
                    "aws": {"region": layout.aws.region, "endpoint_url": layout.aws.endpoint_url},
                    "landing_stream": layout.landing_stream,
                },
                "thresholds": {table: dict(checks) for table, checks in self.thresholds.by_table.items()},
                "registry": self.registry,
            }
        }

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any]) -> RemoteUnit:
        raw = extras.get(UNIT_KEY)
        if not isinstance(raw, Mapping):
            raise RemoteUnitError(
                f"the Pipes extras hold no {UNIT_KEY!r}: was this launched by the lakehouse?"
            )
        missing = [key for key in ("request", "layout", "thresholds", "registry") if key not in raw]
        if missing:
            raise RemoteUnitError(f"the Pipes extras' {UNIT_KEY!r} lacks {', '.join(missing)}")
        layout = raw["layout"]
        return cls(
            request=UnitRequest.from_dict(raw["request"]),
            layout=LakeLayout(
                root=layout["root"],
                landing=layout["landing"],
                layer_roots=dict(layout.get("layer_roots") or {}),
                catalog=layout.get("catalog"),
                aws=AwsConfig(**(layout.get("aws") or {})),
                landing_stream=layout.get("landing_stream"),
            ),
            thresholds=Thresholds(
                {
                    table: {check: float(share) for check, share in checks.items()}
                    for table, checks in raw["thresholds"].items()
                }
            ),
            registry=raw["registry"],
        )


def report_message(result: UnitResult) -> dict[str, Any]:
    """The custom message that carries a unit's report."""
    return {REPORT_KEY: result.to_dict()}


def report_from_messages(messages: Sequence[Any]) -> UnitResult | None:
    """The report among a run's custom messages (the last one, should a retried task send two)."""
    reports = [m[REPORT_KEY] for m in messages if isinstance(m, Mapping) and REPORT_KEY in m]
    return UnitResult.from_dict(reports[-1]) if reports else None
