"""lakehouse_dagster: a medallion lakehouse of Delta tables as Dagster assets."""

from lakehouse_dagster.process_exit import skip_collection_at_exit

skip_collection_at_exit()
