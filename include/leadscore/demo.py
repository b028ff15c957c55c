"""`make demo`: the whole weekly job on embedded defaults, against a sandbox Slate, with a summary at the end.

Generates a sandbox Slate (once), serves it on 127.0.0.1 for the duration, runs the real DAGs with `airflow dags
test` (SQLite metadata and MLflow store under LEADSCORE_HOME): lead_data -> lead_training -> lead_inference for the
latest complete week, lets the sandbox's importer pick the files up, stops everything and prints what happened.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from leadscore.intervals import week_ending_on_or_before
from leadscore.local_run import airflow_env, dags_test, ensure_airflow_db, require_champion
from leadscore.run_log import read_summary
from leadscore.settings import Settings


def _step(n: int, total: int, text: str) -> None:
    print(f"[{n}/{total}] {text}", flush=True)


def run(settings: Settings, leads: int | None = None, seed: int | None = None) -> int:
    """Run the demo; returns the exit code. Raises AirflowRunError naming the failing DAG and its log."""
    from leadscore.sandbox.commands import ensure_generated
    from leadscore.sandbox.config import read_meta
    from leadscore.sandbox.serve import start_sandbox

    started = time.monotonic()
    total = 6
    log_dir = settings.home_abs / "logs" / "demo"
    n_leads = leads or settings.sandbox_leads
    _step(1, total, f"sandbox Slate: {n_leads:,} leads, seed {seed or settings.sandbox_seed} in {settings.sandbox_dir}")
    now = datetime.now(UTC).replace(tzinfo=None)
    generated = ensure_generated(
        settings.sandbox_dir, n_leads, seed or settings.sandbox_seed, end=week_ending_on_or_before(now).end
    )
    meta = read_meta(settings.sandbox_dir)
    week = week_ending_on_or_before(datetime.fromisoformat(str(meta["end"])))
    print(
        f"      {'generated' if generated else 'reused'}; its 'now' is {week.end:%Y-%m-%d}; week {week.start:%Y-%m-%d} -> {week.end:%Y-%m-%d}"
    )

    with start_sandbox(
        settings.sandbox_dir, key_order=settings.sandbox_key_order, timezone=settings.sandbox_zone
    ) as sandbox:
        print(f"      web service {sandbox.web_url}  SFTP 127.0.0.1:{sandbox.sftp_port} (host key pinned)")
        env = airflow_env(settings, sandbox.connection_uris())
        env["LEADSCORE_START_DATE"] = min(settings.start_date, week.start.date().isoformat())
        _step(2, total, "Airflow metadata database (SQLite) ...")
        ensure_airflow_db(env, log_dir)
        _step(3, total, "lead_data: extract, validate, quarantine, store ...")
        secs = dags_test("lead_data", week.end, env, log_dir)
        print(f"      done in {secs:.0f} s")
        _step(4, total, "lead_training: landmark rows, Cox + challengers, MLflow, gate ...")
        secs = dags_test("lead_training", week.end, env, log_dir)
        print(f"      done in {secs:.0f} s")
        require_champion(settings)
        _step(5, total, "lead_inference: score, write chunks, deliver over SFTP, monitor ...")
        secs = dags_test("lead_inference", week.end, env, log_dir)
        print(f"      done in {secs:.0f} s")
        imported = sandbox.importer.poll()
    _step(6, total, "sandbox stopped; summary")
    print(summary_text(settings, week.key, imported, time.monotonic() - started))
    return 0


def summary_text(settings: Settings, week_key: str, imported: list, seconds: float) -> str:
    """The demo's closing summary from the steps' run summaries."""
    lines = ["", "=" * 72, "LeadScore demo summary", "=" * 72]
    ex = read_summary(settings, "extract", week_key) or {}
    tr = read_summary(settings, "training", "latest") or {}
    sc = read_summary(settings, "scoring", week_key) or {}
    dl = read_summary(settings, "delivery", week_key) or {}
    mo = read_summary(settings, "monitoring", week_key) or {}
    for q in ("leads", "interactions"):
        info = ex.get(q) or {}
        lines.append(
            f"extract  {q:<13} rows in {info.get('rows_in', '?'):>9,}  kept {info.get('rows_out', '?'):>9,}  "
            f"quarantined {info.get('quarantined', '?'):>6,}  {json.dumps(info.get('quarantined_by_reason', {}))}"
        )
    if tr:
        lines.append(f"training model {tr.get('chosen')} v{tr.get('version')}  gate: {tr.get('gate')}")
        for name, m in (tr.get("holdout") or {}).items():
            lines.append(
                f"         {name:<10} AUC {m.get('auc', float('nan')):.3f}  log loss {m.get('log_loss', float('nan')):.4f}  Brier {m.get('brier', float('nan')):.4f}"
            )
    if sc:
        lines.append(
            f"scoring  {sc.get('scored', 0):,} open leads as of {sc.get('scored_on')}  by tier {json.dumps(sc.get('tiers', {}))}"
        )
        lines.append(f"         files: {sc.get('files')} in {sc.get('out_dir')}")
    if dl:
        lines.append(f"delivery sent {dl.get('sent')} skipped {dl.get('skipped')} to {dl.get('remote_dir')}")
    rows_imported = sum(getattr(r, "rows", 0) for r in imported)
    lines.append(f"Slate    importer picked up {len(imported)} file(s), {rows_imported:,} rows")
    if mo:
        lines.append(f"monitor  {mo.get('status')}  report: {mo.get('report')}")
    lines += [
        "",
        f"where to look: scores {settings.scores_dir}",
        f"               reports {settings.reports_dir}",
        "               MLflow UI: make mlflow  (then http://127.0.0.1:5000)",
        "               Airflow UI: make airflow",
        f"finished in {seconds:.0f} s",
    ]
    return "\n".join(lines)
