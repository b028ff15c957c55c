"""The DuckDB leads reader equals ``ExtractStore.read_all(LEADS, as_of=...)``: versions, cuts, tombstones, legacy files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.data.lead_reader import read_leads
from leadscore.data.store import ExtractStore
from leadscore.slate.queries import LEADS, PERSONS
from tests.data.test_store import leads_frame
from tests.data.test_validate import G

W1 = (pd.Timestamp("2024-03-04"), pd.Timestamp("2024-03-11"))
W2 = (pd.Timestamp("2024-03-11"), pd.Timestamp("2024-03-18"))
W3 = (pd.Timestamp("2024-03-18"), pd.Timestamp("2024-03-25"))


def test_read_leads_equals_read_all_at_every_cut(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    store.write(LEADS, *W1, leads_frame([G[0], G[1], G[2]], "2024-03-05T00:00:00", college="Arts"))
    store.write(LEADS, *W2, leads_frame([G[0], G[3]], "2024-03-12T00:00:00", college="Nursing"))  # a new version
    same_stamp = leads_frame([G[1]], "2024-03-05T00:00:00", college="Law")  # a tie on updated: the later wins
    store.write(LEADS, pd.Timestamp("2024-03-10"), W2[1], same_stamp)
    legacy = leads_frame([G[2], G[4]], "2024-03-19T00:00:00", college="Music")
    path = store.path(LEADS, *W3)
    pq.write_table(pa.Table.from_pandas(legacy, preserve_index=False), path)  # written before first_seen existed
    store.write(PERSONS, *W3, pd.DataFrame({"person_guid": pd.Series([G[3]], dtype="string")}))
    cuts = [W1[1] - pd.Timedelta(days=1), W1[1], W2[1], W3[1] - pd.Timedelta(seconds=1), W3[1], None]
    seen = set()
    for cut in cuts:
        expected = store.read_all(LEADS, as_of=cut)
        got = read_leads(store, cut)
        pd.testing.assert_frame_equal(got, expected)
        seen.add(tuple(expected["college"].fillna("-")))
    assert len(seen) >= 4  # the cuts see different versions
    final = read_leads(store).set_index("person_guid")["college"].to_dict()
    assert final == {G[0]: "Nursing", G[1]: "Law", G[2]: "Music", G[4]: "Music"}  # G[3] tombstoned


def test_an_empty_store_reads_the_empty_contract(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    pd.testing.assert_frame_equal(read_leads(store, W1[1]), store.read_all(LEADS, as_of=W1[1]))
