"""Shared pieces of the benchmarks: run one table's unit in its own process and measure it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

WORK = Path(__file__).parent / ".work"
#: The local Dagster instance's settings, as ``make run`` and ``make dev`` install them.
INSTANCE_SETTINGS = Path(__file__).parents[1] / "dagster.yaml"


@dataclass(frozen=True)
class Measurement:
    table: str
    wall_seconds: float
    peak_rss_mib: float


def fresh(root: Path) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


def run_process(label: str, arguments: list[str], env: dict[str, str] | None = None) -> Measurement:
    """Run ``python <arguments>``; its wall time and peak RSS.

    Keep the calling process small: a forked child's peak RSS counts the parent's pages it
    started with.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *arguments], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{label} failed:\n{process.stderr.read().decode()[-3000:]}")
    return Measurement(label, elapsed, usage.ru_maxrss / 1024)


def run_unit_process(table: str, root: Path, *arguments: str) -> Measurement:
    """Run ``python -m lakehouse_dagster.units <table>`` on an embedded engine in its own process."""
    return run_process(table, ["-m", "lakehouse_dagster.units", table, *arguments], project_env(root))


def project_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a local deployment on ``root`` with an embedded engine."""
    env = {**os.environ, "LAKEHOUSE_DEPLOYMENT": "local", "LAKEHOUSE_ROOT": str(root), **extra}
    env.pop("LAKEHOUSE_SPARK_REMOTE", None)
    return env


def materialize(label: str, root: Path, select: str, *arguments: str, **env: str) -> Measurement:
    """``dagster asset materialize`` of ``select``, as a user runs it, recorded in an instance
    under ``root`` configured as ``make run``'s (the project's ``dagster.yaml``); its wall time
    and peak RSS (the embedded engine runs inside the process)."""
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(INSTANCE_SETTINGS, home / "dagster.yaml")
    command = ["-m", "dagster", "asset", "materialize", "-m", "lakehouse_dagster.definitions"]
    command += ["--select", select, *arguments]
    return run_process(label, command, project_env(root, DAGSTER_HOME=str(home), **env))


def run_reference(label: str, script: str, *arguments: str) -> Measurement:
    """One of the hand-written reference builds in ``benchmarks/reference`` (needs the ``bench``
    extra: polars)."""
    return run_process(label, [str(Path(__file__).parent / "reference" / script), *arguments])


def print_measurements(measurements: list[Measurement]) -> None:
    print(f"{'asset':34} {'process wall s':>15} {'peak RSS MiB':>13}")
    for m in measurements:
        print(f"{m.table:34} {m.wall_seconds:15.2f} {m.peak_rss_mib:13.0f}")
    print(f"{'total':34} {sum(m.wall_seconds for m in measurements):15.2f}")
