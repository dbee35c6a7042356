"""S3 "Object Created" notifications as they come out of SQS, parsed: Dagster-free.

Two formats reach the queue:

- EventBridge's event (``source: aws.s3``, ``detail-type: Object Created``): the key in
  ``detail.object.key`` is not URL-encoded by moto and URL-encoded (``%20``, never ``+``) by
  AWS, so a key holding ``%`` is tried as it is, then decoded (``KeyCandidates``);
- S3's own notification (``Records[].s3``, with ``eTag``): keys URL-encoded with ``+`` for a
  space, decoded with ``unquote_plus``. Its ``s3:TestEvent`` is recognised, and ignored.

A body that is neither is *malformed*: ``MalformedMessage`` says why. Both carry the object's
``sequencer``: S3 gives each event of a key a greater one, and every notification of one event
the same, so it tells an object put back with the same bytes from a notification delivered twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus


class MalformedMessage(ValueError):
    """Not an S3 object-created notification; the message says why."""


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    #: The key, or the keys it may be (an EventBridge key with ``%`` may be URL-encoded): the one
    #: that exists (of two, the one holding ``etag``).
    keys: tuple[str, ...]
    etag: str
    #: S3's order of the key's events (hexadecimal); empty when the notification has none.
    sequencer: str = ""


def parse_message(body: str) -> tuple[list[ObjectCreated], list[str]]:
    """The objects a message reports created (none for S3's test event), and why each record of
    it that is not one is malformed: the good records of an S3 notification count, whatever its
    others hold. ``MalformedMessage`` when the body as a whole is not a notification."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise MalformedMessage("the body is not JSON") from None
    if not isinstance(message, dict):
        raise MalformedMessage("the body is not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return [], []
    if "detail-type" in message or "detail" in message:
        return [_from_eventbridge(message)], []
    if isinstance(message.get("Records"), list):
        created, malformed = [], []
        for number, record in enumerate(message["Records"]):
            try:
                created.append(_from_notification(record))
            except MalformedMessage as error:
                malformed.append(f"Records[{number}]: {error}")
        return created, malformed
    raise MalformedMessage("neither an EventBridge event nor an S3 notification (no detail, no Records)")


def _from_eventbridge(event: dict) -> ObjectCreated:
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        raise MalformedMessage(
            f"an EventBridge event of {event.get('source')!r} / {event.get('detail-type')!r}, "
            "not aws.s3 / Object Created"
        )
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise MalformedMessage("an Object Created event without detail")
    bucket = _text(detail.get("bucket"), "name", "detail.bucket.name")
    obj = detail.get("object")
    key = _text(obj, "key", "detail.object.key")
    etag = (obj.get("etag") or obj.get("eTag") or "") if isinstance(obj, dict) else ""
    decoded = unquote(key)
    keys = (key, decoded) if decoded != key else (key,)
    return ObjectCreated(bucket, keys, str(etag).strip('"'), _sequencer(obj))


def _from_notification(record: object) -> ObjectCreated:
    if not isinstance(record, dict) or not isinstance(record.get("s3"), dict):
        raise MalformedMessage("a Records[] entry without s3")
    event_name = str(record.get("eventName", ""))
    if not event_name.startswith("ObjectCreated:"):
        raise MalformedMessage(f"an S3 notification of {event_name!r}, not ObjectCreated:*")
    s3 = record["s3"]
    bucket = _text(s3.get("bucket"), "name", "s3.bucket.name")
    obj = s3.get("object")
    key = unquote_plus(_text(obj, "key", "s3.object.key"))
    etag = (obj.get("eTag") or obj.get("etag") or "") if isinstance(obj, dict) else ""
    return ObjectCreated(bucket, (key,), str(etag).strip('"'), _sequencer(obj))


def _sequencer(obj: object) -> str:
    value = obj.get("sequencer") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


def _text(container: object, field: str, where: str) -> str:
    value = container.get(field) if isinstance(container, dict) else None
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"no {where}")
    return value
