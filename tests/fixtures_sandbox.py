"""Sandbox fixtures (servers on 127.0.0.1, generated data) shared by the tests.

``sandbox_data_dir`` is generated once per session (about 3,000 leads, seed 11, end 2026-11-23) with the real
generator when ``leadscore.sandbox.generator`` imports, else with ``build_sandbox_frames`` below, which follows the
same file contract. ``sandbox`` is one running SandboxHandle for the whole session; faults, the request log and the
SFTP folders are reset before every test that uses it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SANDBOX_LEADS = 3_000
SANDBOX_SEED = 11
SANDBOX_END = datetime(2026, 11, 23)
USE_REAL_GENERATOR = True  # False builds the small local frames instead (same file contract)


def build_sandbox_frames(
    n_leads: int, seed: int, end: datetime, interactions_per_lead: int = 8
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Small leads and interactions frames in the generator's file contract (wire strings + hidden times).

    Includes the dirt the servers must cope with: duplicate persons, NULLs, an unexpected extra column.
    """
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=3 * 365)
    span_s = int((end - start).total_seconds())
    guids = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n_leads)]
    created = pd.to_datetime(start) + pd.to_timedelta(rng.integers(0, span_s, size=n_leads), unit="s")
    applies = rng.random(n_leads) < 0.3
    app = created + pd.to_timedelta(rng.integers(3600, 120 * 86400, size=n_leads), unit="s")
    app = pd.Series(app.astype("datetime64[us]")).where(applies)
    wire = "%Y-%m-%dT%H:%M:%S"
    leads = pd.DataFrame(
        {
            "person_guid": guids,
            "ref": [str(100000 + i) for i in range(n_leads)],
            "first_name": pd.Series(["Ada"] * n_leads).where(rng.random(n_leads) > 0.1),
            "last_name": "Lovelace",
            "email": [f"p{i}@example.org" for i in range(n_leads)],
            "origin_date": created.strftime(wire),
            "origin_source": rng.choice(["Source", "Vendor Lead", "Biology Inquiry"], size=n_leads),
            "college_of_interest": pd.Series(rng.choice(["Arts", "Science"], size=n_leads)).where(
                rng.random(n_leads) > 0.17
            ),
            "application_created": app.dt.strftime(wire),
            "tags": pd.Series(["test"] * n_leads).where(rng.random(n_leads) < 0.01),
            "legacy_code": "X",
            "_created": created.astype("datetime64[us]"),
            "_app_created": app,
        }
    )
    dups = leads.sample(n=max(1, n_leads // 100), random_state=seed)
    leads = pd.concat([leads, dups], ignore_index=True)
    for col in [c for c in leads.columns if not c.startswith("_")]:
        leads[col] = leads[col].astype("string")
    n_int = n_leads * interactions_per_lead
    who = rng.integers(0, n_leads, size=n_int)
    occurred = created.to_numpy()[who] + pd.to_timedelta(rng.integers(0, 200 * 86400, size=n_int), unit="s").to_numpy()
    occurred = occurred[occurred < np.datetime64(end)]
    who = who[: len(occurred)]
    n_int = len(occurred)
    interactions = pd.DataFrame(
        {
            "interaction_guid": [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n_int)],
            "person_guid": np.asarray(guids, dtype=object)[who],
            "kind": rng.choice(["email_sent", "email_open", "ping"], size=n_int),
            "detail": pd.Series(rng.choice(["Fall mailing", "https://x.edu/apply"], size=n_int)).where(
                rng.random(n_int) > 0.05
            ),
            "occurred": pd.Series(occurred).dt.strftime(wire),
            "_occurred": pd.Series(occurred).astype("datetime64[us]"),
        }
    )
    for col in ["interaction_guid", "person_guid", "kind", "detail", "occurred"]:
        interactions[col] = interactions[col].astype("string")
    return leads, interactions


def write_sandbox_dir(data_dir: Path, n_leads: int, seed: int, end: datetime) -> Path:
    """Write a sandbox data dir: the real generator when importable, else build_sandbox_frames."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if USE_REAL_GENERATOR and importlib.util.find_spec("leadscore.sandbox.generator") is not None:
        from leadscore.sandbox import generator

        if hasattr(generator, "generate") and hasattr(generator, "write_sandbox"):
            data = generator.generate(generator.GeneratorConfig(leads=n_leads, seed=seed, end=end))
            generator.write_sandbox(data, data_dir)
            return data_dir
    leads, interactions = build_sandbox_frames(n_leads, seed, end)
    leads.to_parquet(data_dir / "leads.parquet", index=False)
    interactions.to_parquet(data_dir / "interactions.parquet", index=False)
    pd.DataFrame({"person_guid": leads["person_guid"].drop_duplicates()}).to_parquet(
        data_dir / "truth.parquet", index=False
    )
    (data_dir / "meta.json").write_text(json.dumps({"end": end.isoformat(), "seed": seed, "leads": n_leads}))
    return data_dir


@pytest.fixture(scope="session")
def sandbox_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated sandbox data dir (about 3,000 leads, seed 11, end 2026-11-23), shared by the session."""
    return write_sandbox_dir(tmp_path_factory.mktemp("sandbox") / "data", SANDBOX_LEADS, SANDBOX_SEED, SANDBOX_END)


@pytest.fixture(scope="session")
def sandbox_session(sandbox_data_dir: Path) -> Iterator[object]:
    """The running sandbox (web service, SFTP server, importer without background polling) for the session."""
    from leadscore.sandbox.serve import start_sandbox

    with start_sandbox(sandbox_data_dir) as handle:
        yield handle


@pytest.fixture(scope="session")
def sandbox_text_order(sandbox_data_dir: Path) -> Iterator[object]:
    """A second sandbox over the same data whose web service serves text key order (the switch; the default is SQL
    Server's order, as Slate). Tests clear its request log themselves."""
    from leadscore.sandbox.serve import start_sandbox

    with start_sandbox(sandbox_data_dir, key_order="text") as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_session: object) -> Iterator[object]:
    """The session's sandbox with faults cleared, the request log emptied and the SFTP folders emptied."""
    reset_sandbox(sandbox_session)
    yield sandbox_session
    reset_sandbox(sandbox_session)


def reset_sandbox(handle: object) -> None:
    """Clear faults, the request log, the SFTP folders, the importer's log and its stored fields."""
    from leadscore.sandbox.config import SFTP_FOLDERS

    handle.web.faults.clear()  # type: ignore[attr-defined]
    handle.web.clear_request_log()  # type: ignore[attr-defined]
    handle.sftp.faults.clear()  # type: ignore[attr-defined]
    root = handle.paths.sftp_root  # type: ignore[attr-defined]
    for folder in SFTP_FOLDERS:
        d = root / folder
        for child in d.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    handle.importer.reset()  # type: ignore[attr-defined]


@contextlib.contextmanager
def web_service_in_zone(data_dir: Path, zone: str, wire: object = None) -> Iterator[tuple[object, object]]:
    """The sandbox's query web service over ``data_dir`` as an instance in time zone ``zone``.

    Yields (QueryWebService, SlateApiConfig reaching it); ``wire`` defaults to the WireDirt recorded in meta.json.
    """
    from leadscore.sandbox.config import load_or_create_credentials, read_meta
    from leadscore.sandbox.serve import wire_dirt_of
    from leadscore.sandbox.webservice import QueryWebService, build_tables
    from leadscore.slate.connections import QueryAuth, SlateApiConfig

    meta = read_meta(data_dir)
    tables = build_tables(
        pd.read_parquet(data_dir / "leads.parquet"), pd.read_parquet(data_dir / "interactions.parquet"), timezone=zone
    )
    creds = load_or_create_credentials(data_dir)
    web = QueryWebService(
        tables, creds, meta["end"], timezone=zone, wire=wire_dirt_of(meta) if wire is None else wire
    ).start()
    config = SlateApiConfig(
        base_url=web.url,
        username=creds.service_user,
        password=creds.service_password,
        queries={name: QueryAuth(q.id, q.h) for name, q in creds.queries.items()},
        max_retries=0,
    )
    try:
        yield web, config
    finally:
        web.stop()
