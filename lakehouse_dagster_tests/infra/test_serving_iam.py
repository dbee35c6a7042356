"""The Dagster role's serving policy: what serving needs (read silver and gold, stage under one
prefix, Glue tables of one database, one Redshift workgroup), nothing more."""

from __future__ import annotations

from lakehouse_dagster.defs.resources import REDSHIFT_STAGING

from .terraform_config import child_module, policy_statements, text

SOURCE = "modules/iam: data.aws_iam_policy_document.dagster_serving"


def statements():
    found = [s for s in policy_statements() if s.source == SOURCE]
    assert found, "the serving policy document exists"
    return found


def test_writes_go_only_to_the_staging_prefix_the_code_uses() -> None:
    writes = [s for s in statements() if any(a.startswith(("s3:Put", "s3:Delete")) for a in s.actions)]
    assert [s.resources for s in writes] == [
        ('${var.lake_bucket_arns["gold"]}/${var.warehouse_staging_prefix}/*',)
    ]
    default = child_module("iam").variables["warehouse_staging_prefix"].get("default")
    assert text(default).strip('"') == REDSHIFT_STAGING


def test_reads_only_silver_and_gold_and_registers_only_in_the_lake_database() -> None:
    reads = {r for s in statements() for a in s.actions if a.startswith("s3:Get") for r in s.resources}
    assert reads <= {
        'var.lake_bucket_arns["silver"]',
        'var.lake_bucket_arns["gold"]',
        '${var.lake_bucket_arns["silver"]}/*',
        '${var.lake_bucket_arns["gold"]}/*',
    }
    (glue,) = [s for s in statements() if any(a.startswith("glue:") for a in s.actions)]
    assert not any(a.startswith("glue:Delete") for a in glue.actions)
    assert "${local.glue_prefix}:table/${var.glue_database_name}/*" in glue.resources


def test_redshift_statements_are_limited_to_the_workgroup_or_to_its_own_statements() -> None:
    for statement in statements():
        if not any(a.startswith(("redshift-data:", "redshift-serverless:")) for a in statement.actions):
            continue
        if statement.resources == ("var.warehouse_workgroup_arn",):
            continue
        assert statement.resources == ('"*"',) or statement.resources == ("*",)
        assert set(statement.actions) <= {
            "redshift-data:DescribeStatement",
            "redshift-data:GetStatementResult",
            "redshift-data:CancelStatement",
        }
        assert [c[1] for c in statement.conditions] == ["redshift-data:statement-owner-iam-userid"]
