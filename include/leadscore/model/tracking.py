"""The MLflow tracking and registry client LeadScore uses, and its experiment.

Tracking uses ``settings.tracking_uri`` (a SQLite store by default) and the experiment ``lead_propensity`` created
with ``settings.artifact_location``. The serving model is the version with alias ``champion`` (MLflow aliases, not
the deprecated stages).
"""

from __future__ import annotations

from pathlib import Path

from leadscore.settings import Settings

EXPERIMENT = "lead_propensity"
ALIAS = "champion"


def mlflow_client(settings: Settings):
    """An ``MlflowClient`` of ``settings.tracking_uri`` (tracking and registry), set as mlflow's global URIs too; the
    folder of a SQLite store is created."""
    import mlflow
    from mlflow import MlflowClient

    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(settings: Settings) -> str:
    """The id of experiment ``lead_propensity``, created with ``settings.artifact_location`` if missing."""
    client = mlflow_client(settings)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(EXPERIMENT, artifact_location=settings.artifact_location)
