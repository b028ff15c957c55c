"""Typed settings with embedded defaults, overridable by environment variables.

Every setting has a default that makes a local run work with no configuration. An environment variable named
``LEADSCORE_<FIELD>`` (upper case) overrides the default; DAG params override both for a single run. Secrets are
never settings: they live only in the Airflow Connections ``slate_api`` and ``slate_sftp``.
"""

from __future__ import annotations

import dataclasses
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path


class SettingsError(ValueError):
    """A setting's environment variable holds a value that cannot be parsed or is out of range."""


def _bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false, 1/0, yes/no or on/off")


def _tuple_of_ints(raw: str) -> tuple[int, ...]:
    return tuple(int(part) for part in raw.replace(" ", "").split(",") if part)


def _tuple_of_floats(raw: str) -> tuple[float, ...]:
    return tuple(float(part) for part in raw.replace(" ", "").split(",") if part)


@dataclass(frozen=True)
class Settings:
    """All tunable settings of LeadScore. Field docs double as the README's settings table."""

    home: Path = field(
        default=Path(".leadscore"),
        metadata={"doc": "Runtime state: Airflow home, MLflow store, extracts, scores, reports, sandbox"},
    )
    horizon_days: int = field(
        default=30, metadata={"doc": "H: predict an application start within H days of the scoring date"}
    )
    lookback_days: int = field(
        default=365,
        metadata={"doc": "Score leads whose first origin is at most this many days before the scoring date"},
    )
    chunk_rows: int = field(default=10_000, metadata={"doc": "Maximum data rows per score file"})
    chunk_bytes: int = field(default=5_000_000, metadata={"doc": "Maximum bytes per score file"})
    page_size: int = field(
        default=10_000, metadata={"doc": "Rows requested per web-service page (Slate vendors cap near 10,000)"}
    )
    quarantine_max_share: float = field(
        default=0.02, metadata={"doc": "Fail the data run when more than this share of rows is quarantined"}
    )
    extract_overlap_days: int = field(
        default=14,
        metadata={
            "doc": "Each weekly pull re-reads this many days before its week, so records that reach Slate late "
            "(backdated imports, activities logged days after) are still stored"
        },
    )
    landmark_days: tuple[int, ...] = field(
        default=(0, 1, 3, 7, 14, 30, 60, 90, 180, 270),
        metadata={"doc": "Lead-age landmarks (days) of the training rows"},
    )
    training_window_days: int = field(
        default=3 * 365,
        metadata={"doc": "Train on leads whose first origin falls in this many days before the training date"},
    )
    training_max_leads: int = field(
        default=200_000,
        metadata={
            "doc": "Train on a seeded uniform random sample of this many leads when the training window holds more "
            "(sampled by lead, so every landmark row of a sampled lead is kept; 0: no cap)"
        },
    )
    tier_cuts: tuple[float, ...] = field(
        default=(0.05, 0.20, 0.50), metadata={"doc": "Cumulative top shares of tiers A, B, C (the rest is D)"}
    )
    min_scored_leads: int = field(
        default=100, metadata={"doc": "Refuse to deliver when fewer leads than this are scored"}
    )
    max_tier_change_share: float = field(
        default=0.60,
        metadata={"doc": "Refuse to deliver when more than this share of leads changed tier since last week"},
    )
    gate_tolerance: float = field(
        default=0.005,
        metadata={
            "doc": "A challenger may be this much worse in holdout log loss than the champion and still be promoted"
        },
    )
    gate_min_auc: float = field(default=0.70, metadata={"doc": "Absolute holdout AUC floor for promotion"})
    survival_preference: float = field(
        default=0.005,
        metadata={
            "doc": "Prefer the Cox model when its holdout log loss is within this share of the best candidate's "
            "(0.005: 0.5 %)"
        },
    )
    min_training_leads: int = field(
        default=1_000,
        metadata={
            "doc": "Refuse to train on fewer leads in the training window (Salesforce Einstein asks for 1,000 leads)"
        },
    )
    min_training_applications: int = field(
        default=120,
        metadata={
            "doc": "Refuse to train on fewer leads with an application (Salesforce Einstein asks for 120 conversions)"
        },
    )
    min_history_months: int = field(
        default=6,
        metadata={
            "doc": "Refuse to train on fewer months of lead history (a training block, an H-day gap and a holdout)"
        },
    )
    gate_calibration_slope: tuple[float, ...] = field(
        default=(0.8, 1.25),
        metadata={"doc": "Promote only when the holdout calibration slope lies within these bounds (1 is ideal)"},
    )
    gate_calibration_intercept: float = field(
        default=0.25,
        metadata={"doc": "Promote only when the holdout calibration intercept (log-odds, 0 is ideal) is within ±this"},
    )
    recalibration_min_gain: float = field(
        default=0.0005,
        metadata={"doc": "Recalibrate a candidate (Platt or isotonic) only when it lowers holdout log loss this much"},
    )
    control_share: float = field(
        default=0.0, metadata={"doc": "Seeded random share of scored leads flagged as control (treated as unscored)"}
    )
    counselor_capacity: int = field(
        default=200, metadata={"doc": "Contacts the counselors can make per week: the contact list's upper bound"}
    )
    application_value: float = field(
        default=500.0, metadata={"doc": "Value of one started application (same currency as contact_cost)"}
    )
    contact_cost: float = field(default=25.0, metadata={"doc": "Cost of one counselor contact"})
    contact_flag: bool = field(
        default=False,
        metadata={
            "doc": "Add a contact_this_week column (1/0) to the score file: the week's best contact list within "
            "counselor_capacity (off: the file's columns are exactly the contract's)"
        },
    )
    delivery_retries: int = field(default=3, metadata={"doc": "Attempts per score-file chunk on SFTP errors"})
    sftp_timeout: float = field(
        default=120.0,
        metadata={"doc": "Seconds each SFTP step (connect, login, open, each read or write) may wait for the server"},
    )
    remote_dir: str = field(
        default="/incoming/lead_scores", metadata={"doc": "SFTP folder Slate's Source Format watches"}
    )
    ledger_conn_id: str = field(
        default="",
        metadata={
            "doc": "Airflow Connection (PostgreSQL) of the shared delivery ledger and per-week lock, for workers on "
            "several hosts; empty keeps both in files under home"
        },
    )
    mlflow_tracking_uri: str = field(
        default="", metadata={"doc": "MLflow tracking URI; empty means a SQLite store under home"}
    )
    model_name: str = field(default="lead_propensity", metadata={"doc": "Registered model name in MLflow"})
    start_date: str = field(
        default="2026-11-02",
        metadata={"doc": "First week the weekly DAGs schedule (catch-up starts here): set it to your go-live Monday"},
    )
    task_retries: int = field(default=2, metadata={"doc": "Retries of a failed DAG task before it fails and alerts"})
    retry_delay_seconds: int = field(
        default=300, metadata={"doc": "Seconds before a task's first retry (doubling for each further retry)"}
    )
    sensor_poke_seconds: int = field(
        default=30,
        metadata={
            "doc": "Seconds between a waiting task's checks (extract landed, champion registered), made by the triggerer"
        },
    )
    slate_timezone: str = field(
        default="UTC",
        metadata={
            "doc": "IANA time zone of the Slate instance (e.g. America/New_York): since/until are sent as its wall "
            "time and naive stamps read in it"
        },
    )
    sandbox_timezone: str = field(
        default="",
        metadata={"doc": "Time zone the sandbox Slate emulates; empty means the same as LEADSCORE_SLATE_TIMEZONE"},
    )
    sandbox_leads: int = field(default=20_000, metadata={"doc": "Leads the demo's sandbox generates"})
    sandbox_seed: int = field(default=7, metadata={"doc": "Seed of the demo's sandbox generator"})
    sandbox_key_order: str = field(
        default="sqlserver",
        metadata={"doc": "How the sandbox's web service orders GUID keys: sqlserver (as Slate) or text"},
    )

    @property
    def home_abs(self) -> Path:
        """The runtime home as an absolute path."""
        return self.home.expanduser().resolve()

    @property
    def extracts_dir(self) -> Path:
        return self.home_abs / "extracts"

    @property
    def quarantine_dir(self) -> Path:
        return self.home_abs / "quarantine"

    @property
    def scores_dir(self) -> Path:
        return self.home_abs / "scores"

    @property
    def reports_dir(self) -> Path:
        return self.home_abs / "reports"

    @property
    def sandbox_dir(self) -> Path:
        return self.home_abs / "sandbox"

    @property
    def airflow_home(self) -> Path:
        return self.home_abs / "airflow"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI: the configured one, else a SQLite store under home."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.home_abs / 'mlflow' / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str | None:
        """Where MLflow stores artifacts of experiments LeadScore creates: a folder under home with the local SQLite
        store; None with a tracking server, which then stores and serves them itself (``--serve-artifacts``)."""
        if self.tracking_uri.startswith(("http://", "https://")):
            return None
        return (self.home_abs / "mlflow" / "artifacts").as_uri()

    @property
    def sandbox_zone(self) -> str:
        """The time zone the sandbox emulates: ``sandbox_timezone``, else ``slate_timezone``."""
        return self.sandbox_timezone or self.slate_timezone

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (e.g. from DAG params)."""
        return dataclasses.replace(self, **changes)


def _parse(variable: str, annotation: str, raw: str) -> object:
    try:
        if annotation == "Path":
            return Path(raw)
        if annotation == "int":
            return int(raw.replace("_", ""))
        if annotation == "float":
            return float(raw)
        if annotation == "bool":
            return _bool(raw)
        if annotation == "tuple[int, ...]":
            return _tuple_of_ints(raw)
        if annotation == "tuple[float, ...]":
            return _tuple_of_floats(raw)
        return raw
    except ValueError as exc:
        raise SettingsError(f"{variable}={raw!r} is not a valid {annotation}: {exc}") from exc


def env_overrides(cls: type, prefix: str, environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Typed values of a settings dataclass's fields from ``<prefix><FIELD>`` environment variables.

    Args:
        cls: a dataclass whose field types are Path, int, float, str or tuples of int/float.
        prefix: e.g. ``LEADSCORE_`` or ``LEADSCORE_MON_``.
        environ: the environment to read (default ``os.environ``); empty values count as unset.
    Returns:
        {field name: parsed value} for the variables that are set.
    Raises:
        SettingsError: a value does not parse; the message names the variable.
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in fields(cls):
        name = f"{prefix}{f.name.upper()}"
        raw = env.get(name)
        if raw is not None and raw != "":
            values[f.name] = _parse(name, str(f.type), raw)
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from defaults overridden by ``LEADSCORE_*`` environment variables.

    Args:
        environ: the environment to read (default ``os.environ``).
    Returns:
        A frozen Settings.
    Raises:
        SettingsError: a variable cannot be parsed or a value is out of range.
    """
    settings = Settings(**env_overrides(Settings, "LEADSCORE_", environ))
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if s.horizon_days <= 0:
        raise SettingsError(f"LEADSCORE_HORIZON_DAYS must be positive, got {s.horizon_days}")
    if s.chunk_rows <= 0 or s.chunk_bytes < 1024:
        raise SettingsError("LEADSCORE_CHUNK_ROWS must be positive and LEADSCORE_CHUNK_BYTES at least 1024")
    if not 0 <= s.quarantine_max_share <= 1:
        raise SettingsError(f"LEADSCORE_QUARANTINE_MAX_SHARE must be in [0, 1], got {s.quarantine_max_share}")
    if (
        len(s.tier_cuts) != 3
        or list(s.tier_cuts) != sorted(s.tier_cuts)
        or not 0 < s.tier_cuts[0] < s.tier_cuts[-1] < 1
    ):
        raise SettingsError(f"LEADSCORE_TIER_CUTS must be three increasing shares in (0, 1), got {s.tier_cuts}")
    if s.training_max_leads < 0 or 0 < s.training_max_leads < s.min_training_leads:
        raise SettingsError(
            f"LEADSCORE_TRAINING_MAX_LEADS must be 0 (no cap) or at least LEADSCORE_MIN_TRAINING_LEADS "
            f"({s.min_training_leads}), got {s.training_max_leads}"
        )
    if min(s.min_training_leads, s.min_training_applications, s.min_history_months) < 0:
        raise SettingsError("LEADSCORE_MIN_TRAINING_LEADS, _APPLICATIONS and LEADSCORE_MIN_HISTORY_MONTHS must be >= 0")
    lo_hi = s.gate_calibration_slope
    if len(lo_hi) != 2 or not 0 < lo_hi[0] < 1 < lo_hi[1]:
        raise SettingsError(f"LEADSCORE_GATE_CALIBRATION_SLOPE must be two bounds lo < 1 < hi (lo > 0), got {lo_hi}")
    if s.gate_calibration_intercept <= 0:
        raise SettingsError(
            f"LEADSCORE_GATE_CALIBRATION_INTERCEPT must be positive, got {s.gate_calibration_intercept}"
        )
    if s.sftp_timeout <= 0:
        raise SettingsError(f"LEADSCORE_SFTP_TIMEOUT must be positive seconds, got {s.sftp_timeout}")
    if not 0 <= s.control_share < 1:
        raise SettingsError(f"LEADSCORE_CONTROL_SHARE must be in [0, 1), got {s.control_share}")
    if s.counselor_capacity < 0 or s.contact_cost < 0 or not s.application_value > 0:
        raise SettingsError(
            "LEADSCORE_COUNSELOR_CAPACITY and LEADSCORE_CONTACT_COST must be >= 0 and LEADSCORE_APPLICATION_VALUE > 0, "
            f"got {s.counselor_capacity}, {s.contact_cost} and {s.application_value}"
        )
    try:
        date.fromisoformat(s.start_date)
    except ValueError as exc:
        raise SettingsError(f"LEADSCORE_START_DATE={s.start_date!r} is not an ISO date (YYYY-MM-DD)") from exc
    if not 0 <= s.extract_overlap_days <= 366:
        raise SettingsError(f"LEADSCORE_EXTRACT_OVERLAP_DAYS must be in 0..366, got {s.extract_overlap_days}")
    if s.task_retries < 0 or s.retry_delay_seconds < 1:
        raise SettingsError("LEADSCORE_TASK_RETRIES must be >= 0 and LEADSCORE_RETRY_DELAY_SECONDS at least 1")
    if s.sensor_poke_seconds < 1:
        raise SettingsError(f"LEADSCORE_SENSOR_POKE_SECONDS must be at least 1, got {s.sensor_poke_seconds}")
    if s.sandbox_key_order not in ("sqlserver", "text"):
        raise SettingsError(f"LEADSCORE_SANDBOX_KEY_ORDER must be sqlserver or text, got {s.sandbox_key_order!r}")
    for variable, name in (
        ("LEADSCORE_SLATE_TIMEZONE", s.slate_timezone),
        ("LEADSCORE_SANDBOX_TIMEZONE", s.sandbox_zone),
    ):
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise SettingsError(
                f"{variable}={name!r} is not an IANA time zone name; set it to the Slate instance's zone, e.g. "
                "America/New_York, America/Chicago, America/Los_Angeles or UTC"
            ) from None
    if s.page_size <= 0 or s.page_size > 10_000:
        raise SettingsError(f"LEADSCORE_PAGE_SIZE must be in 1..10000 (Slate's row cap), got {s.page_size}")
