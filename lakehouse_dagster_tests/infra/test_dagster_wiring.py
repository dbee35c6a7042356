"""The Terraform outputs produce exactly the environment the production Dagster deployment reads.

Sources of truth:
- lakehouse_dagster.deployment.ENVIRONMENT_VARIABLES: what the code reads;
- infra/dagster_env.tf: which output produces which variable (plain value, or Secrets Manager ARN);
- docs/infrastructure.md: the same mapping for humans, plus the variables Terraform leaves alone.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from lakehouse_dagster.deployment import ENVIRONMENT_VARIABLES, Deployment

from .terraform_config import INFRA_DIR, REPO_ROOT, root_module, text

DOCS = REPO_ROOT / "docs" / "infrastructure.md"
RENDER_SCRIPT = INFRA_DIR / "scripts" / "render_dagster_env.py"
AGGREGATE_OUTPUTS = {"dagster_environment", "dagster_secret_environment"}
NOT_FROM_TERRAFORM = "—"

DECLARED = {variable.name: variable for variable in ENVIRONMENT_VARIABLES}
NEEDED_IN_PROD = {
    variable.name
    for variable in ENVIRONMENT_VARIABLES
    if Deployment.PROD in variable.required_in or variable.planned_for is not None or variable.terraform
}


def _string_map(local: str) -> dict[str, str]:
    return {key: text(value) for key, value in root_module().locals[local].items()}


def plain_mapping() -> dict[str, str]:
    return _string_map("dagster_env_outputs")


def secret_mapping() -> dict[str, str]:
    return _string_map("dagster_secret_env_outputs")


def docs_mapping() -> dict[str, tuple[str, str]]:
    """Rows of the mapping table in docs/infrastructure.md: variable -> (output, kind)."""
    rows: dict[str, tuple[str, str]] = {}
    row = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*(`[a-z0-9_]+`|—)\s*\|\s*([a-z -]+?)\s*\|")
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = row.match(line)
        if match:
            variable, output, kind = match.groups()
            assert variable not in rows, f"{variable} appears twice in the docs table"
            rows[variable] = (output.strip("`"), kind)
    return rows


# ---------------------------------------------------------------------------------------------
# Code contract <-> mapping
# ---------------------------------------------------------------------------------------------


def test_every_variable_the_production_deployment_reads_is_produced_by_an_output() -> None:
    produced = plain_mapping().keys() | secret_mapping().keys()
    missing = sorted(NEEDED_IN_PROD - produced)
    assert missing == [], (
        f"declared in lakehouse_dagster.deployment, needed in prod, but no output: {missing}"
    )


def test_the_mapping_names_no_variable_the_code_does_not_declare() -> None:
    produced = plain_mapping().keys() | secret_mapping().keys()
    assert sorted(produced - DECLARED.keys()) == []


def test_secret_variables_are_never_plain_outputs() -> None:
    assert plain_mapping().keys() & secret_mapping().keys() == set()
    code_secrets = {name for name, variable in DECLARED.items() if variable.secret}
    assert code_secrets <= secret_mapping().keys(), "a variable the code marks secret must come from a secret"
    for name, output in secret_mapping().items():
        assert output.endswith("_secret_arn"), (
            f"{name}: the output must be the ARN of a secret, not its value"
        )


def test_prod_values_follow_the_layout_contract() -> None:
    wiring = {key: text(value) for key, value in root_module().locals["wiring"].items()}
    mapping = plain_mapping()
    assert wiring[mapping["LAKEHOUSE_DEPLOYMENT"]] == Deployment.PROD.value
    for variable, zone in [
        ("LAKEHOUSE_ROOT_BRONZE", "bronze"),
        ("LAKEHOUSE_ROOT_SILVER", "silver"),
        ("LAKEHOUSE_ROOT_GOLD", "gold"),
        ("LAKEHOUSE_LANDING", "landing"),
    ]:
        assert wiring[mapping[variable]] == f's3://${{module.lake_storage.bucket_names["{zone}"]}}', variable
    assert wiring[mapping["LAKEHOUSE_ROOT"]].startswith('s3://${module.lake_storage.bucket_names["silver"]}/')
    assert wiring[mapping["AWS_ROLE_ARN"]] == "module.iam.dagster_role_arn"
    assert wiring[mapping["LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID"]].endswith(".cluster_policy_id")
    assert wiring[mapping["LAKEHOUSE_UNIT_RUNNER"]] == "databricks"
    assert wiring[mapping["LAKEHOUSE_DATABRICKS_VOLUME"]] == "module.databricks_workspace.pipes_volume_path"
    assert (
        wiring[mapping["LAKEHOUSE_DATABRICKS_ARTIFACTS"]]
        == "module.databricks_workspace.artifacts_volume_path"
    )
    assert wiring[mapping["LAKEHOUSE_DATABRICKS_CLUSTER_TAGS"]] == (
        "jsonencode(module.databricks_workspace.cluster_tags)"
    ), "the tags the cluster policy fixes"
    assert wiring[mapping["LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN"]].endswith(".instance_profile_arn")
    for variable in ("LAKEHOUSE_DATABRICKS_MIN_WORKERS", "LAKEHOUSE_DATABRICKS_MAX_WORKERS"):
        assert wiring[mapping[variable]].startswith("tostring("), f"{variable}: env values are strings"


def test_the_pipes_volumes_are_in_the_ops_schema_of_the_catalog() -> None:
    from .terraform_config import child_module

    databricks = child_module("databricks_workspace")
    (volumes,) = databricks.resources("databricks_volume").values()
    assert text(volumes.get("schema_name")) == 'databricks_schema.layer["ops"].name'
    assert text(volumes.get("catalog_name")) == "databricks_catalog.lakehouse.name"
    assert text(volumes.get("volume_type")) == "MANAGED"
    assert set(volumes.get("for_each")) == {"pipes", "artifacts"}


# ---------------------------------------------------------------------------------------------
# Mapping <-> outputs: one output per variable, every output wired
# ---------------------------------------------------------------------------------------------


def test_outputs_map_one_to_one_onto_the_wiring() -> None:
    outputs = root_module().outputs
    wiring = set(root_module().locals["wiring"])
    mapped = list(plain_mapping().values()) + list(secret_mapping().values())
    assert len(mapped) == len(set(mapped)), "two variables share one output"
    assert set(mapped) == wiring, "every wiring value must be mapped to exactly one variable"
    assert set(outputs) - AGGREGATE_OUTPUTS == wiring, "every output must be used by the wiring mapping"
    for name in wiring:
        assert text(outputs[name].get("value")) == f"local.wiring.{name}", f"output {name}"


def test_aggregate_outputs_are_built_from_the_mapping() -> None:
    outputs = root_module().outputs
    assert text(outputs["dagster_environment"].get("value")) == (
        "{for name, output_name in local.dagster_env_outputs : name => local.wiring[output_name]}"
    )
    assert text(outputs["dagster_secret_environment"].get("value")) == (
        "{for name, output_name in local.dagster_secret_env_outputs : name => local.wiring[output_name]}"
    )


def test_docs_table_matches_the_mapping_and_accounts_for_every_declared_variable() -> None:
    rows = docs_mapping()
    expected = {name: (output, "plain") for name, output in plain_mapping().items()}
    expected |= {name: (output, "secret") for name, output in secret_mapping().items()}
    documented = {name: row for name, row in rows.items() if row[0] != NOT_FROM_TERRAFORM}
    assert documented == expected, "docs/infrastructure.md mapping table differs from infra/dagster_env.tf"
    left_alone = {name for name, row in rows.items() if row[0] == NOT_FROM_TERRAFORM}
    assert left_alone & NEEDED_IN_PROD == set(), "a variable needed in prod cannot be left out of Terraform"
    assert set(rows) == DECLARED.keys(), "every declared variable must have a row in the docs table"


# ---------------------------------------------------------------------------------------------
# render_dagster_env.py
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_dagster_env", RENDER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_outputs() -> dict[str, Any]:
    """What `terraform output -json` prints after an apply, with made-up values."""
    plain = {name: f"value-of-{output}" for name, output in plain_mapping().items()}
    plain["LAKEHOUSE_DEPLOYMENT"] = "prod"
    secrets = {
        name: f"arn:aws:secretsmanager:eu-west-1:111122223333:secret:{name}" for name in secret_mapping()
    }
    return {
        "dagster_environment": {"sensitive": False, "type": ["map", "string"], "value": plain},
        "dagster_secret_environment": {"sensitive": False, "type": ["map", "string"], "value": secrets},
    }


def test_render_writes_every_variable(render_module: ModuleType) -> None:
    lines = render_module.render(fake_outputs(), secrets="reference", environ={})
    written = {line.split("=", 1)[0] for line in lines if not line.startswith("#")}
    assert written == plain_mapping().keys()
    referenced = {
        line.split(":")[0].removeprefix("# ") for line in lines if line.startswith("# ") and "secret" in line
    }
    assert secret_mapping().keys() <= referenced


def test_render_takes_secret_values_from_the_environment(render_module: ModuleType, monkeypatch) -> None:
    environ = {name: f"secret-{name}" for name in secret_mapping()}
    lines = render_module.render(fake_outputs(), secrets="env", environ=environ)
    for name in secret_mapping():
        assert f"{name}=secret-{name}" in lines
    # OAuth or a token: the secret that is not used is optional, and left out.
    del environ["DATABRICKS_TOKEN"]
    lines = render_module.render(fake_outputs(), secrets="env", environ=environ)
    assert not any(line.startswith("DATABRICKS_TOKEN=") for line in lines)
    assert any(line.startswith("# DATABRICKS_TOKEN: optional secret, not set") for line in lines)
    # A secret the code requires in prod must have its value.
    required = tuple(
        dataclasses.replace(v, required_in=frozenset({Deployment.PROD}))
        if v.name == "DATABRICKS_TOKEN"
        else v
        for v in ENVIRONMENT_VARIABLES
    )
    monkeypatch.setattr(render_module, "ENVIRONMENT_VARIABLES", required)
    with pytest.raises(render_module.RenderError, match="DATABRICKS_TOKEN"):
        render_module.render(fake_outputs(), secrets="env", environ=environ)


@pytest.mark.parametrize(
    ("unset", "error"),
    [
        ("LAKEHOUSE_SLACK_TOKEN", "LAKEHOUSE_SLACK_CHANNEL is set"),
        (None, "both DATABRICKS_TOKEN and DATABRICKS_CLIENT_ID"),
        ("DATABRICKS_CLIENT_SECRET", "both DATABRICKS_TOKEN and DATABRICKS_CLIENT_ID"),
    ],
)
def test_render_refuses_values_that_break_a_pair_the_code_checks(
    render_module: ModuleType, unset: str | None, error: str
) -> None:
    """What the deployment would refuse at load is refused when the file is written."""
    outputs = fake_outputs()
    outputs["dagster_environment"]["value"]["LAKEHOUSE_UNIT_RUNNER"] = "databricks"
    environ = {name: f"secret-{name}" for name in secret_mapping() if name != unset}
    with pytest.raises(render_module.RenderError, match=error):
        render_module.render(outputs, secrets="env", environ=environ)
    del environ["DATABRICKS_TOKEN"]
    environ.setdefault("DATABRICKS_CLIENT_SECRET", "secret")
    environ.setdefault("LAKEHOUSE_SLACK_TOKEN", "secret")
    assert render_module.render(outputs, secrets="env", environ=environ)


def test_render_accepts_an_empty_optional_value_and_leaves_it_out(render_module: ModuleType) -> None:
    outputs = fake_outputs()
    outputs["dagster_environment"]["value"]["LAKEHOUSE_DATABRICKS_CLUSTER_ID"] = ""
    lines = render_module.render(outputs, secrets="reference", environ={})
    assert not any(line.startswith("LAKEHOUSE_DATABRICKS_CLUSTER_ID") for line in lines)
    assert "LAKEHOUSE_DATABRICKS_COMPUTE=value-of-databricks_compute" in lines


@pytest.mark.parametrize("variable", sorted(NEEDED_IN_PROD))
def test_render_refuses_when_a_needed_variable_is_missing(render_module: ModuleType, variable: str) -> None:
    outputs = fake_outputs()
    for output in AGGREGATE_OUTPUTS:
        outputs[output]["value"].pop(variable, None)
    with pytest.raises(render_module.RenderError, match=variable):
        render_module.render(outputs, secrets="reference", environ={})


def test_render_refuses_undeclared_variables_and_a_wrong_deployment(render_module: ModuleType) -> None:
    outputs = fake_outputs()
    outputs["dagster_environment"]["value"]["LAKEHOUSE_NOT_DECLARED"] = "x"
    with pytest.raises(render_module.RenderError, match="LAKEHOUSE_NOT_DECLARED"):
        render_module.render(outputs, secrets="reference", environ={})
    outputs = fake_outputs()
    outputs["dagster_environment"]["value"]["LAKEHOUSE_DEPLOYMENT"] = "local"
    with pytest.raises(render_module.RenderError, match="LAKEHOUSE_DEPLOYMENT"):
        render_module.render(outputs, secrets="reference", environ={})


def test_render_command_line(tmp_path: Path) -> None:
    complete = tmp_path / "outputs.json"
    complete.write_text(json.dumps(fake_outputs()), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(RENDER_SCRIPT), "-"],
        input=complete.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "LAKEHOUSE_DEPLOYMENT=prod" in result.stdout.splitlines()

    broken = fake_outputs()
    del broken["dagster_environment"]["value"]["AWS_ROLE_ARN"]
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps(broken), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(RENDER_SCRIPT), str(incomplete)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "AWS_ROLE_ARN" in result.stderr and result.stdout == ""


# ---------------------------------------------------------------------------------------------
# Production dagster.yaml
# ---------------------------------------------------------------------------------------------

PRODUCTION_YAML = INFRA_DIR / "dagster" / "dagster.yaml"


def test_production_dagster_yaml_is_a_valid_instance_config() -> None:
    from dagster._core.instance.config import dagster_instance_config

    # Validates the schema and the concurrency settings (runs and pools) together.
    config, _ = dagster_instance_config(str(PRODUCTION_YAML.parent), PRODUCTION_YAML.name)
    assert "run_coordinator" not in config, (
        "limits live under concurrency:, with the default queued coordinator"
    )


def test_production_dagster_yaml_uses_postgres_from_env_and_limits_writers_by_pool() -> None:
    config = yaml.safe_load(PRODUCTION_YAML.read_text(encoding="utf-8"))
    postgres = config["storage"]["postgres"]["postgres_db"]
    assert {key: value for key, value in postgres.items()} == {
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "port": {"env": "DAGSTER_PG_PORT"},
    }
    runs = config["concurrency"]["runs"]
    assert "tag_concurrency_limits" not in runs, "limits belong to the assets' pools, not to run tags"
    assert runs["max_concurrent_runs"] >= 2
    assert config["concurrency"]["pools"]["default_limit"] == 1, "one writer per table"
    assert config["telemetry"] == {"enabled": False}
