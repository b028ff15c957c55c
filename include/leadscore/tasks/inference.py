"""The `lead_inference` steps: wait for the week's extract, score with the champion, deliver, monitor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from leadscore.intervals import Interval
from leadscore.run_log import jsonable, write_summary
from leadscore.settings import Settings

log = logging.getLogger(__name__)


def extract_ready(settings: Settings, interval: Interval) -> bool:
    """True when `lead_data` has stored both queries' extracts for ``interval`` (or a later one covering it)."""
    from leadscore.data.store import ExtractStore

    store = ExtractStore(settings.extracts_dir)
    for query in ("leads", "interactions"):
        latest = store.latest_end(query)
        if latest is None or latest < interval.end:
            log.info("waiting: the %s extract ends at %s, this week ends at %s", query, latest, interval.end)
            return False
    return True


def champion_ready(settings: Settings) -> bool:
    """True when a model version carries the `champion` alias (an alias look-up: the model is not loaded)."""
    from leadscore.model.registry import has_champion

    if has_champion(settings):
        return True
    log.info(
        "waiting: no %s@champion in %s yet (lead_training registers one)", settings.model_name, settings.tracking_uri
    )
    return False


def score_week(settings: Settings, interval: Interval) -> dict[str, Any]:
    """Score the recent open leads as of the interval end with the champion of that week and write the chunked score
    files. The champion is the version that held ``@champion`` for the week (``model.champions``), so a re-run or a
    backfill of a week writes the file the week had.

    Returns:
        A summary: scored_on, model_version, scored count, tiers, the manifest path, files.
    Raises:
        NoChampionError: no model has the `champion` alias (run lead_training first); its subclass
            NoChampionForWeekError when the week ended before the first champion took effect.
        ModelSignatureError: the champion expects other features than the data layer produces.
        ScoreValidationError / DeliverySafetyError: probabilities out of range, too few leads, too many tier changes.
    """
    import pandas as pd

    from leadscore.data.store import ExtractStore
    from leadscore.scoring.files import previous_manifest, read_scores, write_score_files
    from leadscore.scoring.safety import check_delivery_safety
    from leadscore.scoring.score import score_leads
    from leadscore.scoring.select import select_leads
    from leadscore.slate.delivery import ledger_for

    store = ExtractStore(settings.extracts_dir)
    as_of = pd.Timestamp(interval.end)
    # A model that fails to load stops the run before anything is written (never deliver from it).
    champion, leads, features = week_inputs(
        store, as_of, settings.lookback_days, lambda: _week_champion(settings, interval.end)
    )
    selected = select_leads(features, leads, as_of, settings.lookback_days)
    scores = score_leads(champion.model, selected, champion.version, interval.end_date, settings)
    # The week's delivery lock: a delivery of this week running elsewhere finishes before its files are replaced.
    with ledger_for(settings).lock(interval.end_date.isoformat(), timeout=600.0):
        previous = previous_manifest(settings.scores_dir, interval.end_date)
        safety = check_delivery_safety(scores, read_scores(previous) if previous else None, settings)
        _save_features(settings, interval, selected)
        manifest = write_score_files(
            scores, settings.scores_dir, interval.end_date, settings.chunk_rows, settings.chunk_bytes
        )
    tiers = scores["lead_tier"].value_counts().sort_index()
    summary = {
        "scored_on": interval.end_date.isoformat(),
        "interval": interval.as_dict(),
        "key": interval.key,
        "model_version": champion.version,
        "model_kind": getattr(champion.model, "kind", None),
        "open_recent_leads": len(features),
        "scored": len(scores),
        "control": int(scores["control"].sum()) if "control" in scores else 0,
        "tiers": {str(k): int(v) for k, v in tiers.items()},
        "tier_change_share": safety.tier_change_share,
        "manifest": str(manifest.directory / "manifest.json"),
        "out_dir": str(manifest.directory),
        "files": [f.name for f in manifest.files],
        "rows": manifest.rows,
    }
    write_summary(settings, "scoring", interval.key, summary)
    log.info(
        "scored %d leads as of %s with %s: %s", len(scores), summary["scored_on"], champion.version, summary["tiers"]
    )
    return summary


def _week_champion(settings: Settings, week_end: Any) -> Any:
    """``model.registry.champion_for_week``, imported here: scikit-learn, lifelines and MLflow then load in the
    champion's thread (seconds of one core) while the extracts are read."""
    from leadscore.model.registry import champion_for_week

    return champion_for_week(settings, week_end)


def week_inputs(
    store: Any,
    as_of: Any,
    lookback_days: int,
    load_champion: Callable[[], Any],
    lap: Callable[[str], None] | None = None,
) -> tuple[Any, Any, Any]:
    """The week's champion, the leads known at ``as_of`` and the features of the open leads inside the lookback.

    The champion loads in a background thread while the extracts are read (its imports and MLflow look-ups take
    seconds of one core while DuckDB reads on both); it is waited for before returning, and its error (e.g.
    NoChampionError) is raised then, after the reads and before anything is written.

    Args:
        store: the ExtractStore. as_of: the week's end. lookback_days: only leads that originated within it get
            features. load_champion: loads the model (``champion_for_week``). lap: called with a phase name after
            each phase (the benchmark's timer).
    Returns:
        (champion, leads as ``read_all(LEADS, as_of)`` gives them, features of the recent open leads).
    """
    import pandas as pd

    from leadscore.data.events import stored_interactions
    from leadscore.data.features import features_as_of
    from leadscore.data.lead_reader import read_leads

    lap = lap or (lambda name: None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="champion") as pool:
        pending = pool.submit(load_champion)
        # What was known at the week's end: a backfill gives the scores that week had; merged-away and deleted
        # persons are left out. Only leads inside the lookback can be scored: features for them alone. Their
        # interactions are read from the Parquet extracts as numbers (data.events), never as a frame.
        leads = read_leads(store, as_of)
        lap("read_leads")
        recent = leads[leads["origin_date"] >= as_of - pd.Timedelta(days=lookback_days)].reset_index(drop=True)
        features = features_as_of(recent, stored_interactions(store, as_of), as_of)
        lap("features_as_of")
        champion = pending.result()
        lap("load_champion_wait")
    return champion, leads, features


def features_path(settings: Settings, interval: Interval):
    """Where the week's scored feature rows are kept for drift monitoring."""
    return settings.home_abs / "features" / f"{interval.key}.parquet"


def _save_features(settings: Settings, interval: Interval, selected) -> None:
    import io

    from leadscore.files import atomic_write_bytes

    buf = io.BytesIO()
    selected.to_parquet(buf, index=False)
    atomic_write_bytes(features_path(settings, interval), buf.getvalue())


def deliver_week(settings: Settings, scored: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    """Push the week's score files to Slate's SFTP (`.part` + rename, size verified, ledger), or only check in dry run."""
    from pathlib import Path

    from leadscore.scoring.files import read_manifest
    from leadscore.slate.delivery import deliver

    manifest = read_manifest(Path(scored["manifest"]))
    report = deliver(manifest, settings, dry_run=dry_run)
    summary = {
        **jsonable(report),
        "scored_on": scored["scored_on"],
        "dry_run": dry_run,
        "remote_dir": settings.remote_dir,
    }
    write_summary(settings, "delivery", scored["key"], summary)
    return summary


def monitor_week(settings: Settings, interval: Interval, delivered: dict[str, Any]) -> dict[str, Any]:
    """Realized performance of past scores, drift against the champion's training reference, the weekly report.

    Raises:
        MonitoringGateError: a failure bound is passed (the delivery already happened; the team must look).
    """
    from leadscore.tasks.monitoring import run_weekly_monitoring

    return run_weekly_monitoring(settings, interval, delivered)
