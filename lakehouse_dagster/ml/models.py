"""The MLflow seam inside a unit: track a training run, register a version, move the
``champion`` alias, load a version. The same code against the project-local SQLite store and
a Databricks workspace with Unity Catalog models; only ``MlflowSettings`` differ."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lakehouse_dagster.ml.settings import MlflowSettings

#: The alias of the version that scores.
CHAMPION = "champion"
#: MLflow's tracking and registry URIs are process-wide: one unit at a time talks to it.
_LOCK = threading.RLock()


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run_id: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class ModelStore:
    """One registry and experiment (``settings``), used by a unit's build."""

    def __init__(self, settings: MlflowSettings) -> None:
        self.settings = settings

    @contextmanager
    def _mlflow(self) -> Iterator[Any]:
        import mlflow

        folder = self.settings.local_folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        with _LOCK:
            mlflow.set_tracking_uri(self.settings.tracking_uri)
            mlflow.set_registry_uri(self.settings.registry_uri)
            yield mlflow

    def _client(self, mlflow: Any) -> Any:
        return mlflow.MlflowClient(self.settings.tracking_uri, self.settings.registry_uri)

    def _experiment_id(self, mlflow: Any) -> str:
        client = self._client(mlflow)
        experiment = client.get_experiment_by_name(self.settings.experiment)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(
            self.settings.experiment, artifact_location=self.settings.artifact_location
        )

    def champion(self, model: str) -> ModelVersion | None:
        """The version the ``champion`` alias points at; None before the first promotion."""
        from mlflow.exceptions import MlflowException

        name = self.settings.model_name(model)
        with self._mlflow() as mlflow:
            try:
                found = self._client(mlflow).get_model_version_by_alias(name, CHAMPION)
            except MlflowException as error:
                if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                    return None
                raise
        return ModelVersion(name, int(found.version), found.run_id)

    def load(self, version: ModelVersion) -> Any:
        with self._mlflow() as mlflow:
            return mlflow.sklearn.load_model(version.uri)

    def log_and_register(
        self,
        model: str,
        estimator: Any,
        *,
        run_name: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        features: Sequence[str],
        example: pd.DataFrame,
        tags: Mapping[str, str],
        documents: Mapping[str, Any],
    ) -> ModelVersion:
        """One tracked run (params, metrics, tags, the feature list and ``documents`` as JSON, the
        model with its signature), and a new registered version of ``model``."""
        import sklearn
        import skops
        from mlflow.models import infer_signature

        name = self.settings.model_name(model)
        with self._mlflow() as mlflow:
            with mlflow.start_run(experiment_id=self._experiment_id(mlflow), run_name=run_name) as run:
                mlflow.log_params(dict(params))
                mlflow.log_metrics(dict(metrics))
                mlflow.set_tags(dict(tags))
                mlflow.log_dict({"features": list(features)}, "features.json")
                for file_name, document in documents.items():
                    mlflow.log_dict(document, file_name)
                signature = infer_signature(example, estimator.predict_proba(example)[:, 1])
                logged = mlflow.sklearn.log_model(
                    estimator,
                    name="model",
                    signature=signature,
                    input_example=example.head(5),
                    registered_model_name=name,
                    # Pinned here: inferring the requirements imports the world and takes seconds.
                    pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"],
                )
            return ModelVersion(name, int(logged.registered_model_version), run.info.run_id)

    def promote(self, version: ModelVersion) -> None:
        with self._mlflow() as mlflow:
            self._client(mlflow).set_registered_model_alias(version.name, CHAMPION, str(version.version))
