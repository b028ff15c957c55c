"""Shared fixtures of the model tests: a small synthetic training set, a trained result, an isolated MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from leadscore.settings import Settings
from tests.model.synthetic import SyntheticTrainingSet, make_thin_history, make_training_set


@pytest.fixture(scope="session", autouse=True)
def _single_thread():
    # OpenMP/BLAS threads spin-wait badly when other test processes share the two cores; one thread is faster here.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def training_set() -> SyntheticTrainingSet:
    return make_training_set(n_leads=1200, seed=3, landmarks=(0, 3, 14, 60))


@pytest.fixture(scope="session")
def trained(training_set, tmp_path_factory):
    from leadscore.model.train import train_and_evaluate

    return train_and_evaluate(training_set, Settings(), out_dir=tmp_path_factory.mktemp("plots"))


@pytest.fixture(scope="session")
def mlflow_settings(tmp_path_factory) -> Settings:
    home: Path = tmp_path_factory.mktemp("mlhome")
    return Settings(home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}")


@pytest.fixture(scope="session")
def thin_trained(tmp_path_factory):
    """A thin history (12 months, no application in the first 5, 60 in all) trained with lowered minimums."""
    from leadscore.model.train import train_and_evaluate

    ts = make_thin_history(n_leads=1500, seed=1, months=12, quiet_months=5, applications=60)
    return ts, train_and_evaluate(ts, Settings(min_training_applications=40), out_dir=tmp_path_factory.mktemp("thin"))
