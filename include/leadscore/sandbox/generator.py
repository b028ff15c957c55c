"""Seeded, vectorized simulation of one Slate instance's lead funnel, with ground truth and configurable dirt.

The world: leads originate over ``years`` before ``end`` with a fall-peaking admission cycle, from list loads
("Source", "Ad-Hoc Data Load", "Vendor Lead"), per-college "… Inquiry" forms, event registrations and campus visits.
Each lead has a latent interest z ~ N(0, 1) that drives both its application hazard (see ``truth``) and its
interactions: e-mails (cadence falling with age, stopped by application or opt-out) with opens and clicks, web pings,
activities and event registrations, plus a burst of apply-page pings shortly before many applications.

Output tables follow the wire contract of ``slate.queries`` (every value a string, NULL as missing) plus hidden typed
columns the sandbox server filters on (``_created``, ``_app_created``, ``_occurred``, and the history of
``sandbox.history``: ``_changed``, ``_new_*``, ``_gone``, ``_merged_into``, ``_arrived``); ``truth`` holds what the
hazard needs so that :func:`true_probability` is exact.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.sandbox import dirt as dirt_mod
from leadscore.sandbox.dirt import DirtRates
from leadscore.sandbox.history import NEVER, PersonHistory, late_arrivals, simulate_person_history
from leadscore.sandbox.truth import (
    DAY_US,
    calibrate_intercept,
    sample_application_age,
    true_probability,
)
from leadscore.sandbox.wirefmt import fixed_width_array, iso_seconds, us_date_minutes, uuid4_array, uuid4_chars
from leadscore.slate.queries import ACTIVITY_CODES, INTERACTION_KINDS, INTERACTIONS, LEADS

__all__ = [
    "DirtRates",
    "GeneratorConfig",
    "SandboxData",
    "default_end",
    "generate",
    "generate_command",
    "read_sandbox",
    "true_probability",
    "write_sandbox",
]

LEAD_WIRE_COLUMNS: tuple[str, ...] = tuple(c for c in LEADS.column_names if c != "updated")
INTERACTION_WIRE_COLUMNS: tuple[str, ...] = INTERACTIONS.column_names
EXTRA_COLUMNS: tuple[str, ...] = ("legacy_source_code", "nickname")
FILES = ("leads.parquet", "interactions.parquet", "truth.parquet", "meta.json")

# --- the world's parameters -------------------------------------------------------------------------------------
# Source groups: share of leads, conversion within a year of origin, and the fast decay (days) of the hazard.
GROUPS: dict[str, dict[str, float]] = {
    "list": {"share": 0.70, "conversion": 0.02, "tau1": 6.0},
    "inquiry": {"share": 0.20, "conversion": 0.20, "tau1": 3.0},
    "event": {"share": 0.05, "conversion": 0.12, "tau1": 5.0},
    "visit": {"share": 0.05, "conversion": 0.25, "tau1": 4.0},
}
LIST_LABELS: dict[str, float] = {"Source": 0.26, "Ad-Hoc Data Load": 0.18, "Vendor Lead": 0.26}  # shares of all leads
COLLEGES: dict[str, tuple[float, float]] = {  # name: (share among leads with a college, log-hazard effect)
    "College of Arts and Sciences": (0.26, 0.0),
    "College of Business": (0.20, 0.05),
    "College of Engineering": (0.16, 0.10),
    "College of Nursing": (0.12, 0.20),
    "College of Education": (0.10, -0.05),
    "College of Computing": (0.10, 0.10),
    "College of Fine Arts": (0.06, -0.10),
}
NO_COLLEGE_SHARE = 0.17
NO_COLLEGE_EFFECT = -0.35
BETA_Z = 1.2  # log-hazard per SD of latent interest: the part no model observes directly
FAST_SHARE = 0.6  # share of the first year's baseline cumulative hazard in the fast (days) component
TAU2 = 120.0  # slow decay of the hazard (days)
CALIBRATION_DAYS = 365.0
SEASON_PEAK_DOY = 280  # early October
SEASON_AMPLITUDE = 0.6
WEEKEND_FACTOR = 0.55

EMAIL_LIFE_DAYS = 540.0
EMAIL_PLAN_MEAN = 26.5  # planned sends per lead before application/opt-out truncation
EMAIL_SPREAD = 1.2  # sd of the log per-lead mailing intensity (makes mean/median about 1.8)
PING_MEAN = 2.0
ACTIVITY_MEAN = 0.3
EVENT_MEAN = 0.15

URLS: dict[str, tuple[str, ...]] = {
    "apply": ("/apply/start", "/apply/checklist", "/apply/requirements", "/apply/deadlines"),
    "visit": ("/visit", "/visit/tours", "/visit/open-house"),
    "aid": ("/aid/scholarships", "/aid/net-price-calculator", "/aid/fafsa"),
    "program": (
        "/programs/arts-and-sciences",
        "/programs/business",
        "/programs/engineering",
        "/programs/nursing",
        "/programs/education",
        "/programs/computing",
        "/programs/fine-arts",
    ),
    "other": ("/", "/about", "/news", "/student-life", "/athletics", "/contact"),
}
URL_BASE = "https://admissions.example.edu"
URL_KIND_WEIGHTS = np.array([0.08, 0.12, 0.10, 0.30, 0.40])  # apply, visit, aid, program, other
MAILING_THEMES: tuple[str, ...] = (
    "Welcome to Example University",
    "Program Spotlight",
    "Campus Visit Invitation",
    "Financial Aid Basics",
    "Application Deadline Reminder",
    "Student Life Newsletter",
    "Scholarship Opportunities",
    "Open House Invitation",
    "Why Example University",
    "Next Steps to Apply",
)
EVENT_TYPES: tuple[str, ...] = (
    "Open House",
    "Virtual Information Session",
    "Campus Tour",
    "Admitted Student Day",
    "College Fair",
)
ACTIVITY_WEIGHTS = np.array([0.12, 0.15, 0.35, 0.30, 0.08])  # order of ACTIVITY_CODES
FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sofia", "Mark", "Maria", "Jose", "Aisha",
    "Wei", "Priya", "Kevin", "Emily", "Brian", "Ashley", "Luis", "Olivia", "Jamal", "Chloe",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Nguyen", "Hill", "Flores", "Patel",
)  # fmt: skip
EMAIL_DOMAINS: tuple[str, ...] = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "aol.com")
VIP_SHARE = 0.01


def default_end() -> datetime:
    """The most recent Monday 00:00 UTC strictly before today (UTC), as a tz-naive datetime.

    On a Monday this is the previous Monday, so the default always ends on a complete, past week.
    """
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    back = today.weekday() or 7
    return today - timedelta(days=back)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to simulate. ``end`` is tz-naive UTC (tz-aware values are converted); history covers ``years`` before it.

    ``anticipation`` is the share of applicants who leave a burst of apply-page pings in the days before applying
    (a signal a model can see but the true hazard, which depends on static quantities only, does not use; set it to 0
    to make the true probability a strict ceiling).
    """

    leads: int = 20_000
    seed: int = 7
    end: datetime = field(default_factory=default_end)
    years: float = 3.0
    horizon_days: int = 30
    dirt: DirtRates = field(default_factory=DirtRates)
    anticipation: float = 0.6

    def __post_init__(self) -> None:
        if not isinstance(self.leads, int) or self.leads <= 0:
            raise ValueError(f"GeneratorConfig.leads must be a positive int, got {self.leads!r}")
        if not 0 < self.years <= 50:
            raise ValueError(f"GeneratorConfig.years must be in (0, 50], got {self.years!r}")
        if self.horizon_days <= 0:
            raise ValueError(f"GeneratorConfig.horizon_days must be positive, got {self.horizon_days!r}")
        if not 0.0 <= self.anticipation <= 1.0:
            raise ValueError(f"GeneratorConfig.anticipation must be in [0, 1], got {self.anticipation!r}")
        if not isinstance(self.dirt, DirtRates):
            raise TypeError(f"GeneratorConfig.dirt must be a DirtRates, got {type(self.dirt).__name__}")
        end = pd.Timestamp(self.end)
        if end.tzinfo is not None:
            end = end.tz_convert("UTC").tz_localize(None)
        object.__setattr__(self, "end", end.floor("s").to_pydatetime())

    @property
    def start(self) -> datetime:
        """First moment of the simulated history (``end`` minus ``years``, whole seconds)."""
        return (pd.Timestamp(self.end) - pd.Timedelta(days=365.25 * self.years)).floor("s").to_pydatetime()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the configuration."""
        d = asdict(self)
        d["end"] = self.end.isoformat()
        return d


@dataclass
class SandboxData:
    """The generated sandbox: wire tables (with hidden ``_`` columns), the truth table and metadata."""

    leads: pd.DataFrame
    interactions: pd.DataFrame
    truth: pd.DataFrame
    meta: dict[str, Any]


# --- the world --------------------------------------------------------------------------------------------------
def _origin_times(rng: np.random.Generator, n: int, start_us: int, end_us: int) -> np.ndarray:
    """Sorted origin moments (int64 us) over [start, end): seasonal (fall peak) and fewer on weekends."""
    n_days = int(np.ceil((end_us - start_us) / DAY_US))
    day_start = start_us + np.arange(n_days, dtype=np.int64) * DAY_US
    dates = day_start.astype("datetime64[us]")
    doy = (dates - dates.astype("datetime64[Y]")).astype("timedelta64[D]").astype(np.int64)
    weekday = (dates.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    weight = 1.0 + SEASON_AMPLITUDE * np.cos(2 * np.pi * (doy - SEASON_PEAK_DOY) / 365.25)
    weight = weight * np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)
    cdf = np.cumsum(weight)
    day = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    t = day_start[day] + (rng.random(n) * DAY_US).astype(np.int64)
    t = np.minimum(t, end_us - 1)
    t -= t % 1_000_000
    return np.sort(t)


def _choice(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    """Category codes drawn with fixed weights."""
    cdf = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1)


def _row_choice(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One category per row from per-row weights (rows x categories)."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(weights.shape[0]) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), weights.shape[1] - 1)


def _mixed_ages(rng: np.random.Generator, n: int, early_share: float, early_mean: float, span: float) -> np.ndarray:
    """Ages (days) from a mixture of an early exponential and a uniform over the lead's life: cadence falls with age."""
    early = rng.random(n) < early_share
    return np.where(early, rng.exponential(early_mean, n), rng.random(n) * span)


def _dense_unique(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each code among them) for non-negative codes of small range, in O(n)."""
    if codes.size == 0:
        return codes[:0], codes[:0]
    low = int(codes.min())
    present = np.zeros(int(codes.max()) - low + 1, dtype=bool)
    present[codes - low] = True
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present) + low, rank[codes - low]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class _Leads:
    created: np.ndarray  # int64 us
    group: np.ndarray  # index into GROUPS
    label: np.ndarray  # index into source labels
    college: np.ndarray  # index into COLLEGES, -1 none
    z: np.ndarray
    eta: np.ndarray
    a1: np.ndarray
    tau1: np.ndarray
    a2: np.ndarray
    tau2: np.ndarray
    app_age: np.ndarray  # days, inf when never
    app_us: np.ndarray  # int64 us, int64 min when never


def _source_labels() -> list[str]:
    return [*LIST_LABELS, *(f"{c} Inquiry" for c in COLLEGES), "Event Registration", "Campus Visit"]


def _baseline(tau1: float) -> dict[str, float]:
    """Baseline parameters with Lambda0(365 d) = 1, FAST_SHARE of it from the fast component."""
    a1 = FAST_SHARE / (tau1 * -np.expm1(-CALIBRATION_DAYS / tau1))
    a2 = (1 - FAST_SHARE) / (TAU2 * -np.expm1(-CALIBRATION_DAYS / TAU2))
    return {"a1": float(a1), "tau1": tau1, "a2": float(a2), "tau2": TAU2}


@functools.cache
def _intercepts() -> dict[str, float]:
    """Per-group intercepts calibrated so each group's expected conversion within a year meets its target."""
    shares = np.array([s for s, _ in COLLEGES.values()])
    effects = np.array([e for _, e in COLLEGES.values()])
    out: dict[str, float] = {}
    for name, g in GROUPS.items():
        if name == "inquiry":  # an inquiry form always names its college
            offsets, weights = effects, shares
        else:
            no_college = NO_COLLEGE_SHARE / (1 - GROUPS["inquiry"]["share"])  # inquiries always name one
            offsets = np.append(effects, NO_COLLEGE_EFFECT)
            weights = np.append(shares * (1 - no_college), no_college)
        out[name] = calibrate_intercept(
            g["conversion"], BETA_Z, CALIBRATION_DAYS, _baseline(g["tau1"]), offsets, weights
        )
    return out


def _simulate_leads(rng: np.random.Generator, n: int, start_us: int, end_us: int) -> _Leads:
    created = _origin_times(rng, n, start_us, end_us)
    group_names = list(GROUPS)
    group = _choice(rng, n, np.array([GROUPS[g]["share"] for g in group_names]))
    college_shares = np.array([s for s, _ in COLLEGES.values()])
    college = _choice(rng, n, college_shares)
    no_college = NO_COLLEGE_SHARE / (1 - GROUPS["inquiry"]["share"])  # inquiries always carry a college
    is_inquiry = group == group_names.index("inquiry")
    college = np.where(~is_inquiry & (rng.random(n) < no_college), -1, college)
    list_codes = _choice(rng, n, np.array(list(LIST_LABELS.values())))
    n_list = len(LIST_LABELS)
    label = np.select(
        [group == group_names.index("list"), is_inquiry, group == group_names.index("event")],
        [list_codes, n_list + college, n_list + len(COLLEGES)],
        default=n_list + len(COLLEGES) + 1,
    )
    # list loads arrive in one batch per day: snap their moment to that day's load time
    is_list = group == group_names.index("list")
    day0 = created - created % DAY_US
    load_minute = 9 * 60 + (day0 // DAY_US * 37) % 480
    created = np.where(is_list, day0 + load_minute * 60_000_000, created)
    created = np.clip(created, start_us, end_us - 1_000_000)  # the first day's load may precede `start`
    order = np.argsort(created, kind="stable")
    created, group, college, label = created[order], group[order], college[order], label[order]

    z = rng.standard_normal(n)
    intercepts = _intercepts()
    college_effect = np.append(np.array([e for _, e in COLLEGES.values()]), NO_COLLEGE_EFFECT)[college]
    eta = np.array([intercepts[g] for g in group_names])[group] + college_effect + BETA_Z * z
    base = [_baseline(GROUPS[g]["tau1"]) for g in group_names]
    a1, tau1, a2, tau2 = (np.array([b[k] for b in base])[group] for k in ("a1", "tau1", "a2", "tau2"))
    app_age = sample_application_age(rng, eta, a1, tau1, a2, tau2)
    finite = np.isfinite(app_age)
    app_us = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    app_us[finite] = created[finite] + np.maximum(np.floor(app_age[finite] * 86_400), 1).astype(np.int64) * 1_000_000
    return _Leads(created, group, label, college, z, eta, a1, tau1, a2, tau2, app_age, app_us)


# --- interactions ----------------------------------------------------------------------------------------------
@dataclass
class _Events:
    lead: list[np.ndarray] = field(default_factory=list)
    t_us: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    detail: list[np.ndarray] = field(default_factory=list)  # index into the detail vocabulary, -1 = NULL

    def add(self, lead: np.ndarray, t_us: np.ndarray, kind: int, detail: np.ndarray) -> None:
        self.lead.append(lead.astype(np.int32))
        self.t_us.append(t_us.astype(np.int64))
        self.kind.append(np.full(lead.size, kind, dtype=np.int8))
        self.detail.append(detail.astype(np.int32))


def _age_us(days: np.ndarray) -> np.ndarray:
    return (days * DAY_US).astype(np.int64)


def _simulate_interactions(
    rng: np.random.Generator, w: _Leads, start_us: int, end_us: int, anticipation: float
) -> tuple[_Events, list[str], dict[str, Any]]:
    """Simulate every lead's interactions; returns events (before `end` only), the detail vocabulary and stats."""
    n = w.z.size
    kinds = list(INTERACTION_KINDS)
    k = {name: i for i, name in enumerate(kinds)}
    vocab: list[str] = []
    ev = _Events()

    # e-mails: planned sends per lead, cadence falling with age; application or opt-out stops them
    intensity = np.exp(EMAIL_SPREAD * rng.standard_normal(n) - EMAIL_SPREAD**2 / 2)
    planned = rng.poisson(EMAIL_PLAN_MEAN * intensity)
    lead = np.repeat(np.arange(n, dtype=np.int32), planned)
    age = _mixed_ages(rng, lead.size, 0.35, 30.0, EMAIL_LIFE_DAYS)
    before_app = age < w.app_age[lead]
    lead, age = lead[before_app], age[before_app]
    p_optout = 0.008 * np.exp(-0.4 * w.z)
    trig = rng.random(lead.size) < p_optout[lead]
    optout_age = np.full(n, np.inf)
    np.minimum.at(optout_age, lead[trig], age[trig])
    keep = age <= optout_age[lead]
    lead, age = lead[keep], age[keep]
    life_emails = np.bincount(lead, minlength=n)  # sends over the lead's life, before truncation at `end`
    sent_us = w.created[lead] + _age_us(age)
    weeks = (sent_us - start_us) // (7 * DAY_US)
    slot = rng.integers(0, 4, lead.size)
    mailing_code = weeks * 4 + slot
    uniq, inverse = _dense_unique(mailing_code)
    base = len(vocab)
    for code in uniq:
        week_start = pd.Timestamp(start_us + int(code // 4) * 7 * DAY_US, unit="us")
        theme = MAILING_THEMES[int((code * 7 + code // 4) % len(MAILING_THEMES))]
        vocab.append(f"{theme} {week_start:%Y-%m-%d}")
    mailing = base + inverse.reshape(-1)
    ev.add(lead, sent_us, k["email_sent"], mailing)

    p_open = _sigmoid(-1.1 + 0.9 * w.z + 0.5 * rng.standard_normal(n))
    p_click = _sigmoid(-1.8 + 0.8 * w.z)
    opened = rng.random(lead.size) < p_open[lead]
    open_us = sent_us[opened] + (rng.exponential(0.4, opened.sum()) * DAY_US).astype(np.int64)
    ev.add(lead[opened], open_us, k["email_open"], mailing[opened])
    clicked = rng.random(open_us.size) < p_click[lead[opened]]
    click_us = open_us[clicked] + (rng.exponential(600.0, clicked.sum()) * 1e6).astype(np.int64)
    ev.add(lead[opened][clicked], click_us, k["email_click"], mailing[opened][clicked])
    has_optout = np.isfinite(optout_age)
    opt_lead = np.flatnonzero(has_optout)
    opt_us = (
        w.created[opt_lead]
        + _age_us(optout_age[opt_lead])
        + (rng.exponential(1.0, opt_lead.size) * 3.6e9).astype(np.int64)
    )
    opt_mailing = np.full(opt_lead.size, -1)
    if opt_lead.size:
        # the opt-out names the mailing it came from: the lead's send at exactly its opt-out age
        is_trigger = age == optout_age[lead]
        by_lead = np.full(n, -1, dtype=np.int64)
        by_lead[lead[is_trigger]] = mailing[is_trigger]
        opt_mailing = by_lead[opt_lead]
    ev.add(opt_lead, opt_us, k["email_optout"], opt_mailing)

    # web pings: more and more apply-minded with interest; inquiries ping the site when they fill in the form
    url_list = [f"{URL_BASE}{path}" for kind in URLS for path in URLS[kind]]
    url_base = len(vocab)
    vocab.extend(url_list)
    kind_start = np.cumsum([0] + [len(v) for v in URLS.values()])[:-1]
    kind_size = np.array([len(v) for v in URLS.values()])

    def url_codes(kind_idx: np.ndarray) -> np.ndarray:
        return url_base + kind_start[kind_idx] + (rng.random(kind_idx.size) * kind_size[kind_idx]).astype(np.int64)

    n_pings = rng.poisson(PING_MEAN * np.exp(0.9 * w.z - 0.405))
    lead = np.repeat(np.arange(n, dtype=np.int32), n_pings)
    age = _mixed_ages(rng, lead.size, 0.5, 20.0, 365.0)
    is_inq = w.group[lead] == list(GROUPS).index("inquiry")
    age = np.where(is_inq & (rng.random(lead.size) < 0.3), rng.random(lead.size) * 0.01, age)
    weights = np.broadcast_to(URL_KIND_WEIGHTS, (lead.size, 5)).copy()
    weights[:, 0] *= np.exp(0.6 * w.z[lead])
    weights[:, 3] *= np.exp(0.3 * w.z[lead])
    ev.add(lead, w.created[lead] + _age_us(age), k["ping"], url_codes(_row_choice(rng, weights)))

    # the burst before an application: apply/visit/aid pings within days, sometimes a call or an appointment
    applicants = np.flatnonzero(np.isfinite(w.app_age) & (rng.random(n) < anticipation))
    burst = 1 + rng.poisson(2.0, applicants.size)
    lead = np.repeat(applicants.astype(np.int32), burst)
    t_app = w.app_age[lead]
    age = t_app - np.minimum(rng.exponential(2.0, lead.size), t_app * rng.random(lead.size))
    kind_idx = _choice(rng, lead.size, np.array([0.5, 0.2, 0.2, 0.1, 0.0]))
    ev.add(lead, w.created[lead] + _age_us(age), k["ping"], url_codes(kind_idx))
    calls = applicants[rng.random(applicants.size) < 0.25]
    act_base = len(vocab)
    vocab.extend(ACTIVITY_CODES)
    t_app = w.app_age[calls]
    age = t_app - np.minimum(rng.exponential(4.0, calls.size), t_app * rng.random(calls.size))
    code = act_base + _choice(rng, calls.size, np.array([0.45, 0.1, 0.0, 0.45, 0.0]))
    ev.add(calls.astype(np.int32), w.created[calls] + _age_us(age), k["activity"], code)

    # activities over the lead's life
    n_act = rng.poisson(ACTIVITY_MEAN * np.exp(0.8 * w.z - 0.32))
    lead = np.repeat(np.arange(n, dtype=np.int32), n_act)
    age = _mixed_ages(rng, lead.size, 0.5, 30.0, 365.0)
    ev.add(lead, w.created[lead] + _age_us(age), k["activity"], act_base + _choice(rng, lead.size, ACTIVITY_WEIGHTS))

    # events: registrations (one at origin for event and visit sources), then cancel / attend / no-show
    group_names = list(GROUPS)
    n_reg = rng.poisson(EVENT_MEAN * np.exp(0.8 * w.z - 0.32))
    lead = np.repeat(np.arange(n, dtype=np.int32), n_reg)
    age = _mixed_ages(rng, lead.size, 0.5, 45.0, 365.0)
    etype = rng.integers(0, len(EVENT_TYPES), lead.size)
    origin_leads = np.flatnonzero(np.isin(w.group, [group_names.index("event"), group_names.index("visit")])).astype(
        np.int32
    )
    is_visit = w.group[origin_leads] == group_names.index("visit")
    lead = np.concatenate([lead, origin_leads])
    age = np.concatenate([age, np.zeros(origin_leads.size)])
    etype = np.concatenate(
        [etype, np.where(is_visit, len(EVENT_TYPES), rng.integers(0, len(EVENT_TYPES), origin_leads.size))]
    )
    reg_us = w.created[lead] + _age_us(age)
    lead_time = np.where(etype == len(EVENT_TYPES), 1 + rng.random(lead.size) * 13, 2 + rng.random(lead.size) * 28)
    event_us = reg_us + _age_us(lead_time)
    event_day = (event_us // DAY_US).astype(np.int64)
    event_code = event_day * (len(EVENT_TYPES) + 1) + etype
    uniq, inverse = _dense_unique(event_code)
    ev_base = len(vocab)
    type_names = [*EVENT_TYPES, "Campus Visit"]
    for code in uniq:
        day = pd.Timestamp(int(code // (len(EVENT_TYPES) + 1)) * DAY_US, unit="us")
        vocab.append(f"{type_names[int(code % (len(EVENT_TYPES) + 1))]} {day:%Y-%m-%d}")
    name = ev_base + inverse.reshape(-1)
    # registrations happen before the application; the outcome of an event may fall after it
    ok = age < w.app_age[lead]
    lead, reg_us, event_us, name = lead[ok], reg_us[ok], event_us[ok], name[ok]
    ev.add(lead, reg_us, k["event_registered"], name)
    u = rng.random(lead.size)
    cancelled = u < 0.1
    cancel_us = reg_us + ((event_us - reg_us) * rng.random(lead.size)).astype(np.int64)
    ev.add(lead[cancelled], cancel_us[cancelled], k["event_cancelled"], name[cancelled])
    attended = ~cancelled & (rng.random(lead.size) < _sigmoid(0.4 + 0.9 * w.z[lead]))
    noshow = ~cancelled & ~attended
    ev.add(lead[attended], event_us[attended], k["event_attended"], name[attended])
    ev.add(lead[noshow], event_us[noshow], k["event_noshow"], name[noshow])

    full_life = (end_us - w.created) / DAY_US >= EMAIL_LIFE_DAYS
    stats = {
        "emails_per_lead_full_life_mean": float(life_emails[full_life].mean()) if full_life.any() else None,
        "emails_per_lead_full_life_median": float(np.median(life_emails[full_life])) if full_life.any() else None,
        "leads_with_full_email_life": int(full_life.sum()),
        "opted_out_share": float(has_optout.mean()),
    }
    return ev, vocab, stats


# --- wire tables -----------------------------------------------------------------------------------------------
def _dict_strings(codes: np.ndarray, vocab: list[str]) -> pa.Array:
    """Strings from vocabulary codes (negative code = NULL)."""
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(vocab, type=pa.large_string())).dictionary_decode()


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _leads_wire(
    rng: np.random.Generator, w: _Leads, guid: pa.Array, end_us: int, rates: DirtRates, hist_rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[str, int], np.ndarray, PersonHistory]:
    n = w.z.size
    counts: dict[str, int] = {}
    labels = _source_labels()
    refs = 100_001 + np.arange(n, dtype=np.int64)
    applied = w.app_us < end_us  # int64 min sorts below end for never-applied leads: exclude them
    applied &= w.app_us != np.iinfo(np.int64).min
    app_us = np.where(applied, w.app_us, np.iinfo(np.int64).min)

    test_rows = dirt_mod.pick(rng, n, rates.test_tagged)
    counts["test_tagged"] = int(test_rows.size)
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    first_arr = _dict_strings(first, list(FIRST_NAMES))
    last_arr = _dict_strings(last, list(LAST_NAMES))
    number = pc.cast(pa.array(rng.integers(1, 1000, n)), pa.large_string())
    domain = _dict_strings(rng.integers(0, len(EMAIL_DOMAINS), n), list(EMAIL_DOMAINS))
    email = pc.utf8_lower(
        pc.binary_join_element_wise(first_arr, _large("."), last_arr, number, _large("@"), domain, _large(""))
    )
    first_arr = dirt_mod.replace_rows(first_arr, test_rows, ["Test"] * test_rows.size)
    last_arr = dirt_mod.replace_rows(last_arr, test_rows, ["Record"] * test_rows.size)
    email = dirt_mod.replace_rows(email, test_rows, [f"test+{r}@example.edu" for r in refs[test_rows]])
    tag_codes = np.where(rng.random(n) < VIP_SHARE, 1, -1)
    tag_codes[test_rows] = 0
    tags = _dict_strings(tag_codes, ["test", "vip"])

    ref = pc.cast(pa.array(refs), pa.large_string())
    rows = dirt_mod.pick(rng, n, rates.odd_numeric_strings)
    counts["odd_numeric_strings"] = int(rows.size)
    ref = dirt_mod.replace_rows(ref, rows, dirt_mod.odd_numeric_strings(rng, refs[rows]))

    source = _dict_strings(w.label, labels)
    rows = dirt_mod.pick(rng, n, rates.source_label_variants)
    counts["source_label_variants"] = int(rows.size)
    source = dirt_mod.replace_rows(
        source, rows, dirt_mod.source_label_variants(rng, [labels[i] for i in w.label[rows]])
    )

    origin = iso_seconds(w.created)
    application = iso_seconds(app_us)
    rows = dirt_mod.pick(rng, n, rates.alt_date_format)
    counts["alt_date_format"] = int(rows.size)
    origin = dirt_mod.replace_rows(origin, rows, us_date_minutes(w.created[rows]))
    application = dirt_mod.replace_rows(application, rows, us_date_minutes(app_us[rows]))
    missing = dirt_mod.pick(rng, n, rates.missing_origin_date, exclude=rows)
    counts["missing_origin_date"] = int(missing.size)
    origin = dirt_mod.replace_rows(origin, missing, [None] * missing.size)
    impossible = dirt_mod.pick(rng, n, rates.impossible_dates, exclude=np.concatenate([rows, missing]))
    counts["impossible_dates"] = int(impossible.size)
    years = w.created[impossible].astype("datetime64[us]").astype("datetime64[Y]").astype(int) + 1970
    origin = dirt_mod.replace_rows(origin, impossible, dirt_mod.impossible_date_strings(rng, impossible.size, years))

    columns: dict[str, pa.Array] = {
        "person_guid": guid,
        "ref": ref,
        "first_name": first_arr,
        "last_name": last_arr,
        "email": email,
        "origin_date": origin,
        "origin_source": source,
        "college_of_interest": _dict_strings(w.college, list(COLLEGES)),
        "application_created": application,
        "tags": tags,
    }
    if rates.extra_columns:
        list_rows = w.group == list(GROUPS).index("list")
        legacy = np.where(list_rows & (rng.random(n) < 0.3), rng.integers(0, 60, n), -1)
        columns["legacy_source_code"] = _dict_strings(legacy, [f"LSC-{i:03d}" for i in range(60)])
        nick = np.where(rng.random(n) < 0.05, first, -1)
        columns["nickname"] = _dict_strings(nick, [name[:3] + "y" for name in FIRST_NAMES])
        counts["extra_columns"] = len(EXTRA_COLUMNS)
    else:
        counts["extra_columns"] = 0
    columns["_created"] = pa.array(w.created.astype("datetime64[us]"))
    columns["_app_created"] = pa.array(np.where(applied, app_us, np.iinfo(np.int64).min).astype("datetime64[us]"))
    hist = simulate_person_history(
        hist_rng, w.created, end_us, w.label, w.college, tag_codes, len(labels), len(COLLEGES), rates
    )
    counts.update(hist.counts)
    changed = pa.array(hist.changed_us != NEVER)
    columns["_changed"] = pa.array(hist.changed_us.astype("datetime64[us]"))
    columns["_new_origin_source"] = pc.if_else(
        pa.array(hist.new_label != w.label), _dict_strings(hist.new_label, labels), source
    )
    columns["_new_college_of_interest"] = pc.if_else(
        changed, _dict_strings(hist.new_college, list(COLLEGES)), columns["college_of_interest"]
    )
    columns["_new_tags"] = pc.if_else(changed, _dict_strings(hist.new_tag, ["test", "vip"]), tags)
    columns["_gone"] = pa.array(hist.gone_us.astype("datetime64[us]"))
    survivor = pa.array(np.where(hist.merged_into >= 0, hist.merged_into, 0))
    columns["_merged_into"] = pc.if_else(
        pa.array(hist.merged_into >= 0), guid.take(survivor), pa.scalar(None, guid.type)
    )

    table = pa.table(columns)
    dup = dirt_mod.pick(rng, n, rates.duplicate_rows)
    counts["duplicate_rows"] = int(dup.size)
    if dup.size:
        table = pa.concat_tables([table, table.take(pa.array(dup))])  # copies go last: no reshuffle of all rows
    is_test = np.zeros(n, dtype=bool)
    is_test[test_rows] = True
    return table.to_pandas(), counts, is_test, hist


def _interactions_wire(
    rng: np.random.Generator,
    ev: _Events,
    vocab: list[str],
    guid: np.ndarray,
    end_us: int,
    rates: DirtRates,
    hist: PersonHistory,
    hist_rng: np.random.Generator,
) -> tuple[pd.DataFrame, dict[str, int]]:
    lead = np.concatenate(ev.lead)
    t_us = np.concatenate(ev.t_us)
    kind = np.concatenate(ev.kind)
    detail = np.concatenate(ev.detail)
    for parts in (ev.lead, ev.t_us, ev.kind, ev.detail):
        parts.clear()  # free the per-kind pieces before the string columns are built
    keep = t_us < end_us
    lead, t_us, kind, detail = lead[keep], t_us[keep], kind[keep], detail[keep]
    t_us -= t_us % 1_000_000
    m = lead.size
    counts: dict[str, int] = {}
    kinds = list(INTERACTION_KINDS)
    unknown = dirt_mod.pick(rng, m, rates.unknown_kinds)
    counts["unknown_kinds"] = int(unknown.size)
    kind_codes = kind.astype(np.int32)
    kind_codes[unknown] = len(kinds) + rng.integers(0, len(dirt_mod.UNKNOWN_KINDS), unknown.size)
    detail[unknown] = -1
    occurred = iso_seconds(t_us)
    bad = dirt_mod.pick(rng, m, rates.interaction_bad_dates)
    counts["interaction_bad_dates"] = int(bad.size)
    years = t_us[bad].astype("datetime64[us]").astype("datetime64[Y]").astype(int) + 1970
    bad_values = dirt_mod.impossible_date_strings(rng, bad.size, years)
    bad_values = [None if rng.random() < 0.5 else v for v in bad_values]
    occurred = dirt_mod.replace_rows(occurred, bad, bad_values)
    arrived, counts["late_interactions"] = late_arrivals(hist_rng, t_us, rates.late_interactions)
    survivor = hist.merged_into[lead]
    merged = survivor >= 0
    table = pa.table(
        {
            "interaction_guid": uuid4_array(rng, m),
            "person_guid": fixed_width_array(guid[lead]),
            "kind": _dict_strings(kind_codes, [*kinds, *dirt_mod.UNKNOWN_KINDS]),
            "detail": _dict_strings(detail, vocab),
            "occurred": occurred,
            "_occurred": pa.array(t_us.astype("datetime64[us]")),
            "_arrived": pa.array(arrived.astype("datetime64[us]")),
            "_person_gone": pa.array(hist.gone_us[lead].astype("datetime64[us]")),
            "_merged_into": fixed_width_array(guid[np.where(merged, survivor, 0)], valid=merged),
        }
    )
    dup = dirt_mod.pick(rng, m, rates.interaction_duplicates)
    counts["interaction_duplicates"] = int(dup.size)
    if dup.size:
        table = pa.concat_tables([table, table.take(pa.array(dup))])
    return table.to_pandas(), counts


def generate(config: GeneratorConfig) -> SandboxData:
    """Simulate the sandbox described by ``config``.

    Args:
        config: size, seed, time window, dirt rates.
    Returns:
        SandboxData with the leads and interactions wire tables (plus hidden ``_`` columns), the truth table
        (one row per person: hazard parameters, latent interest, true application time) and meta.
    Raises:
        ValueError: invalid configuration (raised by GeneratorConfig).
    """
    rng = np.random.default_rng(config.seed)
    end_us = int(np.datetime64(config.end, "us").astype(np.int64))
    start_us = int(np.datetime64(config.start, "us").astype(np.int64))
    world = _simulate_leads(rng, config.leads, start_us, end_us)
    guid_chars = uuid4_chars(rng, config.leads)
    guid = fixed_width_array(guid_chars)
    events, vocab, email_stats = _simulate_interactions(rng, world, start_us, end_us, config.anticipation)
    hist_rng = np.random.default_rng([config.seed, 0x4157])  # its own stream: other draws do not move with its rates
    leads, lead_counts, is_test, hist = _leads_wire(rng, world, guid, end_us, config.dirt, hist_rng)
    interactions, inter_counts = _interactions_wire(rng, events, vocab, guid_chars, end_us, config.dirt, hist, hist_rng)
    del events
    labels = _source_labels()
    group_names = np.array(list(GROUPS))
    truth = pd.DataFrame(
        {
            "person_guid": guid.to_pandas(),
            "created": world.created.astype("datetime64[us]"),
            "source": pd.Series(np.array(labels, dtype=object)[world.label], dtype="str"),
            "source_group": pd.Series(group_names[world.group].astype(object), dtype="str"),
            "college": pd.Series(np.array([*COLLEGES, None], dtype=object)[world.college], dtype="str"),
            "z": world.z,
            "eta": world.eta,
            "a1": world.a1,
            "tau1": world.tau1,
            "a2": world.a2,
            "tau2": world.tau2,
            "true_app_time": np.where(np.isfinite(world.app_age), world.app_us, np.iinfo(np.int64).min).astype(
                "datetime64[us]"
            ),
            "is_test": is_test,
        }
    )
    meta = _meta(config, world, leads, interactions, lead_counts | inter_counts, email_stats, end_us)
    return SandboxData(leads=leads, interactions=interactions, truth=truth, meta=meta)


def _meta(
    config: GeneratorConfig,
    w: _Leads,
    leads: pd.DataFrame,
    interactions: pd.DataFrame,
    counts: dict[str, int],
    email_stats: dict[str, Any],
    end_us: int,
) -> dict[str, Any]:
    n = w.z.size
    within_year = w.app_age <= CALIBRATION_DAYS
    within_h = w.app_age <= config.horizon_days
    group_names = list(GROUPS)
    by_group = {
        g: float(within_year[w.group == i].mean()) if (w.group == i).any() else None for i, g in enumerate(group_names)
    }
    base_rows = {"lead": n, "interaction": len(interactions) - counts["interaction_duplicates"]}
    realized = {
        "conversion_within_365d": float(within_year.mean()),
        "conversion_within_365d_by_group": by_group,
        f"conversion_within_{config.horizon_days}d": float(within_h.mean()),
        "share_of_first_year_conversions_within_30d": float((w.app_age <= 30).sum() / max(within_year.sum(), 1)),
        "applied_by_end": float((w.app_us[np.isfinite(w.app_age)] < end_us).sum() / n),
        "source_group_shares": {g: float((w.group == i).mean()) for i, g in enumerate(group_names)},
        "college_missing_share": float((w.college < 0).mean()),
        "interactions_by_kind": {str(k): int(v) for k, v in interactions["kind"].value_counts().sort_index().items()},
        **email_stats,
        "dirt_rates": {
            name: (c / base_rows["interaction"] if name.startswith(("interaction_", "unknown_", "late_")) else c / n)
            for name, c in counts.items()
            if name != "extra_columns"
        },
    }
    return {
        "seed": config.seed,
        "leads": n,
        "lead_rows": len(leads),
        "interaction_rows": len(interactions),
        "start": pd.Timestamp(config.start).isoformat(),
        "end": pd.Timestamp(config.end).isoformat(),
        "horizon_days": config.horizon_days,
        "config": config.as_dict(),
        "dirt_counts": counts,
        "extra_columns": list(EXTRA_COLUMNS) if config.dirt.extra_columns else [],
        "realized": realized,
        "url_kinds": {kind: [f"{URL_BASE}{p}" for p in paths] for kind, paths in URLS.items()},
        "hazard": {
            "beta_z": BETA_Z,
            "fast_share": FAST_SHARE,
            "tau2_days": TAU2,
            "targets_within_365d": {g: v["conversion"] for g, v in GROUPS.items()},
        },
    }


# --- files -----------------------------------------------------------------------------------------------------
_DICTIONARY_COLUMNS = frozenset(
    {"kind", "detail", "origin_source", "college_of_interest", "tags", "first_name", "last_name", "nickname"}
    | {"legacy_source_code", "source", "source_group", "college"}
)


def write_sandbox(data: SandboxData, out_dir: Path) -> None:
    """Write the sandbox's four files into ``out_dir`` (created if needed), each to a temporary name then renamed.

    Args:
        data: the generated sandbox.
        out_dir: target folder; existing files of the same names are replaced.
    Raises:
        OSError: the folder cannot be created or written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = {"leads.parquet": data.leads, "interactions.parquet": data.interactions, "truth.parquet": data.truth}
    tmp_paths: list[tuple[Path, Path]] = []
    for name, frame in frames.items():
        tmp = out_dir / f".{name}.tmp"
        # dictionary-encode only the low-cardinality columns: trying it on GUIDs and timestamps is slow and useless
        frame.to_parquet(tmp, index=False, use_dictionary=[c for c in frame.columns if c in _DICTIONARY_COLUMNS])
        tmp_paths.append((tmp, out_dir / name))
    tmp = out_dir / ".meta.json.tmp"
    tmp.write_text(json.dumps(data.meta, indent=2, sort_keys=True), encoding="utf-8")
    tmp_paths.append((tmp, out_dir / "meta.json"))
    for src, dst in tmp_paths:  # meta.json last: its presence marks a complete sandbox
        os.replace(src, dst)


def read_sandbox(out_dir: Path) -> SandboxData:
    """Read a sandbox written by :func:`write_sandbox`.

    Args:
        out_dir: the folder holding leads.parquet, interactions.parquet, truth.parquet and meta.json.
    Returns:
        SandboxData equal to the one written.
    Raises:
        FileNotFoundError: a file is missing (names the file; run `python -m leadscore sandbox generate`).
    """
    out_dir = Path(out_dir)
    missing = [name for name in FILES if not (out_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"sandbox folder {out_dir} lacks {missing}; "
            f"create it with `python -m leadscore sandbox generate --out {out_dir}`"
        )
    return SandboxData(
        leads=pd.read_parquet(out_dir / "leads.parquet"),
        interactions=pd.read_parquet(out_dir / "interactions.parquet"),
        truth=pd.read_parquet(out_dir / "truth.parquet"),
        meta=json.loads((out_dir / "meta.json").read_text(encoding="utf-8")),
    )


def generate_command(leads: int, seed: int, out: Path, end: datetime | None = None) -> dict[str, Any]:
    """Generate a sandbox and write it to ``out`` (the body of `python -m leadscore sandbox generate`).

    Args:
        leads: number of persons.
        seed: random seed.
        out: output folder.
        end: end of the simulated history (tz-naive UTC); None means the most recent Monday 00:00 UTC before today.
    Returns:
        The meta dict written to ``out/meta.json``.
    Raises:
        ValueError: invalid arguments.
    """
    config = (
        GeneratorConfig(leads=leads, seed=seed) if end is None else GeneratorConfig(leads=leads, seed=seed, end=end)
    )
    data = generate(config)
    write_sandbox(data, out)
    return data.meta
