"""The training insight report: Kaplan–Meier conversion, outreach plan on known cases, and the page's content."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.monitoring import training_insight_report
from leadscore.monitoring.insight import InsightInputError, km_conversion, outreach_plan
from leadscore.settings import Settings
from tests.monitoring.synthetic import hazard_table, make_features, true_probability


class TruthModel:
    horizon_days = 30

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        assert list(features.columns) == list(FEATURE_COLUMNS)
        return true_probability(features)


def test_km_without_censoring_is_the_empirical_share() -> None:
    conv = km_conversion(np.array([1.0, 2.0, 3.0, 10.0]), np.array([True, True, True, True]), (2, 7, 30))
    assert conv == {2: pytest.approx(0.5), 7: pytest.approx(0.75), 30: pytest.approx(1.0)}
    censored = km_conversion(np.array([1.0, 5.0, 5.0, 10.0]), np.array([True, False, False, True]), (7,))
    assert censored[7] == pytest.approx(0.25)


def test_outreach_plan_known_case() -> None:
    plan = outreach_plan(np.array([0.1, 0.5, 0.1, 0.3]), pool=4, capacity=2)
    assert plan.expected_total == pytest.approx(1.0)
    assert plan.expected_at_capacity == pytest.approx(0.8)
    assert plan.k_above_average == 2 and plan.best_k == 2
    scaled = outreach_plan(np.array([0.1, 0.5, 0.1, 0.3]), pool=8, capacity=2)  # each sampled lead stands for 2
    assert scaled.expected_at_capacity == pytest.approx(1.0) and scaled.expected_total == pytest.approx(2.0)
    capped = outreach_plan(np.array([0.1, 0.5, 0.1, 0.3]), pool=4, capacity=4)
    assert capped.best_k == 2  # leads 3 and 4 are below the average lead: calling them is not the best use
    with pytest.raises(InsightInputError, match="positive pool and capacity"):
        outreach_plan(np.array([0.1]), pool=0, capacity=1)


def _rows(n: int = 1500, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = make_features(n, rng)
    f["days_as_lead"] = rng.choice([0, 7, 30], n).astype(float)
    rate = np.where(f["source"] == "Inquiry", 0.02, 0.004)
    t = rng.exponential(1 / rate)
    f["duration"] = np.minimum(t, 200.0)
    f["event"] = t < 200.0
    f["person_guid"] = pd.array([f"g{i:05d}" for i in range(n)], dtype="string")
    return f


def test_insight_report_content(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, horizon_days=30, landmark_days=(0, 7, 30))
    out = training_insight_report(
        settings, _rows(), hazard_table(), TruthModel(), tmp_path / "insight.html", capacity=100, weekly_pool=1000
    )
    page = out.read_text(encoding="utf-8")
    assert "<title>LeadScore training insight</title>" in page
    for section in (
        "What drives applications",
        "Conversion by source",
        "Conversion by lead age",
        "Best weekly outreach list size",
    ):
        assert f"<h2>{section}</h2>" in page, section
    assert "Leads with 6 e-mails opened (90th percentile) apply at 3.3× the rate of leads with 3 (median)" in page
    assert "Best source: Inquiry" in page  # Inquiry converts about 5× faster in the synthetic data
    m = re.search(
        r"With 100 calls a week out of about 1,000 open leads, the top 100 by score hold ([\d.]+) expected "
        r"applications, ([\d.]+) % of all ([\d.]+); best weekly list size: ([\d,]+)\.",
        page,
    )
    assert m, "outreach summary missing"
    captured, share, total = float(m.group(1)), float(m.group(2)), float(m.group(3))
    assert 0 < captured < total and share == pytest.approx(100 * captured / total, abs=0.1)
    assert share > 10  # the top 10 % by true probability hold more than 10 % of expected applications
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 4
    with pytest.raises(InsightInputError, match="lack \\['duration'\\]"):
        training_insight_report(settings, _rows().drop(columns=["duration"]), None, TruthModel(), tmp_path / "x.html")


def test_outreach_plan_with_economics_maximises_net_value() -> None:
    # value 100, cost 8: break-even 0.08; contacts are worth 42, 22, 2, -3 in order of probability
    plan = outreach_plan(np.array([0.05, 0.5, 0.1, 0.3]), pool=4, capacity=4, application_value=100, contact_cost=8)
    assert plan.best_k == 3 and plan.contact.cutoff == 0.1
    assert plan.contact.expected_net_value == pytest.approx(66)
    row = plan.table.set_index("list size k").loc[3]
    assert row["expected net value"] == pytest.approx(66)


def test_insight_report_shows_the_best_contact_list(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, horizon_days=30, landmark_days=(0, 7, 30), application_value=400, contact_cost=20
    )
    page = training_insight_report(
        settings, _rows(), hazard_table(), TruthModel(), tmp_path / "insight.html", weekly_pool=1000
    ).read_text(encoding="utf-8")
    m = re.search(
        r"the best list within 200 contacts is the top ([\d,]+) leads, down to probability ([\d.]+) %: ([\d.]+) "
        r"expected applications, expected net value (-?[\d,]+)",
        page,
    )
    assert m, "contact list sentence missing"
    assert "break-even probability 5.0 %" in page
    assert float(m.group(2)) > 5.0  # the last lead on the list is above break-even
