"""lifelines' penalized Cox fit, vectorized: the large fits' fitter (lifelines keeps the small ones).

lifelines 0.30 (``CoxPHFitter``) computes the Efron gradient and Hessian with a Python loop over the rows and a d x d
outer product per row, which dominates training from about 100,000 landmark rows on. This module maximizes the same
objective with the same algorithm: covariates standardized by their mean and standard deviation (ddof 1); the penalty
``n * penalizer * (l1_ratio * softabs_a(b) + (1 - l1_ratio) / 2 * b**2)`` on the standardized coefficients, where
``softabs_a`` is lifelines' smoothed |b| sharpened as ``a = 1.3 ** step``; Newton steps sized by lifelines' own
``StepSizer``; lifelines' stopping rules. Only the partial likelihood's sums are computed differently: Breslow's, by
cumulative sums over the rows sorted by time and two matrix products per step. Without tied event times Breslow's and
Efron's partial likelihoods are the same function, so both fitters take the same steps (tests/model/test_cox_newton.py
checks coefficients and baseline agree); with ties the two likelihoods differ in the tied terms only.

The baseline is Breslow's cumulative hazard at the centered covariates, as lifelines computes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines.utils import StepSizer
from scipy import linalg, stats
from threadpoolctl import threadpool_limits

from leadscore.model.fit_errors import CandidateFitError

STEP_SIZE = 0.95  # lifelines' default initial step


@dataclass
class NewtonFit:
    """A fitted penalized Cox model (what ``cox.CoxModel`` needs of lifelines' fitter).

    Attributes:
        params: coefficients per design column (original scale); ``mean`` the centering of the baseline.
        baseline_times, baseline_cumhaz: Breslow cumulative hazard at the event times (a right-continuous step).
        summary: coef, exp(coef), se(coef), 95 % CI (coef and exp), z, p per design column, as lifelines' summary.
        steps: Newton steps taken. log_likelihood: the penalized log partial likelihood at the optimum.
    """

    params: np.ndarray
    mean: np.ndarray
    baseline_times: np.ndarray
    baseline_cumhaz: np.ndarray
    summary: pd.DataFrame
    steps: int
    log_likelihood: float


class _Risk:
    """The rows sorted by time and the risk-set bookkeeping that does not depend on the coefficients."""

    def __init__(self, x: np.ndarray, duration: np.ndarray, event: np.ndarray) -> None:
        order = np.argsort(duration, kind="stable")
        self.x = x[order]
        t = duration[order]
        e = event[order]
        self.event_rows = np.flatnonzero(e)
        self.times, self.deaths = np.unique(t[e], return_counts=True)
        # Risk set of event time u: every row with T >= u, i.e. from the first row at u to the end.
        self.starts = np.searchsorted(t, self.times, side="left")
        # For row j, the last event time whose risk set holds it.
        self.last_event = np.searchsorted(self.starts, np.arange(len(t)), side="right") - 1
        self.x_death_sum = self.x[self.event_rows].sum(axis=0)

    def log_s0(self, beta: np.ndarray) -> np.ndarray:
        """log S0 (the risk set's summed exp(x . beta)) per event time, at ``beta`` (standardized scale)."""
        eta = self.x @ beta
        shift = float(eta.max())
        return np.log(np.cumsum(np.exp(eta - shift)[::-1])[::-1][self.starts]) + shift

    def sums(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(Hessian, gradient, log partial likelihood) of Breslow's likelihood at ``beta`` (standardized scale)."""
        eta = self.x @ beta
        shift = float(eta.max())
        w = np.exp(eta - shift)  # scaling every weight by one constant leaves every ratio unchanged
        s0 = np.cumsum(w[::-1])[::-1][self.starts]
        seg = np.add.reduceat(self.x * w[:, None], self.starts, axis=0)
        s1 = np.cumsum(seg[::-1], axis=0)[::-1]
        mean_x = s1 / s0[:, None]
        gradient = self.x_death_sum - self.deaths @ mean_x
        log_s0 = np.log(s0) + shift
        log_lik = float(eta[self.event_rows].sum() - self.deaths @ log_s0)
        # sum_k d_k S2_k / S0_k = sum_j w_j c_j x_j x_j^T, c_j = sum of d_k / S0_k over the risk sets holding j
        c = np.concatenate([[0.0], np.cumsum(self.deaths / s0)])[self.last_event + 1]
        root = self.x * np.sqrt(w * c)[:, None]
        a = mean_x * np.sqrt(self.deaths)[:, None]
        hessian = -(root.T @ root - a.T @ a)
        return hessian, gradient, log_lik


def _soft_abs(b: np.ndarray, a: float) -> np.ndarray:
    return (np.logaddexp(0, -a * b) + np.logaddexp(0, a * b)) / a


def fit_newton(
    design: np.ndarray,
    duration: np.ndarray,
    event: np.ndarray,
    penalizer: float,
    l1_ratio: float,
    precision: float = 1e-7,
    r_precision: float = 1e-9,
    max_steps: int = 500,
) -> NewtonFit:
    """Fit the penalized Cox model as lifelines' ``CoxPHFitter(penalizer, l1_ratio).fit`` does, vectorized.

    Args:
        design: rows x covariates. duration: time to the event or censoring (> 0). event: bool per row.
        penalizer, l1_ratio: lifelines' penalty. precision, r_precision, max_steps: lifelines' ``fit_options``.
    Returns:
        A NewtonFit.
    Raises:
        CandidateFitError: no event, a constant covariate, a singular Hessian, or no convergence within
            ``max_steps`` (its coefficients would score leads at random).
    """
    x = np.asarray(design, dtype=np.float64)
    duration = np.asarray(duration, dtype=np.float64)
    event = np.asarray(event, dtype=bool)
    n = len(x)
    if not event.any():
        raise CandidateFitError(f"no event among {n:,} rows; cannot fit the Cox model")
    mean, std = x.mean(axis=0), x.std(axis=0, ddof=1)
    if not np.all(std > 0):
        raise CandidateFitError(
            f"design column(s) {np.flatnonzero(~(std > 0)).tolist()} are constant over the {n:,} rows; "
            "the Cox model cannot standardize them"
        )
    # OpenBLAS's threads busy-wait for work: on the shared 2-core machine two threads made the Gram product of a
    # Newton step up to 60x slower than one (measured at load 16); one thread keeps a step's time predictable.
    with threadpool_limits(limits=1, user_api="blas"):
        risk = _Risk((x - mean) / std, duration, event)
        return _newton(risk, mean, std, penalizer, l1_ratio, precision, r_precision, max_steps)


def _newton(
    risk: _Risk,
    mean: np.ndarray,
    std: np.ndarray,
    penalizer: float,
    l1_ratio: float,
    precision: float,
    r_precision: float,
    max_steps: int,
) -> NewtonFit:
    """lifelines' Newton-Raphson loop (``_newton_raphson_for_efron_model``) on Breslow's sums, then the baseline."""
    n, d = risk.x.shape
    beta, delta = np.zeros(d), np.zeros(d)
    sizer = StepSizer(STEP_SIZE)
    step_size = sizer.next()
    previous_ll, step, success = 0.0, 0, False
    while True:
        beta = beta + step_size * delta
        step += 1
        h, g, ll = risk.sums(beta)
        a = 1.3**step
        tanh = np.tanh(a * beta / 2)
        ll -= n * penalizer * float((l1_ratio * _soft_abs(beta, a) + 0.5 * (1 - l1_ratio) * beta**2).sum())
        g = g - n * penalizer * (l1_ratio * tanh + (1 - l1_ratio) * beta)
        h[np.diag_indices(d)] -= n * penalizer * (l1_ratio * a / 2 * (1 - tanh**2) + (1 - l1_ratio))
        try:
            delta = linalg.solve(-h, g, assume_a="pos", check_finite=False)
        except (ValueError, linalg.LinAlgError) as exc:
            raise CandidateFitError(f"the Cox Hessian is singular at step {step} on {n:,} rows: {exc}") from exc
        if not np.all(np.isfinite(delta)):
            raise CandidateFitError(f"the Cox Newton step is not finite at step {step} on {n:,} rows")
        hessian = h
        norm_delta = float(np.linalg.norm(delta))
        if (
            norm_delta < precision
            or (previous_ll != 0 and abs(ll - previous_ll) / (-previous_ll) < r_precision)
            or float(g @ delta) / 2 < precision
        ):
            success = True
            break
        if step >= max_steps or step_size <= 0.00001:
            break
        previous_ll = ll
        step_size = sizer.update(norm_delta).next()
    if not success:
        raise CandidateFitError(
            f"the penalized Cox fit failed to converge in {step} Newton steps on {n:,} rows "
            f"(penalizer {penalizer}, l1_ratio {l1_ratio})"
        )
    log_s0 = risk.log_s0(beta)
    params = beta / std
    se = np.sqrt(np.diag(linalg.inv(-hessian))) / std
    return NewtonFit(
        params=params,
        mean=mean,
        baseline_times=risk.times,
        baseline_cumhaz=np.cumsum(risk.deaths * np.exp(-log_s0)),
        summary=_summary(params, se),
        steps=step,
        log_likelihood=ll,
    )


def _summary(coef: np.ndarray, se: np.ndarray) -> pd.DataFrame:
    """lifelines' summary columns (95 % Wald intervals, two-sided p)."""
    z = coef / se
    q = stats.norm.ppf(0.975)
    p = 2 * stats.norm.sf(np.abs(z))
    with np.errstate(divide="ignore"):  # p underflows to 0 for very strong effects: -log2(p) is then inf
        log2p = -np.log2(p)
    return pd.DataFrame(
        {
            "coef": coef,
            "exp(coef)": np.exp(coef),
            "se(coef)": se,
            "coef lower 95%": coef - q * se,
            "coef upper 95%": coef + q * se,
            "exp(coef) lower 95%": np.exp(coef - q * se),
            "exp(coef) upper 95%": np.exp(coef + q * se),
            "cmp to": 0.0,
            "z": z,
            "p": p,
            "-log2(p)": log2p,
        }
    )
