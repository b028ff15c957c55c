"""monitor_week end to end on synthetic weeks: history, statuses, the report's content, the two-week AUC rule."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.monitoring import MonitoringGateError, MonitoringInputError, check_gates, load_thresholds, monitor_week
from leadscore.monitoring.history import read_history
from leadscore.settings import Settings
from tests.monitoring.synthetic import build_weeks, weekly_dates, write_week

H = 7


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    settings = Settings(home=tmp_path_factory.mktemp("mon"), horizon_days=H)
    weeks = weekly_dates(date(2025, 1, 5), 3)
    leads, ref, feats = build_weeks(settings, weeks, n=1200, shift_last=0.5, horizon=H)
    results = [monitor_week(settings, w, feats[w], ref, leads=leads) for w in weeks]
    return {"settings": settings, "weeks": weeks, "leads": leads, "ref": ref, "feats": feats, "results": results}


def test_statuses_and_history(run: dict) -> None:
    results = run["results"]
    assert [r.status for r in results[:2]] == ["ok", "ok"]
    last = results[-1]
    assert last.status == "failed"  # the drifted e-mail features move the score past PSI 0.25
    assert any("score PSI" in m for m in last.failures)
    assert any("feature(s) drifted past PSI 0.10" in m for m in last.warnings)
    history = read_history(run["settings"].reports_dir / "history.parquet")
    assert list(history["scored_on"]) == [w.isoformat() for w in run["weeks"]]
    assert pd.isna(history.loc[0, "realized_auc"])  # nothing was 7 days old yet
    assert history.loc[1, "realized_scored_on"] == run["weeks"][0].isoformat()
    assert 0.75 < history.loc[2, "realized_auc"] < 0.95
    assert list(history["status"]) == ["ok", "ok", "failed"]
    assert list(history["tier_A"]) == [60, 60, 60]


def test_rerun_replaces_the_week(run: dict) -> None:
    s, w = run["settings"], run["weeks"][1]
    again = monitor_week(s, w, run["feats"][w], run["ref"], leads=run["leads"])
    history = read_history(s.reports_dir / "history.parquet")
    assert len(history) == 3
    assert again.metrics["realized"]["lag1"]["auc"] == run["results"][1].metrics["realized"]["lag1"]["auc"]


def test_report_content(run: dict) -> None:
    result = run["results"][-1]
    page = result.report_path.read_text(encoding="utf-8")
    assert result.report_path.name == "weekly_20250119.html"
    assert "<title>LeadScore weekly report 2025-01-19</title>" in page
    summary = result.metrics["summary"]
    assert summary[0] == "Week of 2025-01-19: status FAILED (1 failure(s), 1 warning(s))."
    for line in summary:
        assert line.replace("'", "&#x27;") in page
    auc = result.metrics["realized"]["lag1"]["auc"]
    assert f"realized AUC {auc:.3f} on 1,200 leads" in page
    assert f"Score PSI {result.metrics['score_psi']:.3f}" in page
    for section in (
        "Alerts",
        "This week&#x27;s scores",
        "Realized performance",
        "Drift against the training reference",
        "What drives the champion",
        "History",
    ):
        assert f"<h2>{section}</h2>" in page, section
    images = re.findall(r'<img src="(data:image/png;base64,[A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 6  # score dist, tiers, realized over time, calibration, drifting features, hazard ratios
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no external assets


def test_first_week_report_says_no_realized_yet(run: dict) -> None:
    page = run["results"][0].report_path.read_text(encoding="utf-8")
    assert "No realized performance yet: no scored week is at least 7 days old." in page
    assert 'id="no-realized"' in page


def test_two_weeks_of_low_auc_fail_the_gate(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, horizon_days=H)
    weeks = weekly_dates(date(2025, 3, 2), 3)
    leads, ref, feats = build_weeks(settings, weeks, n=1500, seed=5, informative=False, horizon=H)
    statuses = []
    for w in weeks:
        result = monitor_week(settings, w, feats[w], ref, leads=leads)
        statuses.append(result.status)
        if w == weeks[1]:
            assert "below the floor 0.65 this week" in result.warnings[0]
            check_gates(result, load_thresholds())  # one week below: warning only
    assert statuses == ["ok", "warning", "failed"]
    with pytest.raises(MonitoringGateError, match=r"realized AUC below the floor 0\.65 for 2 weeks in a row"):
        check_gates(result, load_thresholds())


def test_without_reference_or_features(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, horizon_days=H)
    weeks = weekly_dates(date(2025, 3, 2), 1)
    leads, ref, feats = build_weeks(settings, weeks, n=300, horizon=H)
    no_ref = monitor_week(settings, weeks[0], feats[weeks[0]], None, leads=leads)
    assert no_ref.status == "warning" and "no training reference profile" in no_ref.warnings[0]
    no_feats = monitor_week(settings, weeks[0], None, ref, leads=leads)
    assert "feature_psi" not in no_feats.metrics and "score_psi" in no_feats.metrics
    assert "No feature rows were kept for this week" in no_feats.report_path.read_text(encoding="utf-8")
    with pytest.raises(MonitoringInputError, match="no scores for 2025-03-09"):
        monitor_week(settings, date(2025, 3, 9), None, ref, leads=leads)


def test_weekly_report_shows_the_best_contact_list(tmp_path: Path) -> None:
    # value 100, cost 8 (break-even 0.08): contacts are worth 42, 22, 2, -3, -6; the control lead (p 0.9) is skipped
    settings = Settings(home=tmp_path, horizon_days=H, counselor_capacity=10, application_value=100, contact_cost=8)
    day = date(2025, 1, 5)
    p = np.array([0.05, 0.5, 0.02, 0.3, 0.1, 0.9])
    write_week(settings.scores_dir, day, p, [f"g{i}" for i in range(6)], control=np.array([0, 0, 0, 0, 0, 1]))
    result = monitor_week(settings, day, None, None, leads=pd.DataFrame())
    plan = result.metrics["contact_plan"]
    assert (plan["list_size"], plan["cutoff"], plan["limited_by"]) == (3, 0.1, "break-even")
    assert plan["expected_net_value"] == pytest.approx(66)
    page = result.report_path.read_text(encoding="utf-8")
    assert "<h2>Who to contact this week</h2>" in page
    assert "the best list within 10 contacts is the top 3 leads, down to probability 10.00 %" in page
    assert "expected net value 66" in page
