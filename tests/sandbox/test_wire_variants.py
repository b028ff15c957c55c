"""The sandbox serves the value formats of real answers (WireDirt) and they change no validated value."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import requests

from leadscore.data.validate import validate
from leadscore.sandbox.config import SandboxError, load_or_create_credentials, read_meta
from leadscore.sandbox.dirt import DirtRates, WireDirt
from leadscore.sandbox.serve import wire_dirt_of
from leadscore.sandbox.webservice import QueryWebService, build_tables, render_rows
from leadscore.sandbox.wire_variants import BOOLEAN_EXTRA_COLUMN, apply_wire_dirt
from leadscore.slate.client import SlateClient
from leadscore.slate.connections import QueryAuth, SlateApiConfig
from leadscore.slate.queries import INTERACTIONS, LEADS

ZONE = "America/New_York"
HEAVY = WireDirt(**{name: 0.3 for name in WireDirt.__dataclass_fields__})
SINCE, UNTIL = pd.Timestamp("2026-03-01"), pd.Timestamp("2026-04-15")


@pytest.fixture(scope="module")
def services(sandbox_data_dir: Path) -> Any:
    """Two services over the same data and zone: one with heavy wire variants, one serving the stored form."""
    meta = read_meta(sandbox_data_dir)
    leads = pd.read_parquet(sandbox_data_dir / "leads.parquet")
    interactions = pd.read_parquet(sandbox_data_dir / "interactions.parquet")
    creds = load_or_create_credentials(sandbox_data_dir)
    tables = build_tables(leads, interactions, timezone=ZONE)
    out = {}
    for name, wire in (("heavy", HEAVY), ("clean", WireDirt.none())):
        web = QueryWebService(tables, creds, meta["end"], timezone=ZONE, wire=wire).start()
        config = SlateApiConfig(
            base_url=web.url,
            username=creds.service_user,
            password=creds.service_password,
            queries={q: QueryAuth(c.id, c.h) for q, c in creds.queries.items()},
            max_retries=0,
        )
        out[name] = (web, SlateClient(config))
    out["creds"] = creds
    yield out
    for name in ("heavy", "clean"):
        out[name][0].stop()


def raw_rows(services: Any, query: str, **params: str) -> tuple[bytes, list[dict]]:
    web = services["heavy"][0]
    q = services["creds"].queries[query]
    args = {"id": q.id, "h": q.h, "cmd": "service", "output": "json", **params}
    auth = (services["creds"].service_user, services["creds"].service_password)
    r = requests.get(web.url + "/manage/query/run", params=args, auth=auth, timeout=30)
    assert r.status_code == 200
    return r.content, r.json()["row"]


def test_every_variant_is_served(services: Any) -> None:
    body, leads = raw_rows(services, "leads", since="2026-01-01", until="2026-06-01", limit="5000")
    _, inter = raw_rows(services, "interactions", since=SINCE.isoformat(), until=UNTIL.isoformat(), limit="5000")
    values = [v for r in leads + inter for v in r.values()]
    strings = [v for v in values if isinstance(v, str)]
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.0{1,7})?Z", v) for v in strings)
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.0{1,7})?-0[45]:00", v) for v in strings)
    digits = {len(m.group(1)) for v in strings if (m := re.search(r"T\d\d:\d\d:\d\d\.(0+)", v))}
    assert digits == set(range(1, 8))
    assert any(re.fullmatch(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}", r["person_guid"]) for r in leads)
    assert any(r["person_guid"].startswith("{") for r in inter)
    assert not any(r["interaction_guid"].startswith("{") for r in inter)  # keys are never braced
    assert any(isinstance(r.get("ref"), int) for r in leads)
    assert {r[BOOLEAN_EXTRA_COLUMN] for r in leads if BOOLEAN_EXTRA_COLUMN in r} == {True, False}
    assert None in values and "" in values
    again, _ = raw_rows(services, "leads", since="2026-01-01", until="2026-06-01", limit="5000")
    assert again == body  # the same request gets the same answer


@pytest.mark.parametrize("query", [LEADS, INTERACTIONS], ids=lambda q: q.name)
def test_variants_validate_to_the_same_rows_as_the_stored_form(services: Any, query: Any) -> None:
    results = {}
    since = pd.Timestamp("2025-04-01") if query is LEADS else SINCE  # a year of leads, six weeks of interactions
    for name in ("heavy", "clean"):
        frame = services[name][1].fetch_all(query, since, UNTIL, 700, timezone=ZONE).frame
        results[name] = validate(query, frame, not_after=UNTIL, timezone=ZONE)
    heavy, clean = results["heavy"], results["clean"]
    assert heavy.rows_in == clean.rows_in > 900
    assert heavy.counts_by_reason == clean.counts_by_reason
    order = [query.key, *[c for c in query.column_names if c != query.key]]
    pd.testing.assert_frame_equal(
        heavy.valid.sort_values(order).reset_index(drop=True), clean.valid.sort_values(order).reset_index(drop=True)
    )
    extra = set(heavy.extra_columns) - set(clean.extra_columns)
    assert extra == ({BOOLEAN_EXTRA_COLUMN} if query is LEADS else set())


def test_defaults_are_modest_recorded_in_meta_and_none_turns_them_off(sandbox_data_dir: Path) -> None:
    wire = wire_dirt_of(read_meta(sandbox_data_dir))
    assert wire == WireDirt() and wire.any
    assert all(0 < getattr(wire, f) <= 0.02 for f in WireDirt.__dataclass_fields__)
    assert DirtRates.none().wire == WireDirt.none() and not WireDirt.none().any
    assert wire_dirt_of({"config": {}}) == WireDirt.none()
    with pytest.raises(SandboxError, match="regenerate the sandbox"):
        wire_dirt_of({"config": {"dirt": {"wire": {"emoji_guids": 0.1}}}})
    with pytest.raises(ValueError, match="offset_datetimes"):
        WireDirt(offset_datetimes=1.5)


def test_literal_cells_render_as_raw_json() -> None:
    columns = ["person_guid", "ref", "tags"]
    values = [pa.array(["a", "b"], pa.large_string()), pa.array(["12", "x"], pa.large_string())]
    values.append(pa.array(["null", None], pa.large_string()))
    literal = {"ref": np.array([True, False]), "tags": np.array([True, False])}
    assert json.loads(render_rows(columns, values, literal=literal)) == {
        "row": [{"person_guid": "a", "ref": 12, "tags": None}, {"person_guid": "b", "ref": "x"}]
    }
    # nothing to do without variants
    assert apply_wire_dirt(LEADS, columns, values, WireDirt.none()) == (columns, values, {})
