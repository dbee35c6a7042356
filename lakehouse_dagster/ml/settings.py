"""Where models are tracked and registered: plain data, free of Dagster and of MLflow
(``deployment.py`` reads it from the environment; the MLflow resource carries it to the units)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: The tracking URI of a Databricks workspace, and its Unity Catalog model registry.
DATABRICKS_TRACKING = "databricks"
UNITY_CATALOG_REGISTRY = "databricks-uc"
#: The project-local store: SQLite tracking and registry, artifacts beside it (gitignored).
LOCAL_FOLDER = ".mlflow"
DEFAULT_EXPERIMENT = "lakehouse_dagster"
DATABRICKS_EXPERIMENT = "/Shared/lakehouse_dagster"


@dataclass(frozen=True)
class MlflowSettings:
    """An MLflow tracking server and model registry, the experiment runs go to, and the prefix of
    registered model names (``<catalog>.<schema>.`` in Unity Catalog)."""

    tracking_uri: str
    registry_uri: str
    experiment: str = DEFAULT_EXPERIMENT
    #: Where a new experiment stores its artifacts (the local store); the server decides if None.
    artifact_location: str | None = None
    #: Unity Catalog needs ``catalog.schema.model``; elsewhere the model's own name.
    model_prefix: str = ""

    def model_name(self, name: str) -> str:
        return f"{self.model_prefix}{name}"

    @classmethod
    def local(cls, folder: str | Path = LOCAL_FOLDER, experiment: str = DEFAULT_EXPERIMENT) -> MlflowSettings:
        """SQLite tracking and registry in ``folder``/mlflow.db, artifacts in ``folder``/artifacts."""
        folder = Path(folder).expanduser().resolve()
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        return cls(uri, uri, experiment, artifact_location=(folder / "artifacts").as_uri())

    @classmethod
    def databricks(
        cls, catalog: str | None, schema: str = "ml", experiment: str = DATABRICKS_EXPERIMENT
    ) -> MlflowSettings:
        """The workspace's tracking server, models in Unity Catalog as ``catalog.schema.<model>``;
        without a catalog, in the workspace's own model registry."""
        if not catalog:
            return cls(DATABRICKS_TRACKING, DATABRICKS_TRACKING, experiment)
        return cls(
            DATABRICKS_TRACKING, UNITY_CATALOG_REGISTRY, experiment, model_prefix=f"{catalog}.{schema}."
        )

    @property
    def local_folder(self) -> Path | None:
        """The folder of a SQLite store (created before the first run), else None."""
        if not self.tracking_uri.startswith("sqlite:///"):
            return None
        return Path(self.tracking_uri.removeprefix("sqlite:///")).parent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MlflowSettings:
        return cls(**raw)
