"""Offline checks of the Terraform under infra/: formatting, and what the platform must guarantee.

Nothing here talks to a cloud or downloads a provider: ``terraform fmt`` works offline, and the
rest reads the ``.tf`` files with python-hcl2 (see terraform_config.py).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from lakehouse_dagster.domains.sales.source import CHANGE_SEQUENCE

from .terraform_config import (
    INFRA_DIR,
    REPO_ROOT,
    Block,
    Module,
    all_modules,
    block,
    blocks_of,
    child_module,
    decode_call,
    is_literal,
    key_policy_documents,
    module_output_source,
    names,
    policy_statements,
    references,
    root_module,
    strip_meta,
    text,
)

# What the DMS ingestion reads (DESIGN.md §5, "AWS DMS to S3"): CSV with a header row, the Op column
# on CDC rows only, and the commit timestamp column used as sequence_by.
DMS_TIMESTAMP_COLUMN = "dms_commit_ts"
DMS_FOLDER = "dms"
SALES_TABLES = {"customers", "products", "orders", "order_items"}


def lake_storage() -> Module:
    return child_module("lake_storage")


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


def test_terraform_files_are_formatted() -> None:
    terraform = shutil.which("terraform")
    assert terraform, (
        "terraform is not on PATH: install Terraform >= 1.11 (it runs `terraform fmt -check` only)"
    )
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(INFRA_DIR)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive infra/`:\n{result.stdout}{result.stderr}"


# ---------------------------------------------------------------------------------------------
# Variables, outputs and module calls are consistent
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", all_modules(), ids=lambda module: module.name)
def test_every_variable_is_declared_and_used(module: Module) -> None:
    referenced = set().union(*(names(value, "var") for value in module.body_values()))
    # A variable's own validation does not count as a use.
    used = set().union(
        names(module.locals, "var"), *(names(b.body, "var") for b in module.blocks if b.kind != "variable")
    )
    declared = set(module.variables)
    assert referenced - declared == set(), f"{module.name}: referenced but not declared"
    assert declared - used == set(), f"{module.name}: declared but never used"


@pytest.mark.parametrize("module", all_modules(), ids=lambda module: module.name)
def test_every_local_used_is_defined(module: Module) -> None:
    used_locals = set().union(*(names(value, "local") for value in module.body_values()))
    assert used_locals - set(module.locals) == set(), f"{module.name}: undefined locals"


def test_only_the_root_module_calls_modules_and_their_outputs_exist() -> None:
    assert all(not module.module_calls for module in all_modules() if module.path != INFRA_DIR)
    root = root_module()
    for call in root.module_calls:
        used_outputs = set().union(*(names(value, f"module.{call}") for value in root.body_values()))
        assert used_outputs - set(child_module(call).outputs) == set(), f"module.{call}: unknown outputs"


@pytest.mark.parametrize("call", sorted(root_module().module_calls), ids=str)
def test_module_calls_pass_exactly_the_declared_variables(call: str) -> None:
    arguments = {key for key in root_module().module_calls[call].body if not key.startswith("__")}
    arguments -= {"source", "depends_on", "providers", "count", "for_each"}
    variables = child_module(call).variables
    required = {name for name, variable in variables.items() if "default" not in variable.body}
    assert arguments - set(variables) == set(), f"module.{call}: arguments the module does not declare"
    assert required - arguments == set(), f"module.{call}: required variables not passed"


def test_variables_hold_no_secret_defaults() -> None:
    for module in all_modules():
        for name, variable in module.variables.items():
            lowered = name.lower()
            if any(word in lowered for word in ("password", "token", "secret_value", "private_key")):
                assert "default" not in variable.body, f"{module.name}: variable {name} has a default"
            assert "password" not in text(variable.get("type", "")).lower(), (
                f"{module.name}: variable {name} has a password field; use a Secrets Manager ARN"
            )


# ---------------------------------------------------------------------------------------------
# S3: every bucket hardened
# ---------------------------------------------------------------------------------------------


def _companions(module: Module, bucket: Block, resource_type: str) -> list[Block]:
    """Resources of ``resource_type`` configuring ``bucket`` for each of its instances."""
    found = []
    for resource in module.resources(resource_type).values():
        targets = names(resource.get("bucket"), "aws_s3_bucket")
        if bucket.name in targets:
            assert resource.get("for_each") == bucket.get("for_each"), (
                f"{resource.address} must iterate like {bucket.address} to cover every bucket instance"
            )
            found.append(resource)
    return found


def _bucket_cases() -> list[tuple[Module, Block]]:
    return [
        (module, bucket) for module in all_modules() for bucket in module.resources("aws_s3_bucket").values()
    ]


BUCKETS = _bucket_cases()
BUCKET_IDS = [f"{module.name}:{bucket.address}" for module, bucket in BUCKETS]


def test_buckets_exist_only_in_the_lake_storage_module() -> None:
    assert {module.name for module, _ in BUCKETS} == {"modules/lake_storage"}
    assert {bucket.name for _, bucket in BUCKETS} == {"zone", "access_logs"}
    assert lake_storage().locals["zones"] == '${toset(["landing", "bronze", "silver", "gold"])}'


def _lake_key_resource() -> Block:
    """The aws_kms_key behind the key the root module gives to the lake storage module."""
    argument = text(root_module().module_calls["lake_storage"].get("kms_key_arn"))
    assert argument.startswith("module.encryption."), "lake buckets must use the CMK of the encryption module"
    output = module_output_source("encryption", argument.removeprefix("module.encryption."))
    key_name = output.removeprefix("aws_kms_key.").removesuffix(".arn")
    return child_module("encryption").resources("aws_kms_key")[key_name]


def test_lake_key_is_a_customer_managed_key_of_the_encryption_module() -> None:
    assert _lake_key_resource().name == "lake"


def test_every_kms_key_rotates_and_has_a_policy() -> None:
    keys = [
        (module.name, key) for module in all_modules() for key in module.resources("aws_kms_key").values()
    ]
    assert keys
    for module_name, key in keys:
        assert key.get("enable_key_rotation") is True, f"{module_name}: {key.address}"
        assert names(key.get("policy"), "data.aws_iam_policy_document"), f"{module_name}: {key.address}"


@pytest.mark.parametrize(("module", "bucket"), BUCKETS, ids=BUCKET_IDS)
def test_bucket_is_encrypted_with_the_cmk(module: Module, bucket: Block) -> None:
    (sse,) = _companions(module, bucket, "aws_s3_bucket_server_side_encryption_configuration")
    default = block(sse.body, "rule", "apply_server_side_encryption_by_default")
    assert is_literal(default.get("sse_algorithm"), "aws:kms")
    assert text(default.get("kms_master_key_id")) == "var.kms_key_arn"


@pytest.mark.parametrize(("module", "bucket"), BUCKETS, ids=BUCKET_IDS)
def test_bucket_is_versioned(module: Module, bucket: Block) -> None:
    (versioning,) = _companions(module, bucket, "aws_s3_bucket_versioning")
    assert is_literal(block(versioning.body, "versioning_configuration").get("status"), "Enabled")


@pytest.mark.parametrize(("module", "bucket"), BUCKETS, ids=BUCKET_IDS)
def test_bucket_blocks_public_access_and_acls(module: Module, bucket: Block) -> None:
    (access_block,) = _companions(module, bucket, "aws_s3_bucket_public_access_block")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert access_block.get(flag) is True, flag
    (ownership,) = _companions(module, bucket, "aws_s3_bucket_ownership_controls")
    assert is_literal(block(ownership.body, "rule").get("object_ownership"), "BucketOwnerEnforced")


@pytest.mark.parametrize(("module", "bucket"), BUCKETS, ids=BUCKET_IDS)
def test_bucket_has_lifecycle_rules(module: Module, bucket: Block) -> None:
    (lifecycle,) = _companions(module, bucket, "aws_s3_bucket_lifecycle_configuration")
    rules = [rule for rule in blocks_of(lifecycle.body, "rule") if is_literal(rule.get("status"), "Enabled")]
    cleanup = [rule for rule in rules if blocks_of(rule, "abort_incomplete_multipart_upload")]
    assert cleanup, "no enabled rule aborts incomplete multipart uploads"
    assert any(blocks_of(rule, "noncurrent_version_expiration") for rule in rules), (
        "noncurrent versions kept forever"
    )
    transitions = [t for rule in rules for t in blocks_of(rule, "transition")]
    assert transitions, "no rule moves objects to a cheaper storage class"


def test_zone_lifecycle_is_zone_specific() -> None:
    (lifecycle,) = _companions(
        lake_storage(),
        lake_storage().resources("aws_s3_bucket")["zone"],
        "aws_s3_bucket_lifecycle_configuration",
    )
    transition = block(
        next(r for r in blocks_of(lifecycle.body, "rule") if blocks_of(r, "transition")), "transition"
    )
    assert text(transition.get("days")) == "var.zone_lifecycle[each.key].transition_days"
    assert text(transition.get("storage_class")) == "var.zone_lifecycle[each.key].storage_class"
    default = lake_storage().variables["zone_lifecycle"].get("default")
    assert set(default) == {"landing", "bronze", "silver", "gold"}
    classes = {text(zone["storage_class"]) for zone in default.values()}
    assert classes <= {"STANDARD_IA", "INTELLIGENT_TIERING"}
    assert len({zone["transition_days"] for zone in default.values()}) > 1, "same transition for every zone"


def _log_targets(module: Module) -> set[str]:
    return {
        name
        for logging in module.resources("aws_s3_bucket_logging").values()
        for name in names(logging.get("target_bucket"), "aws_s3_bucket")
    }


@pytest.mark.parametrize(("module", "bucket"), BUCKETS, ids=BUCKET_IDS)
def test_bucket_logs_access_to_the_log_bucket(module: Module, bucket: Block) -> None:
    if bucket.name in _log_targets(module):
        # The access-log bucket itself: logging it to itself would log every log delivery.
        assert _companions(module, bucket, "aws_s3_bucket_logging") == []
        return
    (logging,) = _companions(module, bucket, "aws_s3_bucket_logging")
    assert names(logging.get("target_bucket"), "aws_s3_bucket") == {"access_logs"}


def test_there_is_exactly_one_log_bucket() -> None:
    assert _log_targets(lake_storage()) == {"access_logs"}


@pytest.mark.parametrize(("module", "bucket"), BUCKETS, ids=BUCKET_IDS)
def test_bucket_policy_denies_insecure_transport(module: Module, bucket: Block) -> None:
    (policy,) = _companions(module, bucket, "aws_s3_bucket_policy")
    (document_name,) = names(policy.get("policy"), "data.aws_iam_policy_document")
    document = module.data("aws_iam_policy_document")[document_name]
    statements = [s for s in policy_statements() if s.source == f"{module.name}: {document.address}"]
    tls = [
        s
        for s in statements
        if s.effect == "Deny"
        and "s3:*" in s.actions
        and ("Bool", "aws:SecureTransport", ("false",)) in s.conditions
        and ("*", ("*",)) in s.principals
    ]
    assert tls, f"{document.address} has no Deny of aws:SecureTransport=false for everyone"
    resources = " ".join(tls[0].resources)
    assert f"aws_s3_bucket.{bucket.name}" in resources and "/*" in resources, (
        "deny must cover bucket and objects"
    )


def test_landing_bucket_sends_events_to_eventbridge() -> None:
    (notification,) = lake_storage().resources("aws_s3_bucket_notification").values()
    assert notification.get("eventbridge") is True
    assert text(notification.get("bucket")) == 'aws_s3_bucket.zone["landing"].id'


# ---------------------------------------------------------------------------------------------
# Events: EventBridge rule -> SQS queue with DLQ
# ---------------------------------------------------------------------------------------------


def test_every_queue_is_encrypted_and_has_a_dead_letter_queue() -> None:
    queues = {
        (module.name, name): queue
        for module in all_modules()
        for name, queue in module.resources("aws_sqs_queue").items()
    }
    assert queues, "no SQS queue"
    dead_letter_targets: set[tuple[str, str]] = set()
    for (module_name, name), queue in queues.items():
        assert "kms_master_key_id" in queue.body, f"{name} is not encrypted with the CMK"
        redrive = decode_call(queue.get("redrive_policy"))
        if redrive is None:
            continue
        (target,) = names(redrive["deadLetterTargetArn"], "aws_sqs_queue")
        assert (module_name, target) in queues and target != name
        assert "maxReceiveCount" in redrive
        dead_letter_targets.add((module_name, target))
    consumers = set(queues) - dead_letter_targets
    for key in consumers:
        assert decode_call(queues[key].get("redrive_policy")) is not None, (
            f"queue {key[1]} has no redrive policy"
        )
    assert dead_letter_targets, "no dead-letter queue"


def test_max_receive_count_default_is_small() -> None:
    assert child_module("events").variables["max_receive_count"].get("default") <= 10


def _event_rule() -> tuple[Block, dict[str, Any]]:
    (rule,) = child_module("events").resources("aws_cloudwatch_event_rule").values()
    pattern = decode_call(rule.get("event_pattern"))
    assert isinstance(pattern, dict)
    return rule, pattern


def test_event_rule_matches_object_created_under_landing_prefixes() -> None:
    _, pattern = _event_rule()
    assert [text(v) for v in pattern["source"]] == ["aws.s3"]
    assert [text(v) for v in pattern["detail-type"]] == ["Object Created"]
    assert [text(v) for v in pattern["detail"]["bucket"]["name"]] == ["var.landing_bucket_name"]
    key_filter = text(pattern["detail"]["object"]["key"])
    assert "var.landing_prefixes" in key_filter and "{prefix = " in key_filter
    call = root_module().module_calls["events"]
    assert text(call.get("landing_bucket_name")) == 'module.lake_storage.bucket_names["landing"]'
    assert text(call.get("landing_prefixes")) == "var.landing_prefixes"
    defaults = [text(p) for p in root_module().variables["landing_prefixes"].get("default")]
    assert f"{DMS_FOLDER}/" in defaults


def test_event_rule_targets_the_queue_and_only_it_may_send() -> None:
    events = child_module("events")
    rule, _ = _event_rule()
    (target,) = events.resources("aws_cloudwatch_event_target").values()
    assert text(target.get("arn")) == "aws_sqs_queue.events.arn"
    assert names(target.get("rule"), "aws_cloudwatch_event_rule") == {rule.name}
    (queue_policy,) = [
        p
        for p in events.resources("aws_sqs_queue_policy").values()
        if "aws_sqs_queue.events.id" in text(p.get("queue_url"))
    ]
    (document_name,) = names(queue_policy.get("policy"), "data.aws_iam_policy_document")
    statements = [
        s
        for s in policy_statements()
        if s.source == f"modules/events: data.aws_iam_policy_document.{document_name}"
    ]
    assert statements and all(s.effect == "Allow" and s.actions == ("sqs:SendMessage",) for s in statements)
    for statement in statements:
        assert ("Service", ("events.amazonaws.com",)) in statement.principals
        assert (
            "ArnEquals",
            "aws:SourceArn",
            (f"aws_cloudwatch_event_rule.{rule.name}.arn",),
        ) in statement.conditions


# ---------------------------------------------------------------------------------------------
# IAM: no wildcard grants, least-privilege roles
# ---------------------------------------------------------------------------------------------


def test_iam_policies_are_found() -> None:
    sources = {statement.source.split(": ")[0] for statement in policy_statements()}
    assert {"modules/iam", "modules/events", "modules/lake_storage", "modules/encryption"} <= sources


def test_no_policy_allows_every_action_on_every_resource() -> None:
    key_policies = key_policy_documents()
    offending = []
    for statement in policy_statements():
        if statement.effect != "Allow":
            continue
        if "*" in statement.actions:
            offending.append(f"{statement.source}: Action '*'")
        service_wide = [action for action in statement.actions if action.endswith(":*")]
        if service_wide and "*" in statement.resources and statement.source not in key_policies:
            offending.append(f"{statement.source}: {service_wide} on Resource '*'")
    assert offending == []


def test_no_administrator_managed_policy_is_attached() -> None:
    forbidden = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
    for module in all_modules():
        for attachment in module.resources("aws_iam_role_policy_attachment").values():
            arn = text(attachment.get("policy_arn"))
            assert not arn.endswith(forbidden), f"{module.name}: {attachment.address} attaches {arn}"


def _role_statements(document: str) -> list[Any]:
    return [
        s for s in policy_statements() if s.source == f"modules/iam: data.aws_iam_policy_document.{document}"
    ]


def test_dagster_role_reads_landing_and_consumes_queue_and_stream_only() -> None:
    statements = _role_statements("dagster") + _role_statements("read_the_stream")
    policies = child_module("iam").resources("aws_iam_role_policy")
    assert "aws_iam_role.dagster" in text(policies["dagster_stream"].get("role"))
    actions = {action for statement in statements for action in statement.actions}
    assert {action.split(":")[0] for action in actions} == {"s3", "sqs", "kinesis", "kms"}
    assert not any(action.startswith("s3:Put") or action.startswith("s3:Delete") for action in actions)
    assert "kinesis:PutRecord" not in actions and "sqs:SendMessage" not in actions
    resources = {resource for statement in statements for resource in statement.resources}
    assert resources == {
        'var.lake_bucket_arns["landing"]',
        '${var.lake_bucket_arns["landing"]}/*',
        "var.events_queue_arn",
        "var.kinesis_stream_arn",
        "var.lake_kms_key_arn",
        "var.platform_kms_key_arn",
    }


def test_lake_roles_are_limited_to_the_lake_buckets_and_key() -> None:
    statements = _role_statements("lake_access")
    resources = {resource for statement in statements for resource in statement.resources}
    assert resources <= {
        "values(var.lake_bucket_arns)",
        '[for arn in values(var.lake_bucket_arns) : "${arn}/*"]',
        '[for zone in local.writable_zones : "${var.lake_bucket_arns[zone]}/*"]',
        "var.lake_kms_key_arn",
    }
    writes = [s for s in statements if any(a.startswith(("s3:Put", "s3:Delete")) for a in s.actions)]
    assert writes and all("local.writable_zones" in " ".join(s.resources) for s in writes)
    assert [text(zone) for zone in child_module("iam").locals["writable_zones"]] == [
        "bronze",
        "silver",
        "gold",
    ]
    iam = child_module("iam")
    for role in ("unity_catalog_lake", "cluster_instance_profile_lake"):
        policy = iam.resources("aws_iam_role_policy")[role]
        assert names(policy.get("policy"), "data.aws_iam_policy_document") == {"lake_access"}


def test_the_cluster_reads_the_stream_that_bronze_events_consumes_there() -> None:
    """With the Databricks runner every unit, bronze.events included, runs on the cluster: its
    instance profile reads the stream (and decrypts its records through Kinesis only)."""
    statements = _role_statements("read_the_stream")
    actions = {action for statement in statements for action in statement.actions}
    used = {"kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords"}  # stream/kinesis.py
    assert used <= actions and not any(a.startswith("kinesis:Put") for a in actions)
    assert {r for s in statements for r in s.resources} == {
        "var.kinesis_stream_arn",
        "var.platform_kms_key_arn",
    }
    (decrypt,) = [s for s in statements if "kms:Decrypt" in s.actions]
    assert decrypt.conditions == (
        ("StringEquals", "kms:ViaService", ("kinesis.${local.region}.amazonaws.com",)),
    )
    policy = child_module("iam").resources("aws_iam_role_policy")["cluster_instance_profile_stream"]
    assert "aws_iam_role.cluster_instance_profile" in text(policy.get("role"))


def test_databricks_trust_policies_require_an_external_id() -> None:
    for document in ("databricks_cross_account_assume", "unity_catalog_assume"):
        for statement in _role_statements(document):
            externals = [c for c in statement.conditions if c[1] == "sts:ExternalId"]
            assert externals, f"{document}: trust without sts:ExternalId"


# ---------------------------------------------------------------------------------------------
# Streaming, CDC, warehouse, monitoring
# ---------------------------------------------------------------------------------------------


def test_kinesis_stream_is_kms_encrypted_and_mode_is_a_variable() -> None:
    (stream,) = child_module("streaming").resources("aws_kinesis_stream").values()
    assert is_literal(stream.get("encryption_type"), "KMS")
    assert text(stream.get("kms_key_id")) == "var.kms_key_arn"
    assert text(stream.get("name")) == "var.stream_name"
    assert text(block(stream.body, "stream_mode_details").get("stream_mode")) == "var.stream_mode"
    assert text(root_module().module_calls["streaming"].get("kms_key_arn")).startswith("module.encryption.")


def test_dms_target_writes_the_csv_the_ingestion_expects() -> None:
    (target,) = child_module("cdc").resources("aws_dms_s3_endpoint").values()
    assert target.get("add_column_name") is True, "header row"
    assert target.get("include_op_for_full_load") is False, "Op column only on CDC rows"
    assert target.get("cdc_inserts_only") is False and target.get("cdc_inserts_and_updates") is False, (
        "Op I/U/D"
    )
    assert is_literal(target.get("timestamp_column_name"), DMS_TIMESTAMP_COLUMN)
    assert is_literal(target.get("bucket_folder"), DMS_FOLDER)
    assert is_literal(target.get("csv_delimiter"), ",")
    assert is_literal(target.get("data_format"), "csv")
    assert target.get("date_partition_enabled") is False
    assert "cdc_path" not in target.body, "CDC files must stay next to the full load: dms/<schema>/<table>/"
    assert is_literal(target.get("encryption_mode"), "SSE_KMS")
    assert text(target.get("server_side_encryption_kms_key_id")) == "var.lake_kms_key_arn"


def test_dms_source_uses_secrets_manager_and_instance_is_private_and_encrypted() -> None:
    cdc = child_module("cdc")
    (source,) = cdc.resources("aws_dms_endpoint").values()
    assert "password" not in source.body and "username" not in source.body
    assert text(source.get("secrets_manager_arn")) == "var.source_endpoint.secret_arn"
    assert "default" not in root_module().variables["dms_source"].body
    (instance,) = cdc.resources("aws_dms_replication_instance").values()
    assert instance.get("publicly_accessible") is False
    assert text(instance.get("kms_key_arn")) == "var.platform_kms_key_arn"
    assert text(root_module().module_calls["cdc"].get("private_subnet_ids")) == "var.private_subnet_ids"


def test_dms_task_replicates_the_sales_tables_full_load_and_cdc() -> None:
    cdc = child_module("cdc")
    (task,) = cdc.resources("aws_dms_replication_task").values()
    assert is_literal(task.get("migration_type"), "full-load-and-cdc")
    mappings = decode_call(task.get("table_mappings"))
    assert isinstance(mappings, dict)
    rules = text(mappings["rules"])
    assert "for index, table in var.source_tables" in rules and '"schema-name" = var.source_schema' in rules
    # Every row carries DMS's change-sequence header, as the sales source orders changes by it.
    assert '"rule-action" = "add-column"' in rules and f'"value" = "{CHANGE_SEQUENCE}"' in rules
    assert f'"expression" = "${CHANGE_SEQUENCE}"' in rules
    assert is_literal(cdc.variables["source_schema"].get("default"), "sales")
    assert {text(t) for t in cdc.variables["source_tables"].get("default")} >= SALES_TABLES


def test_warehouse_admin_password_is_generated_not_given() -> None:
    warehouse = child_module("warehouse")
    (namespace,) = warehouse.resources("aws_redshiftserverless_namespace").values()
    assert namespace.get("manage_admin_password") is True
    assert "admin_user_password" not in namespace.body and "admin_user_password_wo" not in namespace.body
    assert "kms_key_id" in namespace.body
    (workgroup,) = warehouse.resources("aws_redshiftserverless_workgroup").values()
    assert workgroup.get("publicly_accessible") is False
    assert warehouse.resources("aws_glue_catalog_database")


def test_secrets_and_topic_are_encrypted_with_the_cmk() -> None:
    for secret in root_module().resources("aws_secretsmanager_secret").values():
        assert text(secret.get("kms_key_id")).startswith("module.encryption."), secret.address
    (topic,) = child_module("monitoring").resources("aws_sns_topic").values()
    assert text(topic.get("kms_master_key_id")) == "var.kms_key_arn"


def test_alarms_watch_the_ingestion_paths_and_notify_the_topic() -> None:
    monitoring = child_module("monitoring")
    alarms = monitoring.resources("aws_cloudwatch_metric_alarm").values()
    watched = {(text(a.get("namespace")), text(a.get("metric_name"))) for a in alarms}
    assert {
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds"),
        ("AWS/DMS", "CDCLatencyTarget"),
    } <= watched
    for alarm in alarms:
        assert text(alarm.get("alarm_actions")) == "local.alarm_actions", alarm.address
    assert [text(action) for action in monitoring.locals["alarm_actions"]] == ["aws_sns_topic.alarms.arn"]
    dlq = next(a for a in alarms if text(a.get("metric_name")) == "ApproximateNumberOfMessagesVisible")
    assert names(dlq.get("dimensions"), "var") == {"events_dlq_name"}
    (failures,) = monitoring.resources("aws_dms_event_subscription").values()
    assert '"failure"' in failures.get("event_categories")
    assert text(failures.get("sns_topic_arn")) == "aws_sns_topic.alarms.arn"
    assert monitoring.resources("aws_cloudwatch_dashboard")


# ---------------------------------------------------------------------------------------------
# Databricks
# ---------------------------------------------------------------------------------------------


def _databricks() -> Module:
    return child_module("databricks_workspace")


def test_cluster_policy_caps_size_and_cost_and_enforces_tags() -> None:
    databricks = _databricks()
    rules = strip_meta(databricks.locals["cluster_policy_rules"])
    # Databricks refuses autotermination_minutes on a job cluster, and the policy's fixed values
    # go into every submitted cluster (apply_policy_default_values).
    assert "autotermination_minutes" not in rules
    expected = {
        "cluster_type": {"type": "fixed", "value": "job"},
        "num_workers": {"type": "range", "maxValue": "var.cluster_policy.max_workers"},
        "autoscale.max_workers": {"type": "range", "maxValue": "var.cluster_policy.max_workers"},
        "node_type_id": {"type": "allowlist", "values": "var.cluster_policy.allowed_node_types"},
        "driver_node_type_id": {"type": "allowlist", "values": "var.cluster_policy.allowed_node_types"},
        "dbus_per_hour": {"type": "range", "maxValue": "var.cluster_policy.max_dbu_per_hour"},
        "aws_attributes.instance_profile_arn": {
            "type": "fixed",
            "value": "databricks_instance_profile.cluster.id",
        },
    }
    for attribute, rule in expected.items():
        assert attribute in rules, f"cluster policy has no rule for {attribute}"
        actual = {key: text(value) for key, value in rules[attribute].items()}
        assert {key: actual.get(key) for key in rule} == rule, attribute
    (policy,) = databricks.resources("databricks_cluster_policy").values()
    definition = text(policy.get("definition"))
    assert definition.startswith("jsonencode(merge(local.cluster_policy_rules, ")
    assert '"custom_tags.${key}" => {type = "fixed", value = value}' in definition, "tags must be fixed"
    defaults = root_module().variables["cluster_policy"]
    assert "max_workers" in text(defaults.get("type")) and "max_dbu_per_hour" in text(defaults.get("type"))


def test_catalog_schemas_and_grants() -> None:
    databricks = _databricks()
    assert (
        text(databricks.locals["schemas"]) == 'toset(["bronze", "silver", "gold", "quarantine", "ops", "ml"])'
    )
    grants = databricks.resources("databricks_grants")
    catalog_grants = {
        text(g["principal"]): {text(p) for p in g["privileges"]}
        for g in blocks_of(grants["catalog"].body, "grant")
    }
    assert catalog_grants["var.analysts_group"] == {"USE_CATALOG"}
    assert {
        "USE_CATALOG",
        "USE_SCHEMA",
        "SELECT",
        "MODIFY",
        "CREATE_TABLE",
        "CREATE_MODEL",
    } <= catalog_grants["var.engineers_group"]
    (gold,) = blocks_of(grants["gold"].body, "grant")
    assert text(grants["gold"].get("schema")) == 'databricks_schema.layer["gold"].id'
    assert text(gold["principal"]) == "var.analysts_group"
    assert {text(p) for p in gold["privileges"]} == {"USE_SCHEMA", "SELECT"}
    for grant in grants.values():
        for entry in blocks_of(grant.body, "grant"):
            if text(entry["principal"]) == "var.analysts_group":
                assert grant.name in {"catalog", "gold"}, f"analysts granted on {grant.address}"


def test_external_locations_cover_every_lake_bucket_and_landing_is_read_only() -> None:
    (location,) = _databricks().resources("databricks_external_location").values()
    assert text(_databricks().locals["zone_buckets"]) == 'toset(["landing", "bronze", "silver", "gold"])'
    assert text(location.get("read_only")) == 'each.key == "landing"'
    assert text(root_module().resources("databricks_storage_credential")["lake"].get("name"))


def test_email_mask_function_is_created_and_applied_to_customer_tables() -> None:
    databricks = _databricks()
    template = (databricks.path / "sql" / "pii_masks.sql.tftpl").read_text(encoding="utf-8")
    assert "CREATE OR REPLACE FUNCTION ${mask_function}(email STRING)" in template
    assert "ALTER TABLE ${item.table} ALTER COLUMN ${item.column} SET MASK ${mask_function};" in template
    assert "is_account_group_member('${engineers_group}')" in template
    (job,) = databricks.resources("databricks_job").values()
    sql_file = block(job.body, "task", "sql_task", "file")
    assert text(sql_file.get("path")) == "databricks_workspace_file.pii_masks.path"
    columns = [text(c) for c in root_module().variables["pii_email_columns"].get("default")]
    assert any(c.endswith("customers.email") for c in columns) and all(c.count(".") == 2 for c in columns)


def test_secret_scope_exists() -> None:
    assert _databricks().resources("databricks_secret_scope")


def test_storage_credential_role_is_the_unity_catalog_role() -> None:
    credential = root_module().resources("databricks_storage_credential")["lake"]
    assert text(block(credential.body, "aws_iam_role").get("role_arn")) == "local.unity_catalog_role_arn"
    assert (
        text(root_module().module_calls["iam"].get("unity_catalog_role_name"))
        == "local.unity_catalog_role_name"
    )
    assert references(root_module().module_calls["iam"].body, "databricks_storage_credential") == {
        "databricks_storage_credential.lake.aws_iam_role[0].external_id",
        "databricks_storage_credential.lake.aws_iam_role[0].unity_catalog_iam_arn",
    }
