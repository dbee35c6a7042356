"""The MLflow seam as a Dagster resource: a local (or any) tracking server, or a Databricks
workspace with Unity Catalog models. The unit runner hands its settings to the units."""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg

from lakehouse_dagster.ml.settings import (
    DATABRICKS_EXPERIMENT,
    DEFAULT_EXPERIMENT,
    UNITY_CATALOG_REGISTRY,
    MlflowSettings,
)


class MlflowResource(dg.ConfigurableResource, ABC):
    """Where the units track runs and register models."""

    @abstractmethod
    def settings(self) -> MlflowSettings: ...


class LocalMlflow(MlflowResource):
    """A tracking server (and its registry) by URI: by default the project-local SQLite store
    (``make mlflow-ui``); any other server, a Databricks workspace's own registry included."""

    tracking_uri: str
    artifact_location: str | None = None
    experiment: str = DEFAULT_EXPERIMENT

    def settings(self) -> MlflowSettings:
        return MlflowSettings(
            self.tracking_uri, self.tracking_uri, self.experiment, artifact_location=self.artifact_location
        )


class DatabricksMlflow(MlflowResource):
    """The workspace's tracking server; models in Unity Catalog as ``<catalog>.<uc_schema>.<model>``.
    Credentials come from the Databricks SDK's chain (``DATABRICKS_HOST`` and a token or OAuth)."""

    catalog: str
    uc_schema: str = "ml"
    experiment: str = DATABRICKS_EXPERIMENT

    def settings(self) -> MlflowSettings:
        return MlflowSettings.databricks(self.catalog, self.uc_schema, self.experiment)


def mlflow_resource(settings: MlflowSettings) -> MlflowResource:
    """The resource that gives back ``settings``."""
    if settings.registry_uri == UNITY_CATALOG_REGISTRY:
        catalog, schema, _ = settings.model_prefix.split(".")
        return DatabricksMlflow(catalog=catalog, uc_schema=schema, experiment=settings.experiment)
    return LocalMlflow(
        tracking_uri=settings.tracking_uri,
        artifact_location=settings.artifact_location,
        experiment=settings.experiment,
    )
