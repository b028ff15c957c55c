"""The best forecast any model could make from what it observes: the sandbox's exact posterior of z given the features.

The ceiling (``true_p``) knows each lead's latent interest z. No model does; it sees counts that z drives. This module
computes, for each landmark row, the posterior of z given everything the generator lets z drive that the features
count, with the generator's own parameters (so no estimation error at all), and the forecast that follows:

    p_obs = E[1 - exp(-e^(eta0 + b z) dL0) | features, T > t]

Likelihood terms at lead age s (sandbox/generator.py ``_simulate_interactions``), over a Gauss-Hermite grid in z:

* survival to s: exp(-e^(eta0 + b z) L0(s)) (as in ``ceiling_without_z``);
* pings: Poisson(PING_MEAN e^(0.9 z - 0.405) F(s; 0.5, 20 d, 365 d)); for inquiries 30 % of pings sit at age 0;
* the pings' page kinds: multinomial with URL_KIND_WEIGHTS tilted by e^(0.6 z) (apply) and e^(0.3 z) (program);
* activities: Poisson(ACTIVITY_MEAN e^(0.8 z - 0.32) F(s; 0.5, 30 d, 365 d));
* event registrations beyond the origin one of event and visit sources: Poisson(EVENT_MEAN e^(0.8 z - 0.32)
  F(s; 0.5, 45 d, 365 d));
* e-mail opens: binomial over sends with logit p = -1.1 + 0.9 z + 0.5 e, the per-lead noise e integrated out;
  clicks: binomial over opens with logit p = -1.8 + 0.8 z; opt-out: one Bernoulli(0.008 e^(-0.4 z)) per send.

F(s; a, m, span) = a (1 - e^(-s/m)) + (1 - a) min(s/span, 1): the share of a lead's lifetime events by age s.

Left out, so the bound is a little loose (a model could in principle do slightly better): event attendance (the
features do not say how many registered events have already taken place) and the apply-page bursts before an
application (``anticipation``: they tell of the application itself, which the true hazard ignores; with
anticipation 0 there are none). Sends do not depend on z. The R-squared of the posterior mean of z against the true z
says how much of z the observable counts carry at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from leadscore.sandbox.generator import ACTIVITY_MEAN, BETA_Z, EVENT_MEAN, PING_MEAN, URL_KIND_WEIGHTS
from leadscore.sandbox.truth import DAY_US, cumulative_baseline

ACTIVITY_COLUMNS = ("activity_appointment", "activity_chat", "activity_email", "activity_phone", "activity_walkin")
PING_KIND_COLUMNS = ("ping_apply", "ping_visit", "ping_aid", "ping_program")  # the fifth kind, other, is the rest
KIND_TILT = np.array([0.6, 0.0, 0.0, 0.3, 0.0])  # apply, visit, aid, program, other
Z_NODES = 48  # |z| up to about 9.5: far past any lead's posterior
NOISE_NODES = 12


def lifetime_share(s: np.ndarray, early_share: float, early_mean: float, span: float) -> np.ndarray:
    """Share of a lead's lifetime events (generator ``_mixed_ages``) that fall before age ``s`` days."""
    return early_share * -np.expm1(-s / early_mean) + (1 - early_share) * np.minimum(s / span, 1.0)


def _poisson(count: np.ndarray, mean: np.ndarray) -> np.ndarray:
    # log-likelihood up to a term free of z; a zero mean (age 0) with a zero count contributes nothing
    return np.where(mean > 0, count * np.log(np.where(mean > 0, mean, 1.0)), 0.0) - mean


def observable_posterior(rows: pd.DataFrame, truth: pd.DataFrame, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """The best observable forecast and the posterior mean of z, per landmark row.

    Args:
        rows: landmark rows (``person_guid``, ``as_of`` and the feature counts of data.tables.FEATURE_NUMERIC).
        truth: the sandbox's truth table (hazard parameters, ``eta``, ``z``, ``source_group``, ``created``).
        horizon_days: H.
    Returns:
        (p_obs, z_mean): P(apply within H days | features, open at as_of) and E[z | features, open at as_of].
    Raises:
        KeyError: a row's lead is not in the truth table.
    """
    pos = pd.Index(truth["person_guid"]).get_indexer(rows["person_guid"].astype("str").str.lower())
    if (pos < 0).any():
        raise KeyError(f"{int((pos < 0).sum())} landmark rows have no truth row")
    created = truth["created"].to_numpy("datetime64[us]").view(np.int64)[pos]
    s = np.maximum((rows["as_of"].to_numpy("datetime64[us]").view(np.int64) - created) / DAY_US, 0.0)
    a1, tau1, a2, tau2 = (truth[c].to_numpy(np.float64)[pos] for c in ("a1", "tau1", "a2", "tau2"))
    eta0 = truth["eta"].to_numpy(np.float64)[pos] - BETA_Z * truth["z"].to_numpy(np.float64)[pos]
    group = truth["source_group"].to_numpy()[pos]
    lam_t = cumulative_baseline(s, a1, tau1, a2, tau2)
    d_lam = cumulative_baseline(s + horizon_days, a1, tau1, a2, tau2) - lam_t

    def col(name: str) -> np.ndarray:
        return rows[name].to_numpy(np.float64)

    ping_share = lifetime_share(s, 0.5, 20.0, 365.0)
    ping_share = np.where(group == "inquiry", 0.3 * (s > 0.01) + 0.7 * ping_share, ping_share)
    act_share, event_share = lifetime_share(s, 0.5, 30.0, 365.0), lifetime_share(s, 0.5, 45.0, 365.0)
    pings = col("pings")
    kinds = np.column_stack([*(col(c) for c in PING_KIND_COLUMNS), pings - sum(col(c) for c in PING_KIND_COLUMNS)])
    activities = sum(col(c) for c in ACTIVITY_COLUMNS)
    registrations = np.maximum(col("events_registered") - np.isin(group, ["event", "visit"]), 0.0)
    sent, opened, clicked, opted = col("email_sent"), col("email_open"), col("email_click"), col("opted_out")

    z, wz = np.polynomial.hermite_e.hermegauss(Z_NODES)
    e, we = np.polynomial.hermite_e.hermegauss(NOISE_NODES)
    we = we / we.sum()
    log_post = np.empty((Z_NODES, len(rows)))
    for k, zk in enumerate(z):
        ll = np.log(wz[k]) - np.exp(eta0 + BETA_Z * zk) * lam_t
        ll += _poisson(pings, PING_MEAN * np.exp(0.9 * zk - 0.405) * ping_share)
        tilt = URL_KIND_WEIGHTS * np.exp(KIND_TILT * zk)
        ll += kinds @ np.log(tilt / tilt.sum())
        ll += _poisson(activities, ACTIVITY_MEAN * np.exp(0.8 * zk - 0.32) * act_share)
        ll += _poisson(registrations, EVENT_MEAN * np.exp(0.8 * zk - 0.32) * event_share)
        p_open = expit(-1.1 + 0.9 * zk + 0.5 * e)  # one per noise node
        log_terms = opened[:, None] * np.log(p_open) + (sent - opened)[:, None] * np.log1p(-p_open)
        top = log_terms.max(axis=1)
        ll += top + np.log(np.exp(log_terms - top[:, None]) @ we)
        p_click = expit(-1.8 + 0.8 * zk)
        ll += clicked * np.log(p_click) + (opened - clicked) * np.log1p(-p_click)
        q = 0.008 * np.exp(-0.4 * zk)
        if q < 1:  # nodes so far out that q >= 1 carry no posterior mass
            ll += opted * np.log(q) + (sent - opted) * np.log1p(-q)
        else:
            ll -= np.inf
        log_post[k] = ll
    log_post -= log_post.max(axis=0)
    post = np.exp(log_post)
    post /= post.sum(axis=0)
    p_k = -np.expm1(-np.exp(eta0[None, :] + BETA_Z * z[:, None]) * d_lam[None, :])
    return (post * p_k).sum(axis=0), (post * z[:, None]).sum(axis=0)


def z_r_squared(rows: pd.DataFrame, truth: pd.DataFrame, z_mean: np.ndarray) -> float:
    """R-squared of the posterior mean of z against each row's true z: the share of z's variance the counts carry."""
    true_z = truth.set_index("person_guid")["z"].reindex(rows["person_guid"].astype("str").str.lower()).to_numpy()
    return float(1 - np.mean((true_z - z_mean) ** 2) / np.var(true_z))
