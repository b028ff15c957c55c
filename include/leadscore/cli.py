"""`python -m leadscore ...`: the same steps as the DAGs, without Airflow, plus the sandbox, demo and tools.

Commands:
  sandbox generate   generate a sandbox Slate (seeded) into a folder
  sandbox serve      serve the sandbox's query web service and SFTP on 127.0.0.1 (foreground)
  extract / train / score / deliver
                     run one DAG step for a week without Airflow (connections from AIRFLOW_CONN_* variables);
                     deliver re-sends the week's existing score files (only what the ledger lacks)
  table fit / table score
                     try the model on a flat CSV or Parquet export
  demo               the whole job on embedded defaults (what `make demo` runs)
  airflow            `airflow standalone` on 127.0.0.1 with the sandbox running and connections set
  mlflow-ui          the MLflow UI on LeadScore's store
  backfill           data then inference for each week in a range, in order
  champion           show the champion, or move the alias to another version (roll back)
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m leadscore", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    sb = sub.add_parser("sandbox", help="the local Slate").add_subparsers(dest="sandbox_command", required=True)
    g = sb.add_parser("generate", help="generate a seeded sandbox Slate")
    g.add_argument("--leads", type=int, default=20_000)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--end", type=_date, default=None, help="the sandbox's 'now' (default: the most recent Monday)")
    s = sb.add_parser("serve", help="serve the web service and SFTP on 127.0.0.1 (foreground)")
    s.add_argument("--dir", type=Path, default=None, help="sandbox folder (default: LEADSCORE_HOME/sandbox)")
    s.add_argument("--web-port", type=int, default=18080)
    s.add_argument("--sftp-port", type=int, default=18022)
    s.add_argument("--leads", type=int, default=None, help="generate this many leads first when the folder is empty")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 only inside a container)")
    s.add_argument("--advertise-host", default=None, help="host name for the printed connection strings")
    s.add_argument(
        "--key-order",
        choices=("sqlserver", "text"),
        default=None,
        help="order of the GUID paging key: sqlserver (as Slate; default: LEADSCORE_SANDBOX_KEY_ORDER) or text",
    )

    for name, helptext in (("extract", "lead_data for one week"), ("score", "lead_inference for one week")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument(
            "--week-ending", type=_date, default=None, help="score/extract the week ending on or before this date"
        )
        if name == "score":
            c.add_argument("--dry-run", action="store_true")
    dl = sub.add_parser("deliver", help="deliver the week's existing score files (what the ledger lacks)")
    dl.add_argument("--week-ending", type=_date, default=None, help="the week ending on or before this date")
    t = sub.add_parser("train", help="lead_training as of a date")
    t.add_argument("--as-of", type=_date, default=None)

    tb = sub.add_parser("table", help="try the model on a flat export").add_subparsers(
        dest="table_command", required=True
    )
    tf = tb.add_parser("fit")
    tf.add_argument("--input", type=Path, required=True)
    tf.add_argument("--target", required=True)
    tf.add_argument("--id-col", default=None)
    tf.add_argument("--time-col", default=None)
    tf.add_argument("--drop", default="", help="comma-separated columns to ignore")
    tf.add_argument("--model-dir", type=Path, required=True)
    ts = tb.add_parser("score")
    ts.add_argument("--model-dir", type=Path, required=True)
    ts.add_argument("--input", type=Path, required=True)
    ts.add_argument("--id-col", required=True)
    ts.add_argument("--output", type=Path, required=True)

    ch = sub.add_parser("champion", help="show the champion model, or move the alias (roll back / forward)")
    ch.add_argument("--set", dest="set_version", default=None, metavar="VERSION", help="make this version the champion")
    ch.add_argument(
        "--from",
        dest="effective",
        type=_date,
        default=None,
        help="with --set: the version scores weeks ending from this date (default: after the last scored week); "
        "an earlier date changes the version of weeks already scored when they are re-run",
    )

    d = sub.add_parser("demo", help="generate, serve, run data -> training -> inference, summarize")
    d.add_argument("--leads", type=int, default=None)
    d.add_argument("--seed", type=int, default=None)
    a = sub.add_parser("airflow", help="airflow standalone with the sandbox")
    a.add_argument("--port", type=int, default=8080, help="the api-server's port (UI, REST and execution API)")
    a.add_argument("--sandbox-web-port", type=int, default=18080, help="the sandbox's web service port (0: any free)")
    a.add_argument("--sandbox-sftp-port", type=int, default=18022, help="the sandbox's SFTP port (0: any free)")
    m = sub.add_parser("mlflow-ui", help="serve the MLflow UI on LeadScore's store")
    m.add_argument("--port", type=int, default=5000)
    b = sub.add_parser("backfill", help="data then inference for each week in [FROM, TO], in order")
    b.add_argument("--from", dest="first", type=_date, required=True)
    b.add_argument("--to", dest="last", type=_date, required=True)
    b.add_argument("--dry-run", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    from leadscore.files import owner_only_umask

    owner_only_umask()
    from leadscore.settings import load_settings

    settings = load_settings()
    if args.command == "sandbox":
        from leadscore.sandbox import commands

        if args.sandbox_command == "generate":
            end = datetime.combine(args.end, datetime.min.time()) if args.end else None
            return commands.generate(args.leads, args.seed, args.out, end)
        return commands.serve(
            args.dir or settings.sandbox_dir,
            args.web_port,
            args.sftp_port,
            args.leads,
            settings,
            host=args.host,
            advertise_host=args.advertise_host,
            key_order=args.key_order,
        )
    if args.command in ("extract", "score", "train", "deliver"):
        from leadscore import local_run

        if args.command == "extract":
            return local_run.extract(settings, args.week_ending)
        if args.command == "score":
            return local_run.score(settings, args.week_ending, dry_run=args.dry_run)
        if args.command == "deliver":
            return local_run.deliver(settings, args.week_ending)
        return local_run.train(settings, args.as_of)
    if args.command == "table":
        from leadscore.model import flat_table

        if args.table_command == "fit":
            drop = [c for c in args.drop.split(",") if c]
            metrics = flat_table.fit_table(args.input, args.target, args.id_col, args.time_col, drop, args.model_dir)
            print(_pretty(metrics))
            return 0
        rows = flat_table.score_table(args.model_dir, args.input, args.id_col, args.output)
        print(f"scored {rows} rows -> {args.output}")
        return 0
    if args.command == "champion":
        from leadscore.model import registry

        if args.effective and not args.set_version:
            print("--from needs --set VERSION", file=sys.stderr)
            return 2
        if args.set_version:
            effective = datetime.combine(args.effective, datetime.min.time()) if args.effective else None
            registry.rollback(args.set_version, settings, effective=effective)
        champion = registry.load_champion(settings)
        print(
            f"{settings.model_name}@champion -> version {champion.version} ({champion.model.kind}, run {champion.run_id})"
        )
        history = registry.alias_history(settings)
        if history:
            print("alias history (moved at, version, scores weeks ending from, trained as of, by):")
        for e in history:
            print(
                f"  {e.promoted_at[:19]}  v{e.version:<4} {e.effective_from[:10]}  {e.as_of[:10] or '?':<10}  {e.reason}"
            )
        return 0
    if args.command == "demo":
        from leadscore import demo

        return demo.run(settings, leads=args.leads, seed=args.seed)
    if args.command == "airflow":
        from leadscore import local_run

        return local_run.airflow_standalone(settings, args.port, args.sandbox_web_port, args.sandbox_sftp_port)
    if args.command == "mlflow-ui":
        from leadscore import local_run

        return local_run.mlflow_ui(settings, args.port)
    if args.command == "backfill":
        from leadscore import local_run

        return local_run.backfill(settings, args.first, args.last, dry_run=args.dry_run)
    raise AssertionError(args.command)


def _pretty(obj: object) -> str:
    import json

    return json.dumps(obj, indent=2, default=str)


if __name__ == "__main__":
    sys.exit(main())
