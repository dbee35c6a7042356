"""Dagster resource for the storage seam."""

from __future__ import annotations

import dagster as dg

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.lake.layout import LakeLayout, normalize_root


class LakeResource(dg.ConfigurableResource):
    """Where the lake and the landing zone are: local folders, or ``s3://`` URIs in production; and
    how to reach AWS (region, and a moto endpoint locally) and the stream that lands events."""

    root: str
    landing: str
    bronze_root: str | None = None
    silver_root: str | None = None
    gold_root: str | None = None
    #: Unity Catalog catalog to register tables in (production).
    catalog: str | None = None
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    landing_stream: str | None = None

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
            aws=AwsConfig(region=self.aws_region, endpoint_url=self.aws_endpoint_url),
            landing_stream=self.landing_stream,
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
            aws_region=layout.aws.region,
            aws_endpoint_url=layout.aws.endpoint_url,
            landing_stream=layout.landing_stream,
        )
