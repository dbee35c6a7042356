"""lakehouse_dagster: a medallion lakehouse of Delta tables as Dagster assets."""
