"""Debian's Chromium for the browser tests, driven by Playwright (its own browser download is
blocked here): installed by the set-up script if missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SYSTEM_PACKAGES = Path(__file__).parents[1] / "scripts" / "system_packages.sh"
#: Where browser tests leave their screenshots (gitignored).
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium; installed by the set-up script if missing (Playwright's own browser
    download is not used)."""
    if shutil.which("chromium") is None:
        subprocess.run(["bash", str(SYSTEM_PACKAGES)], capture_output=True, check=False, timeout=900)
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Debian's chromium package is missing and could not be installed here (needs root and apt-get)"
        )
    return path
