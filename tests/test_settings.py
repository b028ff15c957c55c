"""Settings: defaults, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.settings import Settings, SettingsError, load_settings
from leadscore.settings_table import markdown_table


def test_defaults_without_environment():
    s = load_settings({})
    assert s == Settings()
    assert s.horizon_days == 30 and s.chunk_rows == 10_000 and s.lookback_days == 365
    assert s.tracking_uri.startswith("sqlite:///") and s.tracking_uri.endswith("mlflow/mlflow.db")


def test_environment_overrides_are_typed():
    s = load_settings(
        {
            "LEADSCORE_HOME": "/tmp/x",
            "LEADSCORE_HORIZON_DAYS": "14",
            "LEADSCORE_TIER_CUTS": "0.1, 0.3, 0.6",
            "LEADSCORE_LANDMARK_DAYS": "0,7,30",
            "LEADSCORE_CONTROL_SHARE": "0.05",
        }
    )
    assert s.home == Path("/tmp/x") and s.horizon_days == 14
    assert s.tier_cuts == (0.1, 0.3, 0.6) and s.landmark_days == (0, 7, 30) and s.control_share == 0.05


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("LEADSCORE_HORIZON_DAYS", "thirty", "LEADSCORE_HORIZON_DAYS='thirty'"),
        ("LEADSCORE_HORIZON_DAYS", "0", "must be positive"),
        ("LEADSCORE_TIER_CUTS", "0.5,0.2,0.1", "three increasing shares"),
        ("LEADSCORE_QUARANTINE_MAX_SHARE", "1.5", "in [0, 1]"),
        ("LEADSCORE_TRAINING_MAX_LEADS", "500", "at least LEADSCORE_MIN_TRAINING_LEADS (1000)"),
        ("LEADSCORE_SLATE_TIMEZONE", "Eastern", "not an IANA time zone name"),
        ("LEADSCORE_SLATE_TIMEZONE", "America/New York", "e.g. America/New_York"),
        ("LEADSCORE_SANDBOX_TIMEZONE", "America", "LEADSCORE_SANDBOX_TIMEZONE='America'"),
    ],
)
def test_bad_values_name_the_variable(var, value, fragment):
    with pytest.raises(SettingsError, match=None) as err:
        load_settings({var: value})
    assert fragment in str(err.value)


def test_readme_settings_table_lists_every_setting():
    table = markdown_table()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for line in table.splitlines()[2:]:
        var = line.split("`")[1]
        assert var in readme, f"README lacks setting {var}"


def test_time_zones_default_to_utc_and_the_sandbox_follows_the_instance():
    assert Settings().slate_timezone == "UTC" == Settings().sandbox_zone
    settings = load_settings({"LEADSCORE_SLATE_TIMEZONE": "America/Chicago"})
    assert settings.slate_timezone == "America/Chicago" == settings.sandbox_zone
    both = load_settings({"LEADSCORE_SLATE_TIMEZONE": "America/Chicago", "LEADSCORE_SANDBOX_TIMEZONE": "UTC"})
    assert both.sandbox_zone == "UTC"
