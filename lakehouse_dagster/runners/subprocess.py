"""Run each unit in a process of its own: ``python -m lakehouse_dagster.units --request -``.

The request goes to the child on its stdin (a command-line argument is limited to 128 KiB on
Linux, less than a run of many named files). The child reads the deployment from the same
environment, starts its own engine session, and prints its report as the last line of
stdout; its log lines are forwarded to the run's log. A report counts only if its exit status
agrees with it (0: succeeded, 1: failed): a child that dies without one (killed, out of memory, a
crash in native code), or after printing something that looks like one, fails the step with its
exit status and last log lines. Terminating the run, or its timeout, kills the child.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import fields

import dagster as dg

from lakehouse_dagster.declarations.table import DEFAULT_REGISTRY, Table
from lakehouse_dagster.deployment import process_environment
from lakehouse_dagster.runners.base import UnitRunner
from lakehouse_dagster.units.report import UnitError, UnitResult
from lakehouse_dagster.units.request import UnitRequest

_TAIL = 30
#: How long the pipes are read after the child exited (what it left behind may keep them open).
_DRAIN_SECONDS = 5.0


class SubprocessRunner(UnitRunner):
    """Runs each unit in a new Python process (isolation at the cost of an engine start per unit)."""

    timeout_seconds: int = 6 * 3600
    #: The registry the child finds the table in, as ``module:attribute``.
    registry: str = DEFAULT_REGISTRY

    def run(self, context: dg.AssetExecutionContext, table: Table, request: UnitRequest) -> UnitResult:
        command = [
            *[sys.executable, "-m", "lakehouse_dagster.units"],
            *["--registry", self.registry, "--request", "-"],
        ]
        # The request as the child's stdin: an unnamed file (gone when closed), so writing it
        # cannot block on a child that has not read it yet.
        with tempfile.TemporaryFile() as stdin:
            stdin.write(request.to_json().encode())
            stdin.seek(0)
            child = subprocess.Popen(
                command,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",  # a log line that is not UTF-8 is still a line
                env=process_environment(),
            )
        # One reader per pipe: stderr forwarded to the run's log line by line (its last lines
        # kept for a child that dies), stdout kept for the report.
        tail: deque[str] = deque(maxlen=_TAIL)
        stdout: list[str] = []
        readers = [
            threading.Thread(target=_forward, args=(child.stderr, context.log, tail), daemon=True),
            threading.Thread(target=_collect, args=(child.stdout, stdout), daemon=True),
        ]
        name = str(table.name)
        try:
            for reader in readers:
                reader.start()
            try:
                child.wait(timeout=self.timeout_seconds)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                message = (
                    f"{name}: the unit ran longer than the runner's timeout_seconds "
                    f"({self.timeout_seconds} s); its process was killed"
                )
                return UnitResult(name, error=UnitError("Timeout", message, "\n".join(tail)))
            # A process the child left behind may hold the pipes open: read what is there, and
            # do not wait for it beyond a moment (the child's report is a line it printed).
            drained_by = time.monotonic() + _DRAIN_SECONDS
            for reader in readers:
                reader.join(timeout=max(0.0, drained_by - time.monotonic()))
        except BaseException:
            child.kill()  # the run was terminated: the unit must not outlive it
            child.wait()
            raise
        report = _report("".join(stdout), name)
        status = child.returncode
        if report is not None and status == (0 if report.error is None else 1):
            return report
        said = "" if report is None else f" (its report says it {'failed' if report.error else 'succeeded'})"
        message = f"the unit's process exited with status {status} without a report it agrees with{said}"
        return UnitResult(name, error=UnitError("ProcessDied", message, "\n".join(tail)))


#: Every field a report prints (``UnitResult.to_json``): a log line of JSON is not a report.
_REPORT_FIELDS = frozenset(field.name for field in fields(UnitResult))


def _report(stdout: str, table: str) -> UnitResult | None:
    """The last line of ``stdout`` that is the report of ``table``, if any."""
    for line in reversed(stdout.splitlines()):
        try:
            raw = json.loads(line) if line.startswith("{") else None
            if isinstance(raw, dict) and raw.keys() >= _REPORT_FIELDS and raw["table"] == table:
                return UnitResult.from_dict(raw)
        except (ValueError, TypeError, KeyError):
            continue
    return None


def _forward(stream, log, tail: deque[str]) -> None:
    with stream:
        for line in stream:
            line = line.rstrip()
            tail.append(line)
            log.info(line)


def _collect(stream, into: list[str]) -> None:
    """What the child writes, as it comes: ``into`` ends with what is not a whole line yet (a
    process the child left behind may hold the pipe open, so the end of the stream may never
    come, and a report written without its newline must still be read)."""
    into.append("")
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character split across reads
    with stream:
        while chunk := stream.buffer.read1(65536):
            into[-1] += decoder.decode(chunk)
            if "\n" in into[-1]:
                complete, _, rest = into[-1].rpartition("\n")
                into[-1:] = [complete + "\n", rest]
