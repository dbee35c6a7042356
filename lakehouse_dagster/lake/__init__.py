"""Storage seam: where tables and landing files live, and how Delta tables are read and written."""

from lakehouse_dagster.lake.layout import LakeLayout, TableName, join_uri

__all__ = ["LakeLayout", "TableName", "join_uri"]
