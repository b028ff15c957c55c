"""The survival model: a penalized Cox proportional-hazards model on landmark rows (lifelines ``CoxPHFitter``; fits on
more than ``LIFELINES_MAX_ROWS`` rows use ``cox_newton``, the same fit vectorized).

Each landmark row is a lead still open at its landmark; time runs from the landmark (``duration``), so the rows are
left-truncated at the landmark and need no entry column. Lead age enters as a covariate (``days_as_lead``, log1p and
standardized like every count). Follow-up is censored at the horizon H: only the baseline cumulative hazard up to H
is needed for the score, and proportional hazards then only has to hold within H days.

Score: ``P(apply in (t, t+H] | open at t, x) = 1 - exp(-H0(H) * exp((x - m) . beta))``, computed with numpy.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter

from leadscore.model.cox_newton import fit_newton
from leadscore.model.fit_errors import CandidateFitError, describe_failure
from leadscore.model.preprocess import Preprocessor, linear_contributions

log = logging.getLogger(__name__)

DEFAULT_GRID: tuple[tuple[float, float], ...] = ((0.001, 0.0), (0.01, 0.0), (0.001, 0.5), (0.01, 0.5))
# lifelines' Newton steps are O(rows x covariates^2); the grid search fits on a row sample of this size at most.
GRID_MAX_ROWS = 60_000
FIT_OPTIONS = {"max_steps": 200, "precision": 1e-4, "r_precision": 1e-5}
# lifelines loops over rows in Python; above this many rows the vectorized fitter of cox_newton takes the fit (same
# objective and steps; it agrees with lifelines, see test_cox_newton). On 60,000 landmark rows it was 18x (L2) to 23x
# (elastic net) faster with coefficients equal to 1e-13, so the grid's sample and every larger fit use it; small
# sandboxes and the tests keep lifelines as the reference.
LIFELINES_MAX_ROWS = 50_000
EPS = 1e-12


@dataclass
class CoxModel:
    """A fitted penalized Cox model plus its preprocessing.

    Attributes:
        pre: the fitted preprocessing (design matrix).
        beta: coefficients per design column; ``center`` the centering lifelines used for the baseline.
        baseline_times, baseline_cumhaz: the Breslow baseline cumulative hazard (time from the landmark, days).
        summary: lifelines' coefficient table (coef, exp(coef), 95 % CI, p) indexed by design column.
        penalizer, l1_ratio: the chosen penalty; ``grid`` the validation log loss of every grid point.
    """

    pre: Preprocessor
    beta: np.ndarray
    center: np.ndarray
    baseline_times: np.ndarray
    baseline_cumhaz: np.ndarray
    horizon_days: int
    summary: pd.DataFrame
    penalizer: float
    l1_ratio: float
    grid: list[dict] = field(default_factory=list)
    fit_seconds: float = 0.0
    fitter: str = "lifelines"

    def cumhaz0(self, t: float) -> float:
        """Baseline cumulative hazard at time ``t`` (a right-continuous step function, 0 before the first event)."""
        i = np.searchsorted(self.baseline_times, t, side="right") - 1
        return float(self.baseline_cumhaz[i]) if i >= 0 else 0.0

    def log_partial_hazard(self, features: pd.DataFrame) -> np.ndarray:
        """``(x - m) . beta`` per row."""
        return (self.pre.transform(features) - self.center) @ self.beta

    def predict_proba(self, features: pd.DataFrame, horizon_days: int | None = None) -> np.ndarray:
        """P(apply within ``horizon_days`` (default the fitted H) of the landmark | open then, x), vectorized."""
        h = self.horizon_days if horizon_days is None else horizon_days
        if h > self.horizon_days:
            raise ValueError(
                f"the Cox model was fitted with follow-up censored at {self.horizon_days} days; cannot "
                f"predict a {h}-day probability"
            )
        lp = self.log_partial_hazard(features)
        return -np.expm1(-self.cumhaz0(h) * np.exp(lp))

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per original feature, its term of the log-hazard relative to the training mean (positive raises)."""
        return linear_contributions(self.pre, self.pre.transform(features) - self.center, self.beta, features.index)

    def survival_curve(self, features: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Survival S(t | x) for each row (rows × times), used for plots."""
        h0 = np.array([self.cumhaz0(t) for t in times])
        return np.exp(-np.exp(self.log_partial_hazard(features))[:, None] * h0[None, :])


def _lifelines_frame(design: np.ndarray, duration: np.ndarray, event: np.ndarray, horizon: int) -> pd.DataFrame:
    columns = [f"x{i}" for i in range(design.shape[1])]
    frame = pd.DataFrame(design, columns=columns)
    # Administrative censoring at H: the score needs the baseline only on (0, H].
    frame["T"] = np.clip(np.minimum(duration, horizon), 1e-6, None)
    frame["E"] = (event & (duration <= horizon)).astype("int8")
    return frame


def _fit_lifelines(frame: pd.DataFrame, penalizer: float, l1_ratio: float) -> CoxPHFitter:
    """Fit lifelines' Cox model; a Newton-Raphson run that does not converge is an error, not a warning (its
    coefficients would score leads at random)."""
    cph = CoxPHFitter(penalizer=penalizer, l1_ratio=l1_ratio)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*failed to converge.*")
        # Rare one-hot levels always have "very low variance"; the penalty keeps the fit well posed.
        warnings.filterwarnings("ignore", message=".*very low variance.*")
        # lifelines' L1 penalty is a smooth |b| sharpened every Newton step; its default precision (1e-7) needs
        # 5-10x more steps for coefficient changes in the 4th decimal, which do not move a probability.
        cph.fit(frame, duration_col="T", event_col="E", fit_options=FIT_OPTIONS)
    return cph


def _from_lifelines(cph: CoxPHFitter, pre: Preprocessor, horizon: int, penalizer: float, l1_ratio: float) -> CoxModel:
    bch = cph.baseline_cumulative_hazard_
    summary = cph.summary.copy()
    summary.index = pre.design_columns
    return CoxModel(
        pre=pre,
        beta=cph.params_.to_numpy(dtype=float),
        center=np.asarray(cph._norm_mean, dtype=float),
        baseline_times=bch.index.to_numpy(dtype=float),
        baseline_cumhaz=bch.iloc[:, 0].to_numpy(dtype=float),
        horizon_days=horizon,
        summary=summary,
        penalizer=penalizer,
        l1_ratio=l1_ratio,
    )


def _fit_model(
    design: np.ndarray,
    duration: np.ndarray,
    event: np.ndarray,
    pre: Preprocessor,
    horizon: int,
    penalizer: float,
    l1_ratio: float,
) -> CoxModel:
    """Fit one penalty on the design rows: lifelines up to ``LIFELINES_MAX_ROWS`` rows, ``cox_newton`` above."""
    frame = _lifelines_frame(design, duration, event, horizon)
    if len(frame) <= LIFELINES_MAX_ROWS:
        return _from_lifelines(_fit_lifelines(frame, penalizer, l1_ratio), pre, horizon, penalizer, l1_ratio)
    fit = fit_newton(design, frame["T"].to_numpy(), frame["E"].to_numpy(dtype=bool), penalizer, l1_ratio, **FIT_OPTIONS)
    summary = fit.summary
    summary.index = pre.design_columns
    return CoxModel(
        pre=pre,
        beta=fit.params,
        center=fit.mean,
        baseline_times=fit.baseline_times,
        baseline_cumhaz=fit.baseline_cumhaz,
        horizon_days=horizon,
        summary=summary,
        penalizer=penalizer,
        l1_ratio=l1_ratio,
        fitter="cox_newton",
    )


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def inner_time_split(as_of: pd.Series, horizon_days: int, valid_share: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Split training rows by time: the last ``valid_share`` of as_of dates validate, with an H-day gap before them.

    Returns:
        (fit_mask, valid_mask) boolean arrays.
    Raises:
        ValueError: either part is empty (too few distinct dates).
    """
    t = pd.Series(pd.to_datetime(as_of)).reset_index(drop=True)
    cut = t.quantile(1 - valid_share)
    valid = (t >= cut).to_numpy()
    fit = (t < cut - pd.Timedelta(days=horizon_days)).to_numpy()
    if not fit.any() or not valid.any():
        raise ValueError(
            f"inner time split left {int(fit.sum())} fit rows and {int(valid.sum())} validation rows; "
            "widen the training window"
        )
    return fit, valid


def fit_cox(
    features: pd.DataFrame,
    duration: np.ndarray,
    event: np.ndarray,
    as_of: pd.Series,
    label: np.ndarray,
    horizon_days: int,
    grid: tuple[tuple[float, float], ...] = DEFAULT_GRID,
    seed: int = 0,
) -> CoxModel:
    """Fit the penalized Cox model, choosing (penalizer, l1_ratio) by H-day log loss on an inner time split.

    Args:
        features: training rows' feature columns; duration/event: time from the landmark and whether it ended in an
            application; as_of: each row's landmark date; label: H-day outcome (NaN when unknown).
        horizon_days: H. grid: candidate (penalizer, l1_ratio) pairs. seed: row sampling of the grid search.
    Returns:
        The CoxModel refitted on all training rows with the chosen penalty.
    Raises:
        CandidateFitError: no events among the training rows or in the inner split, an empty inner split, or no
            grid point converges. The final fit may raise lifelines' errors (training skips the candidate).
    """
    started = time.perf_counter()
    event = np.asarray(event, dtype=bool)
    duration = np.asarray(duration, dtype=float)
    label = np.asarray(label, dtype=float)
    if not (event & (duration <= horizon_days)).any():
        raise CandidateFitError(
            f"no application within {horizon_days} days among {len(event)} training rows; cannot fit"
        )
    results: list[dict] = []
    if len(grid) > 1:
        try:
            fit_mask, valid_mask = inner_time_split(as_of, horizon_days)
        except ValueError as exc:
            raise CandidateFitError(str(exc)) from exc
        valid_mask = valid_mask & ~np.isnan(label)
        inner_events = int((event[fit_mask] & (duration[fit_mask] <= horizon_days)).sum())
        if inner_events == 0 or not valid_mask.any():
            raise CandidateFitError(
                f"the inner time split holds {inner_events} application(s) within {horizon_days} days among its "
                f"{int(fit_mask.sum())} fitting rows and {int(valid_mask.sum())} labelled validation rows; "
                "both are needed to choose the penalty"
            )
        rng = np.random.default_rng(seed)
        fit_idx = np.flatnonzero(fit_mask)
        if len(fit_idx) > GRID_MAX_ROWS:
            fit_idx = np.sort(rng.choice(fit_idx, GRID_MAX_ROWS, replace=False))
        inner_features = features.iloc[fit_idx]
        pre = Preprocessor().fit(inner_features)
        inner_design = pre.transform(inner_features)
        valid_features = features.iloc[np.flatnonzero(valid_mask)]
        for penalizer, l1_ratio in grid:
            try:
                model = _fit_model(
                    inner_design, duration[fit_idx], event[fit_idx], pre, horizon_days, penalizer, l1_ratio
                )
            except Exception as exc:  # one grid point failing leaves the others to choose from
                reason = describe_failure(exc)
                results.append({"penalizer": penalizer, "l1_ratio": l1_ratio, "failed": reason})
                log.warning("cox grid penalizer=%s l1_ratio=%s failed: %s", penalizer, l1_ratio, reason)
                continue
            loss = _log_loss(label[valid_mask], model.predict_proba(valid_features))
            results.append({"penalizer": penalizer, "l1_ratio": l1_ratio, "valid_log_loss": loss})
            log.info("cox grid penalizer=%s l1_ratio=%s valid log loss %.5f", penalizer, l1_ratio, loss)
        fitted = [r for r in results if "valid_log_loss" in r]
        if not fitted:
            raise CandidateFitError(
                f"no penalty of the grid could be fitted on the inner split: {results[0]['failed']}"
            )
        best = min(fitted, key=lambda r: r["valid_log_loss"])
        penalizer, l1_ratio = best["penalizer"], best["l1_ratio"]
    else:
        penalizer, l1_ratio = grid[0]
    pre = Preprocessor().fit(features)
    model = _fit_model(pre.transform(features), duration, event, pre, horizon_days, penalizer, l1_ratio)
    model.grid = results
    model.fit_seconds = time.perf_counter() - started
    return model
