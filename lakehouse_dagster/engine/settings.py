"""Engine settings, free of Spark and Dagster imports."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EngineMode(StrEnum):
    """How a Spark session is made."""

    #: A Sail server in this process (local and tests): no JVM, no cluster.
    EMBEDDED = "embedded"
    #: Any Spark Connect server: Sail, Spark 4 with Delta, Databricks.
    REMOTE = "remote"
    #: Open-source Spark in this process's JVM, with delta-spark (EMR, Kubernetes, self-hosted).
    CLASSIC_DELTA = "classic_delta"


@dataclass(frozen=True)
class EngineSettings:
    """How to reach Spark: the mode, the Connect URL of ``remote``, the master of ``classic_delta``."""

    remote_url: str | None = None
    mode: EngineMode | None = None
    master: str = "local[*]"

    def __post_init__(self) -> None:
        if self.mode is None:
            object.__setattr__(self, "mode", EngineMode.REMOTE if self.remote_url else EngineMode.EMBEDDED)
        if self.mode is EngineMode.REMOTE and not self.remote_url:
            raise ValueError("mode 'remote' needs a Spark Connect URL (remote_url)")
        if self.remote_url is not None and not self.remote_url.startswith("sc://"):
            raise ValueError(f"a Spark Connect URL starts with sc://, got {self.remote_url!r}")
