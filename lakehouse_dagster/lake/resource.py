"""Dagster resource for the storage seam."""

from __future__ import annotations

import dagster as dg

from lakehouse_dagster.lake.layout import LakeLayout, normalize_root


class LakeResource(dg.ConfigurableResource):
    """Where the lake and the landing zone are: local folders, or ``s3://`` URIs in production."""

    root: str
    landing: str
    bronze_root: str | None = None
    silver_root: str | None = None
    gold_root: str | None = None
    #: Unity Catalog catalog to register tables in (production).
    catalog: str | None = None

    def layout(self) -> LakeLayout:
        layer_roots = {
            layer: normalize_root(root)
            for layer, root in (
                ("bronze", self.bronze_root),
                ("silver", self.silver_root),
                ("gold", self.gold_root),
            )
            if root
        }
        return LakeLayout(
            root=normalize_root(self.root),
            landing=normalize_root(self.landing),
            layer_roots=layer_roots,
            catalog=self.catalog,
        )

    @classmethod
    def from_layout(cls, layout: LakeLayout) -> LakeResource:
        return cls(
            root=layout.root,
            landing=layout.landing,
            bronze_root=layout.layer_roots.get("bronze"),
            silver_root=layout.layer_roots.get("silver"),
            gold_root=layout.layer_roots.get("gold"),
            catalog=layout.catalog,
        )
