"""checkov over infra/: no failed check, and every skip reviewed.

checkov's dependencies clash with the project's pins, so it lives in its own virtualenv:
``.venv-checkov`` at the repository root (created by the Makefile), or the executable named by
``CHECKOV_BIN``. One checkov run (a few seconds) serves every test of this module.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .terraform_config import INFRA_DIR, REPO_ROOT

CHECKOV_VERSION = "3.3.30"
SETUP_HINT = (
    "python3 -m venv .venv-checkov && .venv-checkov/bin/pip install"
    f" -c infra/checkov-constraints.txt checkov=={CHECKOV_VERSION}"
    " (or point CHECKOV_BIN at a checkov executable)"
)

# Checks skipped inline with a reason (#checkov:skip=ID:reason). A new skip must be added here too,
# so that it is reviewed as a change of this test.
REVIEWED_SKIPS = {
    "CKV_AWS_144": "no cross-region replication (a per-environment DR decision)",
    "CKV2_AWS_62": "only the landing bucket emits events",
    "CKV2_AWS_57": "deploy-time secrets are minted by Databricks (and Slack), not rotatable by a Lambda",
    "CKV_AWS_109": "KMS key policies: Resource '*' is the key itself",
    "CKV_AWS_111": "KMS key policies, and the Databricks cross-account policy's non-resource EC2 actions",
    "CKV_AWS_356": "KMS key policies, the Databricks cross-account policy's non-resource EC2 actions, and "
    "cloudwatch:PutMetricData (no resource-level permission; limited to one namespace by condition)",
}
MIN_REASON_LENGTH = 40


def checkov_executable() -> Path:
    configured = os.environ.get("CHECKOV_BIN")
    return Path(configured) if configured else REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    executable = checkov_executable()
    if not executable.is_file():
        pytest.fail(f"checkov not found at {executable}; create it with: {SETUP_HINT}")
    result = subprocess.run(
        [
            str(executable),
            "--directory",
            str(INFRA_DIR),
            "--framework",
            "terraform",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
        timeout=600,
        check=False,
    )
    assert result.returncode in (0, 1), (
        f"checkov crashed (exit {result.returncode}):\n{result.stderr[-3000:]}"
    )
    parsed = json.loads(result.stdout)
    assert isinstance(parsed, dict), "expected one report (the terraform framework only)"
    return parsed


def test_checkov_is_the_pinned_version(report: dict[str, Any]) -> None:
    assert report["summary"]["checkov_version"] == CHECKOV_VERSION, f"reinstall: {SETUP_HINT}"


def test_checkov_parsed_every_file(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 100, "checkov saw fewer resources than infra/ defines"
    assert summary["passed"] > 0


def test_checkov_finds_no_failed_check(report: dict[str, Any]) -> None:
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert failed == [], "fix these or skip them inline with a reason:\n" + "\n".join(failed)


def test_every_skip_is_reviewed_and_justified(report: dict[str, Any]) -> None:
    for check in report["results"]["skipped_checks"]:
        where = f"{check['check_id']} on {check['resource']}"
        assert check["check_id"] in REVIEWED_SKIPS, f"unreviewed skip: {where}"
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) >= MIN_REASON_LENGTH, (
            f"{where}: give a reason a reviewer can check, got {reason!r}"
        )
