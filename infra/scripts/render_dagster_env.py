#!/usr/bin/env python3
"""Render the environment file of the production Dagster deployment from Terraform outputs.

    terraform -chdir=infra output -json | python infra/scripts/render_dagster_env.py - > dagster.env
    python infra/scripts/render_dagster_env.py tf-outputs.json --secrets env > dagster.env

Input: the JSON printed by ``terraform output -json``. Its ``dagster_environment`` output maps
variable names to values and ``dagster_secret_environment`` maps secret variables to the ARN of the
Secrets Manager secret that holds their value (see infra/dagster_env.tf).

Output: ``KEY=VALUE`` lines. Secret variables are handled by ``--secrets``:

- ``reference`` (default): a comment naming the secret's ARN, for platforms that inject secrets
  themselves (ECS ``secrets``/``valueFrom``, an External Secrets operator, ...);
- ``env``: the value is taken from this process's environment (e.g. exported by the deploy job
  after ``aws secretsmanager get-secret-value``) and written out.

The script refuses (exit status 2, naming the variable) when a variable that the code requires in
prod, or that is declared for a planned component, has no value; when a variable the code says comes
from Terraform has no output at all (an optional one may be empty: it is left out); when a variable
is not declared in ``lakehouse_dagster.deployment.ENVIRONMENT_VARIABLES``; or, with ``--secrets env``,
when the value of a secret the code requires is missing from the environment (an optional secret,
such as DATABRICKS_TOKEN next to OAuth, is then left out with a comment), or when the values break
a pair the code checks (a Slack channel without its token; both Databricks credentials, or neither).
The file is an env file (``docker --env-file``, ECS ``environmentFiles``): values are not quoted for
a shell.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from lakehouse_dagster.deployment import (  # noqa: E402
    ENVIRONMENT_VARIABLES,
    Deployment,
    SettingsError,
    check_companions,
)

PLAIN_OUTPUT = "dagster_environment"
SECRET_OUTPUT = "dagster_secret_environment"


class RenderError(Exception):
    """The outputs cannot make a complete, valid environment; the message names the variable."""


def expected_variables() -> list[str]:
    """Variables the production deployment must receive: required in prod, or planned for a component."""
    return [
        variable.name
        for variable in ENVIRONMENT_VARIABLES
        if Deployment.PROD in variable.required_in or variable.planned_for is not None
    ]


def wired_variables() -> list[str]:
    """Variables Terraform must produce an output for (possibly empty, where they are optional)."""
    return [variable.name for variable in ENVIRONMENT_VARIABLES if variable.terraform]


def _output_map(outputs: Mapping[str, Any], name: str) -> dict[str, str | None]:
    if name not in outputs:
        raise RenderError(f"terraform output {name!r} is missing: is this the infra/ root module's output?")
    value = outputs[name].get("value") if isinstance(outputs[name], Mapping) else None
    if not isinstance(value, Mapping):
        raise RenderError(f"terraform output {name!r} is not a map of variable name to value")
    return {str(key): None if item is None else str(item) for key, item in value.items()}


def render(outputs: Mapping[str, Any], *, secrets: str, environ: Mapping[str, str]) -> list[str]:
    """Return the lines of the env file for ``terraform output -json`` data, or raise RenderError."""
    plain = _output_map(outputs, PLAIN_OUTPUT)
    secret_arns = _output_map(outputs, SECRET_OUTPUT)

    declared = {variable.name for variable in ENVIRONMENT_VARIABLES}
    undeclared = sorted((plain.keys() | secret_arns.keys()) - declared)
    if undeclared:
        raise RenderError(f"not declared in lakehouse_dagster.deployment: {', '.join(undeclared)}")
    both = sorted(plain.keys() & secret_arns.keys())
    if both:
        raise RenderError(f"both plain and secret in the Terraform outputs: {', '.join(both)}")
    missing = [name for name in expected_variables() if not plain.get(name) and not secret_arns.get(name)]
    if missing:
        raise RenderError(f"required in production but produced by no output: {', '.join(missing)}")
    unwired = [name for name in wired_variables() if name not in plain and name not in secret_arns]
    if unwired:
        raise RenderError(f"produced by Terraform per the code, but no output holds: {', '.join(unwired)}")
    if plain.get("LAKEHOUSE_DEPLOYMENT") != Deployment.PROD.value:
        raise RenderError(f"LAKEHOUSE_DEPLOYMENT must be {Deployment.PROD.value!r} in production")

    lines = ["# Environment of the production Dagster deployment, rendered from `terraform output -json`."]
    for name in sorted(plain):
        value = plain[name]
        if not value:
            continue
        if "\n" in value:
            raise RenderError(f"{name} has a multi-line value, which an env file cannot hold")
        lines.append(f"{name}={value}")
    for name in sorted(secret_arns):
        arn = secret_arns[name]
        if secrets == "env":
            value = environ.get(name)
            if value:
                lines.append(f"{name}={value}")
            elif name in expected_variables():
                raise RenderError(f"{name} is a secret: export its value (Secrets Manager {arn}) first")
            else:
                lines.append(f"# {name}: optional secret, not set (Secrets Manager {arn})")
        else:
            lines.append(f"# {name}: secret, inject from Secrets Manager {arn}")
    if secrets == "env":  # every value is known: the pairs the code checks must hold
        rendered = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
        try:
            check_companions(rendered)
        except SettingsError as error:
            raise RenderError(str(error)) from None
    return lines


def main(argv: Sequence[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outputs", nargs="?", default="-", help="`terraform output -json` file, - for stdin")
    parser.add_argument(
        "--secrets",
        choices=("reference", "env"),
        default="reference",
        help="secrets as references to their Secrets Manager ARN (default), or values from the environment",
    )
    args = parser.parse_args(argv)

    text = stdin.read() if args.outputs == "-" else Path(args.outputs).read_text(encoding="utf-8")
    try:
        lines = render(json.loads(text), secrets=args.secrets, environ=os.environ)
    except (RenderError, json.JSONDecodeError) as error:
        print(f"render_dagster_env: {error}", file=sys.stderr)
        return 2
    stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
