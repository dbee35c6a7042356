"""The file sensors against the moto server: the listing sensor (S3 and local folders) and the
S3 events sensor (PutObject -> EventBridge rule -> SQS -> run requests)."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_dagster.aws.resources import SqsResource
from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.defs.events_sensor import events_sensor
from lakehouse_dagster.defs.landing import landing_files_job
from lakehouse_dagster.defs.landing_sensor import landing_sensor
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.lake.files import UnrecordableNameError, list_files
from lakehouse_dagster.lake.layout import LakeLayout, TableName
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster_tests.conftest import MotoServer, unique_name

HEADER = "customer_id,first_name,last_name,email,country,signup_date,last_activity\n"
JOB = landing_files_job(REGISTRY)
CUSTOMERS = dg.AssetKey(TableName("bronze", "customers").key_path)


def customers_csv(first_id: int) -> bytes:
    rows = [
        f"{i},Ann,Lee,ann{i}@example.com,US,2024-01-01,2024-02-01\n" for i in range(first_id, first_id + 3)
    ]
    return (HEADER + "".join(rows)).encode()


@pytest.fixture
def bucket(moto_server: MotoServer) -> str:
    name = unique_name("landing")
    moto_server.client("s3").create_bucket(Bucket=name)
    return name


def s3_layout(tmp_path: Path, moto_server: MotoServer, bucket: str) -> LakeLayout:
    env = {"LAKEHOUSE_ROOT": str(tmp_path / "lake"), "LAKEHOUSE_LANDING": f"s3://{bucket}/landing"}
    return LakehouseSettings.from_env({**env, **moto_server.env()}).layout


def s3_landing_definitions(
    tmp_path: Path, moto_server: MotoServer, bucket: str, sail_url: str
) -> dg.Definitions:
    env = {
        "LAKEHOUSE_ROOT": str(tmp_path / "lake"),
        "LAKEHOUSE_LANDING": f"s3://{bucket}/landing",
        "LAKEHOUSE_SPARK_REMOTE": sail_url,
        **moto_server.env(),
    }
    return build_definitions(LakehouseSettings.from_env(env))


def tick(sensor: dg.SensorDefinition, cursor: str | None, **resources) -> dg.SensorResult:
    result = sensor(dg.build_sensor_context(cursor=cursor, resources=resources or None))
    assert isinstance(result, dg.SensorResult)
    return result


def named_files(requests: list[dg.RunRequest]) -> list[str]:
    return [f for r in requests for f in r.run_config["ops"]["bronze__customers"]["config"]["files"]]


# The listing sensor ---------------------------------------------------------------------------------


def one_file_a_tick(layout: LakeLayout) -> dg.SensorDefinition:
    return landing_sensor(
        REGISTRY,
        layout,
        JOB,
        default_status=dg.DefaultSensorStatus.RUNNING,
        max_runs_per_tick=1,
        max_files_per_run=1,
    )


def test_a_local_file_name_that_is_not_utf8_holds_back_its_own_table_only(tmp_path) -> None:
    """No ledger, table or run config can hold the name: the customers' runs wait for it to be
    renamed (their bronze run fails naming it); the orders' files go on."""
    layout = LakehouseSettings.from_env({"LAKEHOUSE_ROOT": str(tmp_path / "lake")}).layout
    sensor = landing_sensor(REGISTRY, layout, JOB, default_status=dg.DefaultSensorStatus.RUNNING)
    cursor = tick(sensor, None).cursor
    customers, orders = Path(layout.landing_uri("customers")), Path(layout.landing_uri("dms/sales/orders"))
    for folder in (customers, orders):
        folder.mkdir(parents=True)
    (customers / "good.csv").write_bytes(customers_csv(1))
    Path(os.fsdecode(os.fsencode(customers) + b"/r\xe9sum\xe9.csv")).write_bytes(customers_csv(5))
    (orders / "20261101-0900000000.csv").write_text("Op,dms_commit_ts,order_id\nI,2026-11-01 09:00:00,1\n")

    result = tick(sensor, cursor)

    requested = {op for request in result.run_requests for op in request.run_config["ops"]}
    assert requested == {"bronze__sales_orders"}
    with pytest.raises(UnrecordableNameError, match=re.escape(r"r\xe9sum\xe9.csv")):
        list_files(str(customers), ".csv")


def test_objects_that_share_a_second_are_all_picked_up(tmp_path, moto_server, bucket) -> None:
    s3 = moto_server.client("s3")
    layout = s3_layout(tmp_path, moto_server, bucket)
    sensor = one_file_a_tick(layout)
    s3.put_object(Bucket=bucket, Key="landing/customers/old.csv", Body=customers_csv(1))
    first = tick(sensor, None)
    assert first.run_requests == [], "what was there before the sensor is left to the job"

    put = []  # every object put: an attempt whose objects straddled a second still delivered them
    for attempt in range(3):  # three objects in one second (LastModified has one-second resolution)
        keys = [f"landing/customers/same_second_{attempt}_{i}.csv" for i in range(3)]
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=customers_csv(10))
        put += keys
        seconds = {s3.head_object(Bucket=bucket, Key=key)["LastModified"] for key in keys}
        if len(seconds) == 1:
            break
    assert len(seconds) == 1, "could not put three objects within one second"

    cursor, requested = first.cursor, []
    for _ in range(len(put) + 1):  # one file a tick: the cursor stands on an object sharing its second
        result = tick(sensor, cursor)
        cursor, requested = result.cursor, requested + named_files(result.run_requests)
    assert sorted(requested) == sorted(f"s3://{bucket}/{key}" for key in put)


def test_an_object_put_back_with_the_same_bytes_gets_a_run_of_its_own(tmp_path, moto_server, bucket) -> None:
    """Deleted before its run (which skipped it), then put back: the same ETag, another object."""
    s3 = moto_server.client("s3")
    layout = s3_layout(tmp_path, moto_server, bucket)
    sensor = landing_sensor(REGISTRY, layout, JOB, default_status=dg.DefaultSensorStatus.RUNNING)
    cursor = tick(sensor, None).cursor
    key = "landing/customers/again.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=customers_csv(2))
    first = tick(sensor, cursor)
    s3.delete_object(Bucket=bucket, Key=key)
    time.sleep(1.1)  # LastModified has one-second resolution
    s3.put_object(Bucket=bucket, Key=key, Body=customers_csv(2))

    second = tick(sensor, first.cursor)

    assert named_files(first.run_requests) == named_files(second.run_requests) == [f"s3://{bucket}/{key}"]
    assert first.run_requests[0].run_key != second.run_requests[0].run_key, "Dagster would not run it again"
    assert tick(sensor, second.cursor).run_requests == [], "once"


def test_old_objects_give_no_runs_and_a_run_ingests_exactly_the_files_it_names(
    tmp_path, moto_server, bucket, sail_url, spark
) -> None:
    s3 = moto_server.client("s3")
    defs = s3_landing_definitions(tmp_path, moto_server, bucket, sail_url)
    sensor = defs.resolve_sensor_def("landing_files_sensor")
    for i in (1, 2):
        s3.put_object(Bucket=bucket, Key=f"landing/customers/old_{i}.csv", Body=customers_csv(i * 10))
    first = tick(sensor, None)
    assert first.run_requests == []
    assert tick(sensor, first.cursor).run_requests == [], "nothing new, no run"

    new = [f"landing/customers/new batch/{name}" for name in ("c 3.csv", "d#4.csv")]
    for i, key in enumerate(new):
        s3.put_object(Bucket=bucket, Key=key, Body=customers_csv(100 + 10 * i))
    s3.put_object(Bucket=bucket, Key="landing/customers/_temporary/part.csv", Body=customers_csv(900))
    result = tick(sensor, first.cursor)
    [request] = result.run_requests
    assert sorted(named_files([request])) == sorted(f"s3://{bucket}/{key}" for key in new)
    assert request.asset_selection == [CUSTOMERS] and request.run_key.startswith("bronze.customers:")
    assert tick(sensor, result.cursor).run_requests == [], "requested once"

    instance = dg.DagsterInstance.ephemeral()
    run = defs.resolve_job_def("landing_files_job").execute_in_process(
        run_config=request.run_config, asset_selection=request.asset_selection, instance=instance
    )
    assert run.success
    rows = spark.read.format("delta").load(str(tmp_path / "lake" / "bronze" / "customers")).collect()
    assert sorted({row["_source_file"] for row in rows}) == sorted(f"s3://{bucket}/{key}" for key in new)
    assert sorted(row["customer_id"] for row in rows) == [100, 101, 102, 110, 111, 112]


def test_a_local_file_copied_with_an_old_modification_time_is_new(tmp_path) -> None:
    layout = LakeLayout.local(str(tmp_path / "lake"))
    folder = Path(layout.landing_uri("customers"))
    folder.mkdir(parents=True)
    sensor = landing_sensor(REGISTRY, layout, JOB, default_status=dg.DefaultSensorStatus.RUNNING)
    first = tick(sensor, None)
    copied = folder / "exported_last_year.csv"
    copied.write_bytes(customers_csv(1))
    a_year_ago = time.time() - 365 * 86400
    os.utime(copied, (a_year_ago, a_year_ago))  # cp -p keeps the source's times
    assert named_files(tick(sensor, first.cursor).run_requests) == [str(copied)]


def test_a_file_from_a_clock_ahead_hides_no_file_landed_after_it(tmp_path) -> None:
    """A copy keeping a modification time a day ahead (rsync -t from a host whose clock is fast)."""
    layout = LakeLayout.local(str(tmp_path / "lake"))
    folder = Path(layout.landing_uri("customers"))
    folder.mkdir(parents=True)
    sensor = landing_sensor(REGISTRY, layout, JOB, default_status=dg.DefaultSensorStatus.RUNNING)
    cursor = tick(sensor, None).cursor
    ahead = folder / "from_the_future.csv"
    ahead.write_bytes(customers_csv(1))
    tomorrow = time.time() + 86400
    os.utime(ahead, (tomorrow, tomorrow))
    requested = []
    for name in ("first.csv", "second.csv"):
        (folder / name).write_bytes(customers_csv(1))
        result = tick(sensor, cursor)
        cursor, requested = result.cursor, requested + named_files(result.run_requests)
    assert sorted(requested) == sorted(
        str(folder / n) for n in ("from_the_future.csv", "first.csv", "second.csv")
    )
    assert named_files(tick(sensor, cursor).run_requests) == [], "each once"


# The S3 events sensor -------------------------------------------------------------------------------


@pytest.fixture
def events_queue(moto_server: MotoServer, bucket: str) -> tuple[str, str]:
    """The landing bucket's Object Created events -> an EventBridge rule -> a queue whose messages
    go to a dead-letter queue after two receives (a one-second visibility timeout)."""
    sqs, events, s3 = (moto_server.client(name) for name in ("sqs", "events", "s3"))
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    dlq = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    queue = sqs.create_queue(
        QueueName=unique_name("events"), Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "1"}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = unique_name("landing-object-created")
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}},
    }
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue, dlq


def queued(moto_server: MotoServer, queue: str) -> int:
    attributes = moto_server.client("sqs").get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def make_events_sensor(tmp_path, moto_server, bucket, queue) -> tuple[dg.SensorDefinition, SqsResource]:
    layout = s3_layout(tmp_path, moto_server, bucket)
    sensor = events_sensor(
        REGISTRY, layout, queue, JOB, default_status=dg.DefaultSensorStatus.RUNNING, wait_seconds=1
    )
    return sensor, SqsResource(endpoint_url=moto_server.endpoint_url, region_name=moto_server.region)


def test_a_put_object_goes_through_eventbridge_and_sqs_to_one_run(
    tmp_path, moto_server, bucket, events_queue
) -> None:
    queue, _ = events_queue
    sensor, sqs = make_events_sensor(tmp_path, moto_server, bucket, queue)
    key = "landing/customers/new file (1).csv"
    moto_server.client("s3").put_object(Bucket=bucket, Key=key, Body=customers_csv(1))

    first = tick(sensor, None, sqs=sqs)
    [request] = first.run_requests
    assert named_files([request]) == [f"s3://{bucket}/{key}"]
    assert queued(moto_server, queue) == 1, "deleted only once the run request is recorded (next tick)"

    body = json.dumps(_eventbridge_event(moto_server, bucket, key))
    moto_server.client("sqs").send_message(QueueUrl=queue, MessageBody=body)  # redelivered
    second = tick(sensor, first.cursor, sqs=sqs)
    assert second.run_requests == [], "a duplicate message gives no second run"
    third = tick(sensor, second.cursor, sqs=sqs)
    assert third.run_requests == [] and queued(moto_server, queue) == 0


def test_duplicates_within_a_tick_give_one_run(tmp_path, moto_server, bucket, events_queue) -> None:
    queue, _ = events_queue
    sensor, sqs = make_events_sensor(tmp_path, moto_server, bucket, queue)
    key = "landing/customers/twice.csv"
    moto_server.client("s3").put_object(Bucket=bucket, Key=key, Body=customers_csv(1))
    moto_server.client("sqs").send_message(
        QueueUrl=queue, MessageBody=json.dumps(_eventbridge_event(moto_server, bucket, key))
    )
    result = tick(sensor, None, sqs=sqs)
    assert named_files(result.run_requests) == [f"s3://{bucket}/{key}"]


def test_malformed_and_unknown_messages_go_to_the_dead_letter_queue_and_the_sensor_keeps_running(
    tmp_path, moto_server, bucket, events_queue
) -> None:
    queue, dlq = events_queue
    sensor, sqs = make_events_sensor(tmp_path, moto_server, bucket, queue)
    client = moto_server.client("sqs")
    client.send_message(QueueUrl=queue, MessageBody="not json")
    client.send_message(
        QueueUrl=queue, MessageBody=json.dumps({"detail-type": "Object Created", "source": "aws.ec2"})
    )
    moto_server.client("s3").put_object(
        Bucket=bucket, Key="landing/elsewhere/x.csv", Body=b"x"
    )  # no table's folder
    key = "landing/customers/a b(1)+c.csv"
    moto_server.client("s3").put_object(Bucket=bucket, Key=key, Body=customers_csv(1))
    # S3's own notification format: the key URL-encoded with + for a space.
    notification = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": "landing/customers/a+b%281%29%2Bc.csv", "eTag": "e1"},
                },
            }
        ]
    }
    client.send_message(QueueUrl=queue, MessageBody=json.dumps(notification))

    cursor, requested = None, []
    for _ in range(4):  # receives, visibility timeouts, redrive after the second receive
        result = tick(sensor, cursor, sqs=sqs)
        cursor, requested = result.cursor, requested + named_files(result.run_requests)
        time.sleep(1.1)
    assert sorted(set(requested)) == [f"s3://{bucket}/{key}"]
    assert queued(moto_server, queue) == 0
    dead = [m["Body"] for m in client.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]]
    assert len(dead) == 3 and "not json" in dead
    assert any("landing/elsewhere/x.csv" in body for body in dead)


def test_a_poison_message_holds_back_neither_the_good_ones_nor_the_good_records_beside_it(
    tmp_path, moto_server, bucket, events_queue
) -> None:
    """A message that raises (another bucket's event with a % in its key, JSON nested deeper than
    the parser goes) or a notification with one bad record: the files of the good messages and
    records are requested on the first tick; only the bad messages go to the dead-letter queue."""
    queue, dlq = events_queue
    sensor, sqs = make_events_sensor(tmp_path, moto_server, bucket, queue)
    client, s3 = moto_server.client("sqs"), moto_server.client("s3")
    foreign = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": "not a bucket"}, "object": {"key": "x%20y.csv", "etag": "e"}},
    }
    client.send_message(QueueUrl=queue, MessageBody=json.dumps(foreign))
    client.send_message(QueueUrl=queue, MessageBody="[" * 100_000)
    s3.put_object(Bucket=bucket, Key="landing/customers/good.csv", Body=customers_csv(1))  # its event
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    keys = [f"landing/customers/batch {i}.csv" for i in range(3)]
    records = []
    for key in keys:  # announced by one S3 notification only, with a bad record
        s3.put_object(Bucket=bucket, Key=key, Body=customers_csv(1))
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        obj = {"key": key.replace(" ", "+"), "eTag": etag}
        records.append({"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": obj}})
    records.append({"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}}})  # no object
    client.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": records}))
    keys.append("landing/customers/good.csv")

    first = tick(sensor, None, sqs=sqs)
    assert sorted(named_files(first.run_requests)) == sorted(f"s3://{bucket}/{key}" for key in keys)
    cursor = first.cursor
    for _ in range(3):  # visibility timeouts, then the redrive after the second receive
        time.sleep(1.1)
        result = tick(sensor, cursor, sqs=sqs)
        assert result.run_requests == [], "the kept message's good records are not requested twice"
        cursor = result.cursor
    assert queued(moto_server, queue) == 0
    dead = [m["Body"] for m in client.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]]
    assert len(dead) == 3 and any('"Records"' in body for body in dead)


def test_an_old_object_named_again_by_a_redelivered_message_gives_no_second_run(
    tmp_path, moto_server, bucket, events_queue
) -> None:
    """A backlog: the object landed longer ago than the lookback. The memory counts from when a
    message named it, not from when it landed (an encoded key is looked up, with its LastModified)."""
    queue, _ = events_queue
    s3, client = moto_server.client("s3"), moto_server.client("sqs")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    key = "landing/customers/a b.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=customers_csv(1))
    event = _eventbridge_event(moto_server, bucket, key)
    event["detail"]["object"]["key"] = "landing/customers/a%20b.csv"  # as AWS encodes a space
    time.sleep(2.5)
    layout = s3_layout(tmp_path, moto_server, bucket)
    sensor = events_sensor(
        REGISTRY,
        layout,
        queue,
        JOB,
        default_status=dg.DefaultSensorStatus.RUNNING,
        wait_seconds=1,
        lookback=timedelta(seconds=2),
    )
    sqs = SqsResource(endpoint_url=moto_server.endpoint_url, region_name=moto_server.region)
    client.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
    first = tick(sensor, None, sqs=sqs)
    assert named_files(first.run_requests) == [f"s3://{bucket}/{key}"]
    client.send_message(QueueUrl=queue, MessageBody=json.dumps(event))  # delivered again
    assert tick(sensor, first.cursor, sqs=sqs).run_requests == []


def test_an_encoded_key_naming_two_objects_is_the_one_holding_the_events_etag(
    tmp_path, moto_server, bucket, events_queue
) -> None:
    """``a%20b.csv`` as AWS sends it is ``a b.csv``; an object named ``a%20b.csv`` exists too
    (sent as ``a%2520b.csv``). Each event requests its own object, and so both are ingested."""
    queue, _ = events_queue
    s3, client = moto_server.client("s3"), moto_server.client("sqs")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    spaced, percent = "landing/customers/a b.csv", "landing/customers/a%20b.csv"
    s3.put_object(Bucket=bucket, Key=spaced, Body=customers_csv(1))
    s3.put_object(Bucket=bucket, Key=percent, Body=customers_csv(10))
    events = [_eventbridge_event(moto_server, bucket, key) for key in (spaced, percent)]
    for event, encoded in zip(
        events, ("landing/customers/a%20b.csv", "landing/customers/a%2520b.csv"), strict=True
    ):
        event["detail"]["object"]["key"] = encoded  # as AWS encodes them
    sensor = events_sensor(
        REGISTRY,
        s3_layout(tmp_path, moto_server, bucket),
        queue,
        JOB,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    sqs = SqsResource(endpoint_url=moto_server.endpoint_url, region_name=moto_server.region)

    requested = []
    cursor = None
    for event in events:
        client.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
        result = tick(sensor, cursor, sqs=sqs)
        requested += named_files(result.run_requests)
        cursor = result.cursor

    assert requested == [f"s3://{bucket}/{spaced}", f"s3://{bucket}/{percent}"]


@pytest.mark.parametrize("form", ["eventbridge", "notification"])
def test_an_object_put_back_with_the_same_bytes_is_requested_again_and_a_redelivery_is_not(
    tmp_path, moto_server, bucket, events_queue, form
) -> None:
    """S3 gives each event of a key a greater sequencer, and every notification of one event the
    same: the same bytes put back (deleted before its run, say) are a new object; the event
    delivered twice is not. (moto's own events carry one fixed sequencer: these are written here.)"""
    queue, _ = events_queue
    s3, client = moto_server.client("s3"), moto_server.client("sqs")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    sensor, sqs = make_events_sensor(tmp_path, moto_server, bucket, queue)
    key = "landing/customers/put back.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=customers_csv(1))

    def event(sequencer: str) -> str:
        if form == "eventbridge":
            message = _eventbridge_event(moto_server, bucket, key)
            message["detail"]["object"]["sequencer"] = sequencer
        else:
            etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
            obj = {"key": key.replace(" ", "+"), "eTag": etag, "size": 1, "sequencer": sequencer}
            message = {
                "Records": [
                    {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": obj}}
                ]
            }
        return json.dumps(message)

    cursor = None
    requested = []
    for sequencer in ("0062E99A88DC407460", "0062E99A88DC407460", "0062E99A88DC4074A1"):
        client.send_message(QueueUrl=queue, MessageBody=event(sequencer))
        result = tick(sensor, cursor, sqs=sqs)
        requested.append(named_files(result.run_requests))
        cursor = result.cursor
    put_back = [[f"s3://{bucket}/{key}"]]
    assert requested == [*put_back, [], *put_back]


#: The sequencer of every event moto's S3 sends (``moto/s3/notifications.py``); AWS gives each
#: event of a key a greater one, the same in every notification of that event.
MOTO_SEQUENCER = "617f08299329d189"


def _eventbridge_event(moto_server: MotoServer, bucket: str, key: str) -> dict:
    """The event S3 sends for the object as it is now (a redelivery carries the same ETag and
    sequencer)."""
    etag = moto_server.client("s3").head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": datetime.now(UTC).isoformat(),
        "detail": {
            "bucket": {"name": bucket},
            "object": {"key": key, "etag": etag, "size": 1, "sequencer": MOTO_SEQUENCER},
        },
    }


def test_a_file_deleted_after_its_run_was_requested_is_skipped_and_the_others_ingested(
    tmp_path, moto_server, bucket, sail_url, spark
) -> None:
    s3 = moto_server.client("s3")
    defs = s3_landing_definitions(tmp_path, moto_server, bucket, sail_url)
    sensor = defs.resolve_sensor_def("landing_files_sensor")
    first = tick(sensor, None)
    kept, deleted = "landing/customers/kept.csv", "landing/customers/deleted.csv"
    s3.put_object(Bucket=bucket, Key=kept, Body=customers_csv(10))
    s3.put_object(Bucket=bucket, Key=deleted, Body=customers_csv(20))
    [request] = tick(sensor, first.cursor).run_requests
    assert sorted(named_files([request])) == sorted(f"s3://{bucket}/{key}" for key in (kept, deleted))
    s3.delete_object(Bucket=bucket, Key=deleted)

    run = defs.resolve_job_def("landing_files_job").execute_in_process(
        run_config=request.run_config,
        asset_selection=request.asset_selection,
        instance=dg.DagsterInstance.ephemeral(),
    )

    assert run.success
    [materialization] = [
        event.event_specific_data.materialization
        for event in run.all_events
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        and event.event_specific_data.materialization.asset_key == CUSTOMERS
    ]
    assert materialization.metadata["lakehouse/files_missing"].value == [f"s3://{bucket}/{deleted}"]
    rows = spark.read.format("delta").load(str(tmp_path / "lake" / "bronze" / "customers")).collect()
    assert sorted(row["customer_id"] for row in rows) == [10, 11, 12]
    assert {row["_source_file"] for row in rows} == {f"s3://{bucket}/{kept}"}


def test_files_waiting_while_other_tables_take_the_ticks_runs_are_not_skipped(tmp_path, monkeypatch) -> None:
    """The sensor was stopped for two hours: a table left no run by the tick's budget (spent on
    another table) used to have its ``since`` moved past its waiting files, for good."""
    from lakehouse_dagster.defs import landing_sensor as module

    clock = {"now": datetime.now(UTC)}

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None) -> datetime:
            return clock["now"]

    monkeypatch.setattr(module, "datetime", Clock)
    layout = LakeLayout.local(str(tmp_path / "lake"))
    sensor = one_file_a_tick(layout)
    state = tick(sensor, None).cursor
    landing = Path(layout.landing)
    landed = [landing / "customers" / f"c{i}.csv" for i in range(3)]
    landed.append(landing / "dms" / "sales" / "orders" / "20261126-1134010000.csv")
    for path in landed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(customers_csv(1))
    clock["now"] += timedelta(hours=2)

    requested = []
    for _ in range(6):
        result = tick(sensor, state)
        state = result.cursor
        requested += [
            f
            for r in result.run_requests
            for op in r.run_config["ops"].values()
            for f in op["config"]["files"]
        ]
        clock["now"] += timedelta(seconds=30)

    assert sorted(requested) == sorted(str(path) for path in landed)
