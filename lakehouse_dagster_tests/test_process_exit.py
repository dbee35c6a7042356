"""Processes that import the code location skip the cyclic collection at exit (gc.freeze)."""

from __future__ import annotations

import subprocess
import sys

CHECK_AT_EXIT = """
import atexit, gc
# Registered before the package's own handler, so it runs after it (atexit is last in, first out).
atexit.register(lambda: print("frozen" if gc.get_freeze_count() > 0 else "not frozen", flush=True))
import lakehouse_dagster
print("imported", gc.get_freeze_count(), flush=True)
"""


def test_importing_the_package_freezes_the_heap_only_when_the_process_exits() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK_AT_EXIT], capture_output=True, text=True, check=True)
    # Nothing is frozen while the process works (its garbage is still collected); all of it at exit.
    assert done.stdout.split("\n")[:2] == ["imported 0", "frozen"]


def test_installing_twice_registers_one_handler() -> None:
    script = (
        "import atexit, gc\n"
        "from lakehouse_dagster.process_exit import skip_collection_at_exit\n"
        "calls = []\n"
        "real = atexit.register\n"
        "atexit.register = lambda f, *a: calls.append(f) or real(f, *a)\n"
        "skip_collection_at_exit(); skip_collection_at_exit()\n"
        "print(len(calls))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"  # the package's import already installed it
