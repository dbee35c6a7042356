"""Clickstream events on a Kinesis stream, as a web shop's collectors would put them.

Sessions walk the funnel: page views, then maybe an add-to-cart, a checkout and a purchase
(with product, price, quantity and currency). Each record is one JSON object, partitioned by
session. Trouble, on purpose:

- ``event_time`` lags the put: most events by a second or two, some by up to ``max_lag``
  (a phone that was offline);
- some records are put twice (``duplicate_share``: the collector retried), later;
- some records are not JSON objects (``malformed_share``: truncated text, bare values,
  bytes that are not UTF-8).

The content is deterministic for a seed; the times are the put's. ``--truth FILE`` writes
every record put (JSON lines: when, partition key, data in base64, kind), which the tests
and the benchmark compare the lake with.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

EVENT_TYPES = ("page_view", "add_to_cart", "checkout", "purchase")
CURRENCIES = ("USD", "EUR", "GBP")
_PUT_RECORDS_LIMIT = 500
EVENT, DUPLICATE, MALFORMED = "event", "duplicate", "malformed"


@dataclass(frozen=True)
class ClickRecord:
    partition_key: str
    data: bytes
    kind: str


@dataclass
class _Session:
    session_id: str
    user_id: int
    steps: list[str]
    product_id: int
    price: str
    quantity: int
    currency: str


@dataclass
class Clickstream:
    """An endless, deterministic stream of records for one seed."""

    seed: int = 7
    duplicate_share: float = 0.02
    malformed_share: float = 0.01
    late_share: float = 0.05
    max_lag: timedelta = timedelta(seconds=90)
    concurrent_sessions: int = 200
    _random: random.Random = field(init=False)
    _sessions: list[_Session] = field(init=False, default_factory=list)
    _counter: int = field(init=False, default=0)
    _retries: list[ClickRecord] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def records(self, count: int, now: datetime) -> list[ClickRecord]:
        """The next ``count`` records, their events happening shortly before ``now``."""
        return [self._next(now) for _ in range(count)]

    def _next(self, now: datetime) -> ClickRecord:
        rng = self._random
        if self._retries and rng.random() < self.duplicate_share * 4:
            retried = self._retries.pop(0)
            return ClickRecord(retried.partition_key, retried.data, DUPLICATE)
        if rng.random() < self.malformed_share:
            return ClickRecord(f"collector-{rng.randrange(8)}", self._malformed(), MALFORMED)
        event = self._event(now)
        record = ClickRecord(event["session_id"], json.dumps(event, separators=(",", ":")).encode(), EVENT)
        if rng.random() < self.duplicate_share:
            self._retries.append(record)
        return record

    def _event(self, now: datetime) -> dict[str, Any]:
        rng = self._random
        while len(self._sessions) < self.concurrent_sessions:
            self._sessions.append(self._new_session())
        index = rng.randrange(len(self._sessions))
        session = self._sessions[index]
        event_type = session.steps.pop(0)
        if not session.steps:
            self._sessions.pop(index)
        self._counter += 1
        late = rng.random() < self.late_share
        lag = rng.uniform(0, self.max_lag.total_seconds()) if late else rng.uniform(0, 2)
        event: dict[str, Any] = {
            "event_id": f"e{self.seed}-{self._counter:010d}",
            "event_type": event_type,
            "user_id": session.user_id,
            "session_id": session.session_id,
            "event_time": (now - timedelta(seconds=lag))
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        if event_type != "page_view":
            event["product_id"] = session.product_id
            event["price"] = session.price
        if event_type in ("add_to_cart", "checkout", "purchase"):
            event["quantity"] = session.quantity
            event["currency"] = session.currency
        return event

    def _new_session(self) -> _Session:
        rng = self._random
        steps = ["page_view"] * rng.randint(1, 4)
        for step, chance in (("add_to_cart", 0.45), ("checkout", 0.6), ("purchase", 0.7)):
            if rng.random() >= chance:
                break
            steps.append(step)
        return _Session(
            session_id=f"s{self.seed}-{rng.getrandbits(48):012x}",
            user_id=rng.randint(1, 50_000),
            steps=steps,
            product_id=rng.randint(1, 500),
            price=f"{rng.uniform(2, 400):.2f}",
            quantity=rng.randint(1, 4),
            currency=rng.choice(CURRENCIES),
        )

    def _malformed(self) -> bytes:
        rng = self._random
        shapes = [
            lambda: b'{"event_id": "broken", "event_type": "page_v',
            lambda: b"not json at all",
            lambda: b"[1, 2, 3]",
            lambda: b"\xff\xfe\x00binary",
        ]
        return rng.choice(shapes)()


@dataclass
class ProduceStats:
    records: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    retried_puts: int = 0
    seconds: float = 0.0


def put_records(client: Any, stream: str, records: list[ClickRecord]) -> int:
    """Put ``records`` (500 a call), retrying the entries Kinesis refused; returns the retries."""
    retries = 0
    pending = records
    while pending:
        chunk, pending = pending[:_PUT_RECORDS_LIMIT], pending[_PUT_RECORDS_LIMIT:]
        for _attempt in range(10):
            response = client.put_records(
                StreamName=stream, Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in chunk]
            )
            if not response.get("FailedRecordCount"):
                break
            chunk = [r for r, result in zip(chunk, response["Records"], strict=True) if "ErrorCode" in result]
            retries += len(chunk)
            time.sleep(0.2)
        else:
            raise RuntimeError(f"Kinesis refused {len(chunk)} records of {stream} ten times")
    return retries


def produce(
    client: Any,
    stream: str,
    rate: int,
    seconds: float,
    clickstream: Clickstream,
    truth: TextIO | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> ProduceStats:
    """Put ``rate`` records a second for ``seconds``, in ten puts a second."""
    stats = ProduceStats()
    started = clock()
    for tick, due in _ticks(started, seconds, rate):
        delay = tick - clock()
        if delay > 0:
            sleep(delay)
        now = datetime.fromtimestamp(clock(), UTC)
        batch = clickstream.records(due, now)
        stats.retried_puts += put_records(client, stream, batch)
        put_at = datetime.now(UTC).isoformat()
        for record in batch:
            stats.records += 1
            setattr(stats, _STAT[record.kind], getattr(stats, _STAT[record.kind]) + 1)
            if truth is not None:
                truth.write(json.dumps(truth_line(record, put_at)) + "\n")
    stats.seconds = clock() - started
    return stats


_STAT = {EVENT: "events", DUPLICATE: "duplicates", MALFORMED: "malformed"}


def truth_line(record: ClickRecord, put_at: str) -> dict[str, str]:
    return {
        "put_at": put_at,
        "partition_key": record.partition_key,
        "data": base64.b64encode(record.data).decode("ascii"),
        "kind": record.kind,
    }


def _ticks(started: float, seconds: float, rate: int) -> Iterator[tuple[float, int]]:
    """(when, how many records) ten times a second, so that ``rate`` a second add up exactly."""
    steps = max(1, round(seconds * 10))
    for step in range(steps):
        due = (step + 1) * rate // 10 - step * rate // 10
        yield started + step / 10, due


def read_truth(path: Path) -> list[dict[str, Any]]:
    """The truth file's records, with ``data`` as bytes."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    for line in lines:
        line["data"] = base64.b64decode(line["data"])
    return lines
