"""Pure transforms: DataFrame(s) in, DataFrame out. No Dagster, no I/O, no wall clock."""
