"""Writing files into a test landing zone, with strictly increasing modification times."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

_clock = itertools.count(1_700_000_000)


def land(folder: Path, name: str, content: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    moment = next(_clock)
    os.utime(path, (moment, moment))
    return path


def csv_text(header: list[str], rows: list[list[object]]) -> str:
    lines = [",".join(header), *(",".join("" if v is None else str(v) for v in row) for row in rows)]
    return "\n".join(lines) + "\n"
