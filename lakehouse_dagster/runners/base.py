"""The runner seam's interface."""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg

from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest


class UnitRunner(dg.ConfigurableResource, ABC):
    """Runs a table's unit of work somewhere and returns its report (never raises for the
    unit's own failure: the report carries it)."""

    @abstractmethod
    def run(self, context: dg.AssetExecutionContext, table: Table, request: UnitRequest) -> UnitResult: ...
