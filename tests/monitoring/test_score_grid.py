"""Score drift is measured on the score file's grid: the published (4-decimal) probabilities of the very population
the reference was built on show no drift. Open leads mostly score below 0.001, where rounding moves whole deciles."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.monitoring.drift import reference_profile, score_drift
from leadscore.scoring.score import P_DECIMALS, published_probability
from leadscore.settings import load_settings


def _population(n: int = 20_000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    # The sandbox's open leads: most far from applying, a thin tail of movers.
    scores = np.exp(rng.normal(np.log(0.0006), 1.3, n)).clip(max=0.9)
    features = pd.DataFrame({"email_sent": rng.poisson(10, n).astype(float)})
    return features, scores


def test_published_probability_is_the_file_grid():
    p = np.array([0.00004, 0.00005, 0.123449, 0.99996, 1.0, 0.0])
    out = published_probability(p)
    assert P_DECIMALS == 4
    assert list(out) == [0.0, 0.0001, 0.1234, 1.0, 1.0, 0.0] or list(out) == [0.0, 0.0, 0.1234, 1.0, 1.0, 0.0]
    assert np.array_equal(out, np.round(p, 4))


def test_the_reference_population_itself_shows_no_score_drift_on_the_file_grid():
    features, scores = _population()
    warn = load_settings().monitoring.score_psi_warn if hasattr(load_settings(), "monitoring") else 0.10
    on_grid = reference_profile(features, published_probability(scores))
    assert score_drift(on_grid, published_probability(scores))["psi"] < 0.01 < warn
    # What the unrounded reference did: the same week, unchanged, looked like drift where the file grid shows none.
    unrounded = reference_profile(features, scores)
    assert score_drift(unrounded, published_probability(scores))["psi"] > 0.02
