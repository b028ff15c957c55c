"""The quality benchmark's best observable forecast sits between the ceiling (which knows z) and the forecast from
source, college and age alone, and its posterior mean of z tracks the true z."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from bench.observable_ceiling import lifetime_share, observable_posterior, z_r_squared
from bench.quality import ceiling_without_z, sandbox_tables
from leadscore.model.training_set import build_landmarks
from leadscore.settings import Settings
from leadscore.tasks.ceiling import attach_truth


@pytest.fixture(scope="module")
def landmark_rows(tmp_path_factory):
    settings = Settings()
    leads, interactions, (truth, end) = sandbox_tables(4000, 5, 0.0, tmp_path_factory.mktemp("observable"))
    rows = build_landmarks(leads, interactions, end, settings.landmark_days, settings.training_window_days, 30)
    rows = attach_truth(rows, truth, 30)
    return rows[rows["label"].notna()], truth


def test_lifetime_share_runs_from_zero_to_one():
    s = np.array([0.0, 10.0, 365.0, 2000.0])
    share = lifetime_share(s, 0.5, 20.0, 365.0)
    assert share[0] == 0.0 and np.all(np.diff(share) > 0) and share[-1] == pytest.approx(1.0)


def test_observable_forecast_lies_between_the_ceiling_and_no_observation(landmark_rows):
    rows, truth = landmark_rows
    y = rows["label"].to_numpy(float)
    p_obs, z_mean = observable_posterior(rows, truth, 30)
    assert np.all((p_obs > 0) & (p_obs < 1))
    ceiling = log_loss(y, rows["true_p"].to_numpy(float))
    observable = log_loss(y, p_obs)
    blind = log_loss(y, ceiling_without_z(rows, truth, 30))
    assert ceiling < observable < blind
    assert 0.15 < z_r_squared(rows, truth, z_mean) < 0.6


def test_a_lead_missing_from_the_truth_is_refused(landmark_rows):
    rows, truth = landmark_rows
    head = rows.head(50)
    gone = head["person_guid"].iloc[0].lower()
    missing = int((head["person_guid"].str.lower() == gone).sum())
    with pytest.raises(KeyError, match=f"^'{missing} landmark rows have no truth row'$"):
        observable_posterior(head, truth[truth["person_guid"] != gone], 30)
