"""The markdown model card of a training run (intended use, data, metrics beside the ceiling, effects, limitations),
and the training facts it and the run's params show, with secret-looking keys dropped."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from leadscore.model.evaluate import METRIC_NAMES
from leadscore.settings import Settings

if TYPE_CHECKING:  # training (and matplotlib through its plots) is not needed to load and serve a champion
    from leadscore.model.training_result import TrainingResult

_SECRET_KEY = re.compile(r"pass|secret|token|key|auth|credential|conn", re.IGNORECASE)


def safe_info(info: dict[str, Any]) -> dict[str, str]:
    """Training info as params, with any secret-looking key dropped (secrets must never reach MLflow)."""
    return {f"data.{k}": str(v)[:500] for k, v in info.items() if not _SECRET_KEY.search(str(k))}


def model_card(result: TrainingResult, settings: Settings, training_info: dict[str, Any]) -> str:
    """A markdown model card: intended use, data, metrics beside the ceiling, effects, limitations."""
    cols = [m for m in METRIC_NAMES if m not in ("positives", "top_decile_precision")]  # the card stays narrow
    table = result.evaluation[cols].round(4).reset_index()
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in table.itertuples(index=False))
    info = "\n".join(f"- {k}: {v}" for k, v in safe_info(training_info).items())
    counts = "\n".join(f"- {k}: {v}" for k, v in result.counts.items())
    effects = "\n".join(f"- {s}" for s in result.sentences) or "- (no effect passed the strength threshold)"
    refit = result.refit
    served = (
        f"The served model is the chosen candidate refitted with its chosen hyper-parameters on every landmark whose "
        f"{result.horizon_days}-day label is observed: {refit.get('rows')} rows from {refit.get('window_start')} to "
        f"{refit.get('window_end')}. The metrics below are the training-block fit's, on the holdout."
        if refit
        else "The served model is the training-block fit."
    )
    skipped = "".join(f"\n- skipped **{k}**: {v}" for k, v in result.skipped.items())
    recal = "".join(
        f"\n- {k}: recalibrated ({r['method']}, cross-fitted on the holdout's time halves)"
        for k, r in result.recalibration.items()
        if r.get("method")
    )
    return f"""# Model card: {settings.model_name} ({result.chosen})

## Intended use
Ranks recent, still-open Slate leads by the probability that they start an application within
{result.horizon_days} days of the scoring date, so counselors can prioritise outreach. Scores are conditional on the
lead having no application at the scoring date. Not for decisions about admission, aid or eligibility.

## Data
Landmark rows (lead x lead-age landmark while still open), features as of each landmark. Candidates fitted on
landmarks before {result.split_time}, evaluated on the later block (never seen in fitting, H-day gap), training date
{result.as_of}. {served}
{info}
{counts}

## Candidates and choice
Chosen: **{result.chosen}** (best holdout log loss; the Cox model is preferred within
{settings.survival_preference}). Cox penalty: penalizer={result.cox_params.get("penalizer")},
l1_ratio={result.cox_params.get("l1_ratio")}. "ceiling" is the sandbox generator's true probability (only on
sandbox data): no model can beat it in expectation.
{skipped}
{recal}

{header}{body}
## Strong effects (Cox model, other things equal)
{effects}

## Limitations
- Trained on one institution's history; source mix, mailings and the admission cycle change, so watch drift and
  realized performance weekly.
- Hazard-ratio confidence intervals treat the landmark rows of one lead as independent and are penalized: read them
  as approximate.
- Effects are associations, not the effect of an intervention: calling a lead is not the same as the lead calling.
- Leads older than the largest landmark are extrapolated.
"""
