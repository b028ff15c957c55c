"""The feature path alone at scale, for a machine where the full pipeline's extract does not fit in time or memory.

``prepare`` writes the generator's interactions (``<work>/home/sandbox/interactions.parquet``) as one full-history
interval of a store (contract columns, ``first_seen`` = when it occurred, known kinds only, row group by row group:
no validation, no HTTP) and the generator's leads as a cleaned-like leads frame; ``features`` then runs, in a fresh
process, ``features_as_of`` over every open lead with the interactions read from that store (``data.events``), and
reports wall and CPU time per phase and the peak RSS. The rows differ slightly from an extract's (no cleaning of the
sandbox's dirt), the work per row is the same.

Usage: ``python bench/features_scale.py prepare|features WORK`` (WORK: a ``bench/scale.py`` size folder).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from bench.common import load_average, peak_rss_mb


def _end(work: Path) -> str:
    return json.loads((work / "home" / "sandbox" / "meta.json").read_text())["end"]


def prepare(work: Path) -> dict:
    """Write ``<work>/features_store`` (one interval) and ``<work>/features_leads.parquet``; returns row counts."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from leadscore.data.store import ExtractStore
    from leadscore.slate.queries import INTERACTION_KINDS

    end = pd.Timestamp(_end(work))
    store = ExtractStore(work / "features_store" / "extracts")
    path = store.path("interactions", end - pd.Timedelta(days=7 * 200), end)
    path.parent.mkdir(parents=True, exist_ok=True)
    src = pq.ParquetFile(work / "home" / "sandbox" / "interactions.parquet")
    rows = 0
    with pq.ParquetWriter(path, _schema(pa), compression="zstd", use_dictionary=True, write_statistics=True) as w:
        for group in range(src.num_row_groups):
            t = src.read_row_group(group, columns=["interaction_guid", "person_guid", "kind", "detail", "_occurred"])
            occurred = pc.cast(t.column("_occurred"), pa.timestamp("us"))
            keep = pc.and_(pc.is_in(t.column("kind"), pa.array(list(INTERACTION_KINDS))), pc.less(occurred, end))
            keep = pc.and_(keep, pc.is_valid(occurred))
            out = pa.table(
                {
                    "interaction_guid": t.column("interaction_guid"),
                    "person_guid": t.column("person_guid"),
                    "kind": t.column("kind"),
                    "detail": t.column("detail"),
                    "occurred": occurred,
                    "first_seen": occurred,
                }
            ).filter(keep)
            w.write_table(out.cast(_schema(pa)))
            rows += out.num_rows
    raw = pd.read_parquet(work / "home" / "sandbox" / "leads.parquet")
    leads = pd.DataFrame(
        {
            "person_guid": raw["person_guid"].astype("string"),
            "ref": pd.Series(pd.NA, index=raw.index, dtype="Int64"),
            "origin_date": raw["_created"].astype("datetime64[us]"),
            "source": raw["origin_source"].fillna("Unknown").astype("string"),
            "college": raw["college_of_interest"].astype("string"),
            "application_created": raw["_app_created"].astype("datetime64[us]"),
            "is_test": raw["tags"].fillna("").str.contains("test").astype(bool),
            "updated": raw["_created"].astype("datetime64[us]"),
        }
    ).drop_duplicates("person_guid")
    leads = leads[leads["origin_date"] < end].reset_index(drop=True)
    leads.to_parquet(work / "features_leads.parquet", index=False)
    return {"interaction_rows": rows, "leads": len(leads)}


def _schema(pa):  # type: ignore[no-untyped-def]
    return pa.schema(
        [
            ("interaction_guid", pa.large_string()),
            ("person_guid", pa.large_string()),
            ("kind", pa.large_string()),
            ("detail", pa.large_string()),
            ("occurred", pa.timestamp("us")),
            ("first_seen", pa.timestamp("us")),
        ]
    )


def features(work: Path) -> dict:
    """features_as_of over every open lead, interactions from the prepared store; phases in wall/CPU seconds."""
    import pandas as pd

    from leadscore.data.events import stored_interactions
    from leadscore.data.features import features_as_of
    from leadscore.data.store import ExtractStore

    end = pd.Timestamp(_end(work))
    t, c = time.perf_counter(), time.process_time()
    leads = pd.read_parquet(work / "features_leads.parquet")
    read_s = (round(time.perf_counter() - t, 2), round(time.process_time() - c, 2))
    t, c = time.perf_counter(), time.process_time()
    out = features_as_of(leads, stored_interactions(ExtractStore(work / "features_store" / "extracts"), end), end)
    return {
        "open_leads": len(out),
        "read_leads_wall_cpu_s": read_s,
        "features_wall_s": round(time.perf_counter() - t, 2),
        "features_cpu_s": round(time.process_time() - c, 2),
        "peak_rss_mib": peak_rss_mb(),
        "load_average_after": load_average(),
    }


def collect(works: list[Path]) -> Path:
    """Write the ``features_scale`` result (``bench/results[/full]/features_scale.json``) from each WORK's
    ``features_prepare.json`` and ``features_<n>.json``; returns the path written."""
    from bench.common import write_result

    sizes = {}
    for work in works:
        n = int(work.name.removeprefix("leads_"))
        got = json.loads(next(work.glob("features_1*.json")).read_text())
        sizes[str(n)] = {**json.loads((work / "features_prepare.json").read_text()), **got}
    top = max(sizes, key=int)
    m = sizes[top]
    summary = (
        f"{int(top):,} leads: features_as_of over {m['open_leads']:,} open leads from {m['interaction_rows']:,} "
        f"stored interactions {m['features_wall_s']:.1f} s wall / {m['features_cpu_s']:.1f} s CPU / "
        f"{m['peak_rss_mib'] / 1024:.2f} GiB peak"
    )
    return write_result("features_scale", {"notes": [__doc__.split("\n\n")[1]], "sizes": sizes}, summary)


def main(argv: list[str]) -> int:
    """``prepare WORK``, ``features WORK [--profile FILE]`` (one JSON line) or ``collect WORK...``."""
    what, work = argv[0], Path(argv[1])
    if what == "collect":
        collect([Path(a) for a in argv[1:]])
        return 0
    if what == "prepare":
        print(json.dumps(prepare(work)))
        return 0
    profiler = None
    if "--profile" in argv:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.01)
        profiler.start()
    result = features(work)
    if profiler is not None:
        profiler.stop()
        Path(argv[argv.index("--profile") + 1]).write_text(profiler.output_text(unicode=False, color=False))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
