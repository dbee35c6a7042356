"""Pure transforms of the events domain: DataFrames in, DataFrames out; no clock, no Dagster.

Times are event time: a table "of the last hour" covers the hour up to the newest event
accepted (the *watermark*), never the wall clock, so a rebuild gives the same table.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse_dagster.domains.sales.money import AMOUNT_TYPE, PRICE_TYPE
from lakehouse_dagster.domains.sales.transforms import average_to_cents, rounded_to_cents, to_usd
from lakehouse_dagster.ingest.sources import BATCH_ID, RESCUED_DATA
from lakehouse_dagster.stream.sources import ARRIVAL, DATA, RECORD_POSITION, SEQUENCE_NUMBER, SHARD_ID

EVENT_TYPES = ("page_view", "add_to_cart", "checkout", "purchase")
#: The funnel's steps, in order: a session reaches a step if it had this event and every one before.
FUNNEL_STEPS = EVENT_TYPES
#: The explicit schema of an event: field -> Spark SQL type. Values that do not parse are rescued.
EVENT_FIELDS = {
    "event_id": "STRING",
    "event_type": "STRING",
    "user_id": "BIGINT",
    "session_id": "STRING",
    "product_id": "BIGINT",
    "price": PRICE_TYPE,  # the JSON number's text, cast exactly
    "quantity": "INT",
    "currency": "STRING",
    "event_time": "TIMESTAMP",
}
EVENT_DATE = "event_date"
WITHIN_LATENESS = "_within_lateness"
LINEAGE_COLUMNS = (SHARD_ID, SEQUENCE_NUMBER, ARRIVAL, BATCH_ID)
WINDOW = timedelta(hours=1)
#: The instants a time may hold, in microseconds since the epoch: 0001-01-01T00:00:00Z to
#: 9999-12-31T23:59:59.999999Z, as Python and most readers can. The engine parses more
#: (``+10000-01-01``, or year 0 reached through an offset); such a time is not parsed.
FIRST_INSTANT_MICROS = -62_135_596_800_000_000
LAST_INSTANT_MICROS = 253_402_300_799_999_999


def typed_events(bronze: DataFrame) -> DataFrame:
    """Bronze records parsed with the explicit schema, one row per record. A value that does not
    parse as its type is null, and its text goes to ``_rescued_data`` with the record's own
    rescue (a record that is not a JSON object)."""
    raw = {name: F.get_json_object(F.col(DATA), f"$.{name}") for name in EVENT_FIELDS}
    typed = {name: _parsed(f"_raw_{name}", kind) for name, kind in EVENT_FIELDS.items()}
    unparsed = F.to_json(
        F.struct(
            *(
                F.when(F.col(f"_raw_{name}").isNotNull() & typed[name].isNull(), F.col(f"_raw_{name}")).alias(
                    name
                )
                for name in EVENT_FIELDS
            )
        )
    )
    return bronze.select(
        *(value.alias(f"_raw_{name}") for name, value in raw.items()), *LINEAGE_COLUMNS, RESCUED_DATA
    ).select(
        *(expression.alias(name) for name, expression in typed.items()),
        F.to_date(typed["event_time"]).alias(EVENT_DATE),
        *LINEAGE_COLUMNS,
        F.coalesce(F.col(RESCUED_DATA), F.when(unparsed != "{}", unparsed)).alias(RESCUED_DATA),
    )


def _parsed(column: str, kind: str) -> Column:
    """``column`` cast to ``kind``, null if it does not parse (a time: if it is not a valid one;
    a decimal: if it has more places than the type, which the cast would round: ``0.005``)."""
    value = F.expr(f"try_cast(`{column}` AS {kind})")
    if kind.startswith("DECIMAL"):
        return F.when(value == F.expr(f"try_cast(`{column}` AS DECIMAL(38, 18))"), value)
    if kind != "TIMESTAMP":
        return value
    return F.when(F.unix_micros(value).between(FIRST_INSTANT_MICROS, LAST_INSTANT_MICROS), value)


def flag_lateness(
    events: DataFrame,
    watermark: datetime | None,
    lateness: timedelta,
    *,
    acceptable: Column | None = None,
    known_ids: DataFrame | None = None,
) -> DataFrame:
    """``_within_lateness``: the event is no older than ``lateness`` before the watermark as it
    stood before its micro-batch (``_batch_id``, see ``watermarks_by_batch``). So an event is
    judged alike whether a build applies its micro-batch alone or with others. Without a
    watermark, or without an event time (another expectation judges that), it is in time. Never
    null, the same type each batch."""
    before = watermarks_by_batch(events, watermark, acceptable=acceptable, known_ids=known_ids)
    threshold = F.col(BATCH_WATERMARK) - F.expr(f"INTERVAL {int(lateness.total_seconds())} SECONDS")
    in_time = F.col("event_time") >= threshold
    judged = before.join(events, BATCH_ID)  # the small side first
    return judged.select(*events.columns, F.coalesce(in_time, F.lit(True)).alias(WITHIN_LATENESS))


BATCH_WATERMARK = "_batch_watermark"


def watermarks_by_batch(
    events: DataFrame,
    watermark: datetime | None,
    *,
    acceptable: Column | None = None,
    known_ids: DataFrame | None = None,
) -> DataFrame:
    """Per micro-batch (``_batch_id``) of ``events``: the watermark before it, ``watermark`` moved
    by the event times of the earlier micro-batches' events that may be accepted (null when there
    is none). Those are the events ``acceptable`` (the other drop expectations) holds for, first of
    their ``event_id`` and not among ``known_ids``: a copy of an event never moves it. Events of
    them judged late do not move it either: they are older than the watermark."""
    candidates = events if acceptable is None else events.where(F.coalesce(acceptable, F.lit(False)))
    firsts = first_per_event(candidates)
    if known_ids is not None:
        firsts = firsts.join(known_ids, "event_id", "left_anti")
    newest = firsts.groupBy(BATCH_ID).agg(F.max("event_time").alias("_newest"))
    batches = events.select(BATCH_ID).distinct().join(newest, BATCH_ID, "left")
    earlier = (
        Window.partitionBy(F.lit(1)).orderBy(BATCH_ID).rowsBetween(Window.unboundedPreceding, -1)
    )  # a row a batch
    running = F.max("_newest").over(earlier)
    if watermark is not None:
        running = F.greatest(running, F.lit(watermark).cast("timestamp"))
    return batches.select(BATCH_ID, running.alias(BATCH_WATERMARK))


def first_per_event(events: DataFrame) -> DataFrame:
    """One row per ``event_id``: the first to arrive (then by shard and sequence number)."""
    first = Window.partitionBy("event_id").orderBy(F.col(ARRIVAL), *(F.col(c) for c in RECORD_POSITION))
    return events.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n")


def new_events(batch: DataFrame, known_ids: DataFrame) -> DataFrame:
    """The batch's events, one per id, that are not among ``known_ids`` (an ``event_id`` column)."""
    return first_per_event(batch).join(known_ids, "event_id", "left_anti")


def minute_of(column: str) -> Column:
    return F.date_trunc("minute", F.col(column))


def events_per_minute(silver: DataFrame) -> DataFrame:
    """Per event-time minute and event type: events, distinct users and sessions, and the revenue
    of its purchases in USD: each purchase's exact amount times its currency's reference rate,
    added up exactly and rounded once to cents, half up (a minute mixes currencies, which are
    never added as plain numbers; a currency without a rate adds nothing)."""
    amount = F.col("price") * F.col("quantity")
    revenue = F.when(F.col("event_type") == "purchase", to_usd(amount, F.col("currency")))
    return (
        silver.groupBy(minute_of("event_time").alias("minute"), F.col("event_type"))
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.count_distinct("user_id").alias("users"),
            F.count_distinct("session_id").alias("sessions"),
            rounded_to_cents(F.coalesce(F.sum(revenue), F.lit(0))).alias("revenue_usd"),
        )
        .withColumn(EVENT_DATE, F.to_date("minute"))
    )


def last_hour(silver: DataFrame, window_end: datetime | None) -> DataFrame:
    """The events of the hour up to ``window_end`` (included); none without one."""
    if window_end is None:
        return silver.limit(0)
    start = window_end - WINDOW
    return silver.where(
        (F.col(EVENT_DATE) >= F.lit(start.date()))
        & (F.col("event_time") > F.lit(start))
        & (F.col("event_time") <= F.lit(window_end))
    )


def _window_columns(window_end: datetime | None) -> list[Column]:
    start = None if window_end is None else window_end - WINDOW
    return [
        F.lit(start).cast("timestamp").alias("window_start"),
        F.lit(window_end).cast("timestamp").alias("window_end"),
    ]


def funnel(events: DataFrame, window_end: datetime | None) -> DataFrame:
    """Sessions reaching each step (its event and every earlier step's, within the window), and
    the conversion from the previous step and from the first. Events without a session (kept,
    with a warning) are no session's: together they would read as one that converts."""
    flags = (
        events.where(F.col("session_id").isNotNull())
        .groupBy("session_id")
        .agg(
            *(F.max(F.when(F.col("event_type") == step, 1).otherwise(0)).alias(step) for step in FUNNEL_STEPS)
        )
    )
    reached = [F.lit(1)]
    for step in FUNNEL_STEPS:
        reached.append(reached[-1] * F.col(step))
    counts = flags.agg(
        *(F.coalesce(F.sum(reached[i + 1]), F.lit(0)).alias(step) for i, step in enumerate(FUNNEL_STEPS))
    )
    steps = F.array(
        *(
            F.struct(
                F.lit(i + 1).alias("step_number"), F.lit(step).alias("step"), F.col(step).alias("sessions")
            )
            for i, step in enumerate(FUNNEL_STEPS)
        )
    )
    rows = counts.select(F.explode(steps).alias("s")).select("s.*")
    ordered = Window.partitionBy(F.lit(1)).orderBy("step_number")  # four rows
    first = F.first("sessions").over(ordered)
    previous = F.coalesce(F.lag("sessions").over(ordered), F.col("sessions"))
    return rows.select(
        "step_number",
        "step",
        F.col("sessions").cast("bigint").alias("sessions"),
        F.when(previous > 0, F.col("sessions") / previous).alias("conversion_from_previous"),
        F.when(first > 0, F.col("sessions") / first).alias("conversion_from_first"),
        *_window_columns(window_end),
    )


def revenue(events: DataFrame, window_end: datetime | None) -> DataFrame:
    """Per currency: purchases, units, revenue and average order value within the window. The
    revenue is exact; the average is the exact revenue over the purchases, rounded once to cents,
    half up (the sales domain's money rules)."""
    amount = F.col("price") * F.col("quantity")
    return (
        events.where(F.col("event_type") == "purchase")
        .groupBy("currency")
        .agg(
            F.count(F.lit(1)).alias("orders"),
            F.sum("quantity").cast("bigint").alias("units"),
            F.sum(amount).cast(AMOUNT_TYPE).alias("revenue"),
        )
        .select(
            "currency",
            "orders",
            "units",
            "revenue",
            average_to_cents(F.col("revenue"), F.col("orders")).alias("average_order_value"),
            *_window_columns(window_end),
        )
    )
