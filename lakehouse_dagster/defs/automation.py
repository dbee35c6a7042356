"""Declarative automation of the tables declared ``Automation.EAGER``.

Dagster's ``eager()`` condition reacts to "a parent materialised since the last tick" and
forgets that trigger when it coincides with the asset's own request or materialisation
between two ticks (``since_last_handled``); with a micro-batch every 15 s that happens, and the
last micro-batch of a burst would then never reach gold. The condition here asks the state
instead: **a table it reads has a data version that its latest materialisation did not read**
(Dagster records the versions read as ``dagster/input_data_version/<key>``; a table's data
version is its Delta version, so a run that wrote nothing changes nothing downstream). It is
stateless, so it cannot miss an update, whatever the ticks' timing.

A failed run is retried when a table it reads has new data again, not at every tick.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

DATA_VERSION_TAG = "dagster/data_version"
INPUT_VERSION_TAG = "dagster/input_data_version/"


class InputsChanged(dg.AutomationCondition[dg.AssetKey]):
    """True when a parent's latest data version is not the one the asset last read (or the
    asset was never materialised)."""

    @property
    def name(self) -> str:
        return "inputs_changed"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        instance = context.asset_graph_view.instance
        latest = instance.fetch_materializations(context.key, limit=1).records
        read = latest[0].asset_materialization.tags if latest and latest[0].asset_materialization else None
        changed = read is None or any(
            _data_version(instance, parent)
            not in (None, read.get(INPUT_VERSION_TAG + parent.to_user_string()))
            for parent in context.asset_graph.get(context.key).parent_keys
        )
        subset = context.candidate_subset if changed else context.get_empty_subset()
        return dg.AutomationResult(context=context, true_subset=subset)


def _data_version(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    records = instance.fetch_materializations(key, limit=1).records
    materialization = records[0].asset_materialization if records else None
    return materialization.tags.get(DATA_VERSION_TAG) if materialization else None


def eager_on_new_data(always_in_progress: Sequence[dg.AssetKey] = ()) -> dg.AutomationCondition:
    """``always_in_progress``: tables that are written nearly all the time (a stream's bronze,
    one micro-batch after the other). What reads them does not wait for their runs to end, or
    it would hardly ever run; it reads their last commit (Delta snapshots), and the next
    micro-batch's new version requests it again."""
    condition = dg.AutomationCondition
    deps_in_progress = condition.any_deps_in_progress()
    if always_in_progress:
        deps_in_progress = deps_in_progress.ignore(dg.AssetSelection.assets(*always_in_progress))
    return (
        # A table requested on this tick is new data too: what reads it joins the same run.
        (InputsChanged() | condition.any_deps_match(condition.will_be_requested()))
        & ~condition.any_deps_missing()
        & ~deps_in_progress
        # A run requested on the previous tick is in progress until it ends: no second request.
        & ~condition.in_progress()
        & (~condition.execution_failed() | condition.any_deps_updated())
    ).with_label("eager_on_new_data")
