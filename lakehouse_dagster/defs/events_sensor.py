"""The landing events sensor: S3 "Object Created" events, through EventBridge and SQS, to runs
of the bronze tables whose folders the objects landed in.

A tick:

1. deletes the messages that the previous tick handled: their run requests were recorded
   with that tick's cursor, so a message is deleted only once its runs are (the receipt
   handles wait in the cursor; the queue's visibility timeout must exceed the interval);
2. long-polls the queue (``wait_seconds``, then drains what is there without waiting), at
   most ``max_messages`` messages;
3. parses each body (``aws/s3_events.py``: EventBridge's event or S3's own notification) and
   routes each object to its table by bucket and prefix (``landing.routes``);
4. requests runs naming the files, ``max_files_per_run`` a run, with run keys from the keys,
   ETags and sequencers; a file already requested within ``lookback`` is not requested again,
   so a redelivered message gives no second run, while an object put back (a new sequencer),
   even with the same bytes, gets one.

**Malformed and unknown messages** (a body that is not an object-created notification, a
record of one that is not, an object under no table's folder, or a message whose handling
raised: an unreadable object, a throttled call) are never deleted and never crash the tick:
each is logged with its message id and left to the queue's **redrive policy**, which moves it
to the dead-letter queue after ``maxReceiveCount`` receives (5 in ``infra/modules/events``).
The good records of such a message are requested all the same (the memory dedupes them when
it comes back). Files of a table's folder that the table does not ingest (hidden, another
suffix) are acknowledged and logged, as a listing would skip them.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from lakehouse_dagster.aws.resources import SqsResource
from lakehouse_dagster.aws.s3_events import MalformedMessage, ObjectCreated, parse_message
from lakehouse_dagster.declarations.table import Registry
from lakehouse_dagster.defs.landing import (
    DEFAULT_LOOKBACK,
    DEFAULT_MAX_FILES_PER_RUN,
    Memory,
    Route,
    route_of,
    routes,
    run_requests,
)
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.files import LandingFile
from lakehouse_dagster.lake.layout import LakeLayout

NAME = "landing_events_sensor"
_BATCH = 10  # SQS receives and deletes at most 10 messages a call
_UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def events_sensor(
    registry: Registry,
    layout: LakeLayout,
    queue_url: str | None,
    job: dg.UnresolvedAssetJobDefinition,
    *,
    default_status: dg.DefaultSensorStatus,
    minimum_interval_seconds: int = 15,
    wait_seconds: int = 10,
    max_messages: int = 2000,
    max_files_per_run: int = DEFAULT_MAX_FILES_PER_RUN,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> dg.SensorDefinition:
    watched = routes(registry, layout)

    @dg.sensor(
        name=NAME,
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Poll the landing bucket's Object Created events (EventBridge -> SQS, "
        "LAKEHOUSE_EVENTS_QUEUE_URL) and ingest the files they name. Malformed or unknown "
        "messages are left to the queue's redrive policy (dead-letter queue).",
    )
    def landing_events(
        context: dg.SensorEvaluationContext, sqs: SqsResource
    ) -> dg.SensorResult | dg.SkipReason:
        if not queue_url:
            return dg.SkipReason("LAKEHOUSE_EVENTS_QUEUE_URL is not set: no queue to poll")
        client = sqs.get_client()
        now = datetime.now(UTC)
        cursor = json.loads(context.cursor) if context.cursor else {}
        _delete(client, queue_url, cursor.get("delete", []), context.log)
        memory = Memory.from_json(cursor.get("seen"))
        handled: list[str] = []
        by_table: dict[str, list[LandingFile]] = defaultdict(list)
        tables = {}
        this_tick: set[str] = set()
        partly = 0
        for message in _receive(client, queue_url, wait_seconds, max_messages):
            try:
                found, whole = _handle(message, watched, layout, context.log)
            except Exception as error:  # one message must never hold back the others
                context.log.warning(
                    "message %s could not be handled (%s: %s); left to the redrive policy",
                    message.get("MessageId", "?"),
                    type(error).__name__,
                    error,
                )
                continue
            if whole:
                handled.append(message["ReceiptHandle"])
            elif found:
                partly += 1
            for route, landed in found:
                if memory.knows(landed):
                    memory.remember([landed], now, as_seen_now=True)  # named again: remembered longer
                elif landed.uri in this_tick:  # put twice within the tick: one run reads it
                    memory.remember([landed], now, as_seen_now=True)
                else:
                    this_tick.add(landed.uri)
                    by_table[str(route.table.name)].append(landed)
                    tables[str(route.table.name)] = route.table
        requests = []
        for name, landed_files in by_table.items():
            requests += run_requests(tables[name], landed_files, max_files_per_run)
            memory.remember(landed_files, now, as_seen_now=True)
        memory.forget_before(now - lookback)
        if handled or partly or requests:
            context.log.info(
                "%d message(s) handled, %d kept for redrive with files requested, %d run(s) requested for %s",
                len(handled),
                partly,
                len(requests),
                ", ".join(f"{name}: {len(f)} file(s)" for name, f in by_table.items()) or "no new file",
            )
        return dg.SensorResult(
            run_requests=requests, cursor=json.dumps({"delete": handled, "seen": memory.to_json()})
        )

    return landing_events


def _receive(client: Any, queue_url: str, wait_seconds: int, limit: int) -> Iterator[dict]:
    """Long-poll once, then take what is waiting, up to ``limit`` messages."""
    received = 0
    deadline = time.monotonic() + 30
    wait = wait_seconds
    while received < limit and time.monotonic() < deadline:
        response = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(_BATCH, limit - received),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return
        received += len(messages)
        yield from messages
        wait = 0


def _handle(
    message: dict, watched: list[Route], layout: LakeLayout, log
) -> tuple[list[tuple[Route, LandingFile]], bool]:
    """The files a message names, by route, and whether all of it was understood. A message with a
    malformed record or an object under no table's folder has its good files requested and is not
    acknowledged: it comes back (the memory dedupes its files) until the redrive policy moves it
    to the dead-letter queue, where the rest can be looked at."""
    message_id = message.get("MessageId", "?")
    receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
    try:
        created, malformed = parse_message(message.get("Body", ""))
    except MalformedMessage as error:
        log.warning(
            "message %s (receive %s) is malformed: %s; left to the redrive policy",
            message_id,
            receives,
            error,
        )
        return [], False
    for problem in malformed:
        log.warning("message %s (receive %s): %s; left to the redrive policy", message_id, receives, problem)
    found: list[tuple[Route, LandingFile]] = []
    whole = not malformed
    for event in created:
        routed = _resolve(event, watched, layout)
        if routed is None:
            log.warning(
                "message %s (receive %s): s3://%s/%s is under no table's landing folder; left to the "
                "redrive policy",
                message_id,
                receives,
                event.bucket,
                event.keys[0],
            )
            whole = False
            continue
        route, resolved = routed
        if route.accepts(resolved.uri):
            found.append((route, resolved))
        else:
            log.info(
                "message %s: %s is hidden or not %s; not ingested", message_id, resolved.uri, route.suffix
            )
    return found, whole


def _resolve(
    event: ObjectCreated, watched: list[Route], layout: LakeLayout
) -> tuple[Route, LandingFile] | None:
    """The object as a landing file of its table, or None under no table's folder (asked before
    anything is read). A key that may be URL-encoded is the one that exists: the one holding the
    event's ETag if both do (``a%20b.csv`` and ``a b.csv``), else the decoded one (AWS encodes)."""
    candidates = [
        (route, uri)
        for uri in (f"s3://{event.bucket}/{key}" for key in event.keys)
        if (route := route_of(watched, uri)) is not None
    ]
    if not candidates:
        return None
    if len(candidates) > 1:
        existing = [
            (route, landed)
            for route, uri in candidates
            if (landed := files.head_s3(uri, layout.aws)) is not None
        ]
        holding_it = [(route, landed) for route, landed in existing if landed.fingerprint == event.etag]
        if holding_it or existing:
            return (holding_it or existing)[-1]
    route, uri = candidates[0]
    # A fixed time: every delivery of the event names the same file (an S3 event's own time
    # may differ between two notifications of one object). The sequencer is the same in them,
    # and greater for the object put again: it stands in for the time in the file's identity.
    fingerprint = f"{event.etag}@{event.sequencer}" if event.sequencer else event.etag
    return route, LandingFile(_UNKNOWN_TIME, uri, 0, fingerprint)


def _delete(client: Any, queue_url: str, receipts: list[str], log) -> None:
    for start in range(0, len(receipts), _BATCH):
        entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts[start : start + _BATCH])]
        failed = client.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        for failure in failed:
            # An expired receipt: the message comes back, and its run key or the memory dedupes it.
            log.warning("could not delete a handled message: %s", failure.get("Message", failure))
