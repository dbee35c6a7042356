"""Engine settings, free of Spark and Dagster imports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSettings:
    """How to reach Spark. ``remote_url`` unset means an embedded Sail server."""

    remote_url: str | None = None

    def __post_init__(self) -> None:
        if self.remote_url is not None and not self.remote_url.startswith("sc://"):
            raise ValueError(f"a Spark Connect URL starts with sc://, got {self.remote_url!r}")
