"""A bronze row's place in ingestion order as one number, so that "the latest record wins" can be
a hash aggregate (``max``) rather than a sort of every row.

Ingestion order is (``_batch_id``, ``_source_file_modified_at``, ``_source_file``,
``_source_row``), oldest first. Files are few next to rows: each ingested file gets an offset,
the sum of the lines of the files before it, and a row's ordinal is its file's offset plus its
line. Pure: DataFrame in, DataFrame out (the files' offsets are computed on the way: a few rows).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse_dagster.ingest.csv_files import SOURCE_ROW
from lakehouse_dagster.ingest.sources import BATCH_ID, SOURCE_FILE, SOURCE_FILE_MODIFIED_AT

#: Ingestion order, oldest first.
INGESTION_ORDER = (BATCH_ID, SOURCE_FILE_MODIFIED_AT, SOURCE_FILE, SOURCE_ROW)
#: Ordinals stay below 2**41 (two trillion lines), leaving 22 bits of a BIGINT for a date.
ORDINAL_BITS = 41
# Days since 0001-01-01, plus one (0 is kept for null), stay below 2**22 up to 9999-12-31:
# 22 + 41 bits fit a BIGINT.
_FILE = (BATCH_ID, SOURCE_FILE)  # one ingestion of one file


def with_ingestion_ordinal(bronze: DataFrame, name: str) -> DataFrame:
    """``bronze`` with ``name``: a BIGINT that grows with ingestion order, unique per row."""
    per_file = bronze.groupBy(*_FILE, SOURCE_FILE_MODIFIED_AT).agg(F.max(SOURCE_ROW).alias("_lines"))
    before = Window.orderBy(*(F.col(c) for c in (BATCH_ID, SOURCE_FILE_MODIFIED_AT, SOURCE_FILE)))
    offsets = per_file.select(
        *_FILE,
        F.coalesce(F.sum("_lines").over(before.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0)).alias(
            "_offset"
        ),
    )
    # Computed once, here, and joined as a local frame: left lazy, the engine computes the
    # offsets (an aggregate and a window over every row) again for each later use of the result
    # (``latest_per_key`` uses it twice: 5 of silver.customers' 20 s at 10M rows).
    offsets = bronze.sparkSession.createDataFrame(offsets.collect(), offsets.schema)
    ordinal = F.col("_offset") + F.col(SOURCE_ROW)
    checked = F.when(
        ordinal >= F.lit(1 << ORDINAL_BITS),
        F.raise_error(F.lit(f"more than 2**{ORDINAL_BITS} lines ingested: the ingestion ordinal overflows")),
    ).otherwise(ordinal)
    # The few files' offsets on the left: the local engine builds its hash table from that side.
    return offsets.join(bronze, list(_FILE)).select(*bronze.columns, checked.alias(name))


def date_then_ordinal(day: Column, ordinal: Column) -> Column:
    """One BIGINT ordered by ``day`` (null lowest), then by ``ordinal`` (``ORDINAL_BITS`` wide)."""
    days = F.coalesce(F.datediff(day, F.to_date(F.lit("0001-01-01"))) + 1, F.lit(0)).cast("bigint")
    return days * F.lit(1 << ORDINAL_BITS) + ordinal


def latest_per_key(frame: DataFrame, key: str, order: Column) -> DataFrame:
    """The row of each non-null ``key`` with the largest ``order`` (a unique BIGINT per row)."""
    keyed = frame.where(F.col(key).isNotNull()).withColumn("_order", order)
    winners = keyed.groupBy(key).agg(F.max("_order").alias("_order")).select("_order")
    # ``_order`` is unique, so it alone finds each winner's row, once: a join on one BIGINT,
    # building from the winners (4-6 % faster at 10M rows than joining on the key as well).
    return winners.join(keyed, "_order").select(*frame.columns)
