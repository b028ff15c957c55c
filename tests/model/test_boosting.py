"""The LightGBM tuning: every grid point is fitted and the same data gives the same pick, whatever the machine's load."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from leadscore.model import boosting


def _data(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": pd.Categorical(rng.choice(list("xyz"), n))}
    )
    logit = -2.0 + 1.2 * x["a"] - 0.8 * x["b"] ** 2 + (x["c"] == "x") * 0.7
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)


def test_grid_walks_every_point_and_repeats_exactly(monkeypatch):
    x, y = _data()
    fit = np.arange(len(y)) < 3000
    # A slow clock must not cut the grid short: the pick depends on the data only.
    ticks = itertools.count(0.0, 1e6)
    monkeypatch.setattr(boosting.time, "perf_counter", lambda: next(ticks))
    first = boosting.tune_and_fit(x, y, fit, ~fit, seed=3)
    second = boosting.tune_and_fit(x, y, fit, ~fit, seed=3)
    assert len(first.results) == len(boosting.GRID)
    assert [r["num_leaves"] for r in first.results] == [p["num_leaves"] for p in boosting.GRID]
    assert (first.params, first.rounds) == (second.params, second.rounds)
    best = min(first.results, key=lambda r: r["valid_log_loss"])
    assert first.params["num_leaves"] == best["num_leaves"] and first.rounds == max(1, best["rounds"])
    np.testing.assert_array_equal(first.booster.predict(x), second.booster.predict(x))


def test_refit_with_given_params_skips_the_search():
    x, y = _data(1500, seed=1)
    fit = np.arange(len(y)) < 1000
    tuned = boosting.tune_and_fit(x, y, fit, ~fit, params=dict(boosting.GRID[0]), rounds=17)
    assert tuned.results == [] and tuned.rounds == 17 and tuned.booster.num_trees() == 17
