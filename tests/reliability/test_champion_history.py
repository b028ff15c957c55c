"""A backfilled week is scored by the champion it had: with two champions, re-scoring an earlier week writes the
byte-identical file it had, a later week gets the newer champion, and a week before the first champion fails."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import pytest

from leadscore.intervals import Interval
from leadscore.model import registry
from leadscore.settings import Settings
from leadscore.tasks import inference
from tests.reliability.conftest import WEEKS


def register(settings: Settings, model: Any, as_of: datetime, tmp: Path) -> str:
    """Log ``model`` as a new version with the training run's ``as_of`` param, as log_training_run does."""
    import mlflow
    import mlflow.pyfunc

    from leadscore.model.pyfunc import ARTIFACT_KEY, LeadPropensityPyfunc

    path = tmp / f"lead_model_{as_of:%Y%m%d}.joblib"
    joblib.dump(model, path)
    with mlflow.start_run(experiment_id=registry.ensure_experiment(settings)):
        mlflow.log_param("as_of", str(as_of))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=LeadPropensityPyfunc(),
            artifacts={ARTIFACT_KEY: str(path)},
            registered_model_name=settings.model_name,
            pip_requirements=["mlflow"],
        )
    return str(info.registered_model_version)


def files_of(settings: Settings, week: Interval) -> dict[str, str]:
    folder = settings.scores_dir / f"{week.end:%Y%m%d}"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.csv"))}


def test_backfill_reproduces_the_week_of_an_earlier_champion(pipeline: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(pipeline.settings.extracts_dir, home / "extracts")
    settings = pipeline.settings.replace(home=home, mlflow_tracking_uri="", max_tier_change_share=1.0)
    first = registry.load_champion(pipeline.settings).model
    # a second champion that scores differently: the same fit with another reference, so lead_score moves
    second = dataclasses.replace(first, reference_scores=first.reference_scores * 0.8)
    earlier, later = WEEKS

    v1 = register(settings, first, earlier.start, tmp_path)
    # The go-live week set by the operator (`champion --set 1 --from`): a first champion promoted before any file
    # otherwise serves every week, the catch-up included.
    registry.promote(v1, settings, reason="gate", effective=earlier.start)
    original = inference.score_week(settings, earlier)
    original_files = files_of(settings, earlier)
    original_manifest = Path(original["manifest"]).read_bytes()
    assert original["model_version"] == v1 and original_files

    v2 = register(settings, second, earlier.end, tmp_path)  # trained as of the week already scored ...
    event = registry.promote(v2, settings, reason="gate")
    assert event.effective_from == "2026-11-17T00:00:00"  # ... so it serves from the week after it
    assert inference.score_week(settings, later)["model_version"] == v2
    assert files_of(settings, later) != {}

    shutil.rmtree(settings.scores_dir / f"{earlier.end:%Y%m%d}")  # a backfill: the week's files are gone
    backfilled = inference.score_week(settings, earlier)
    assert backfilled["model_version"] == v1
    assert files_of(settings, earlier) == original_files  # byte-identical chunks
    assert Path(backfilled["manifest"]).read_bytes() == original_manifest

    before = Interval(datetime(2026, 10, 26), datetime(2026, 11, 2))
    with pytest.raises(registry.NoChampionForWeekError, match=r"week ending 2026-11-02.*from 2026-11-09"):
        inference.score_week(settings, before)

    # The check above could fail: had the second champion been recorded for that week, its file would differ.
    registry.promote(v2, settings, effective=earlier.end)
    assert inference.score_week(settings, earlier)["model_version"] == v2
    assert files_of(settings, earlier) != original_files
