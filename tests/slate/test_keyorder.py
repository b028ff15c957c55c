"""SQL Server's uniqueidentifier order against published SQL Server results, and text order for contrast."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from leadscore.slate.keyorder import (
    NIL_GUID,
    SQLSERVER_BYTE_SIGNIFICANCE,
    order_key_function,
    sqlserver_order_key,
    text_order_key,
)

# GUIDs with one non-zero byte, in the ascending order SQL Server's ORDER BY returns them. Written out by hand from
# the result published in the Stack Overflow question "SQL Server GUID sort algorithm. Why?" (7810602, repeating
# Alberto Ferrari's 2007 experiment on SQL Server): group 1 reads byte-reversed and is the least significant, then
# group 2 and group 3 (byte-reversed), group 4 and group 5 (as written), group 5 the most significant.
SQLSERVER_ASCENDING = [
    "01000000-0000-0000-0000-000000000000",
    "10000000-0000-0000-0000-000000000000",
    "00010000-0000-0000-0000-000000000000",
    "00100000-0000-0000-0000-000000000000",
    "00000100-0000-0000-0000-000000000000",
    "00001000-0000-0000-0000-000000000000",
    "00000001-0000-0000-0000-000000000000",
    "00000010-0000-0000-0000-000000000000",
    "00000000-0100-0000-0000-000000000000",
    "00000000-1000-0000-0000-000000000000",
    "00000000-0001-0000-0000-000000000000",
    "00000000-0010-0000-0000-000000000000",
    "00000000-0000-0100-0000-000000000000",
    "00000000-0000-1000-0000-000000000000",
    "00000000-0000-0001-0000-000000000000",
    "00000000-0000-0010-0000-000000000000",
    "00000000-0000-0000-0001-000000000000",
    "00000000-0000-0000-0010-000000000000",
    "00000000-0000-0000-0100-000000000000",
    "00000000-0000-0000-1000-000000000000",
    "00000000-0000-0000-0000-000000000001",
    "00000000-0000-0000-0000-000000000010",
    "00000000-0000-0000-0000-000000000100",
    "00000000-0000-0000-0000-000000001000",
    "00000000-0000-0000-0000-000000010000",
    "00000000-0000-0000-0000-000000100000",
    "00000000-0000-0000-0000-000001000000",
    "00000000-0000-0000-0000-000010000000",
    "00000000-0000-0000-0000-000100000000",
    "00000000-0000-0000-0000-001000000000",
    "00000000-0000-0000-0000-010000000000",
    "00000000-0000-0000-0000-100000000000",
]

# Pairs (lower, higher) stated by published SQL Server sources.
SQLSERVER_PAIRS = [
    # Microsoft's SQL Programmability blog, "How are GUIDs compared in SQL Server 2005?": text order puts @g1 =
    # 55666BEE-... first, but SQL Server first compares group 5, '86FF976E763F' with '393AE6BBB849', so @g2 < @g1.
    ("8DD5BCA5-6ABE-4F73-B4B7-393AE6BBB849", "55666BEE-B3A0-4BF5-81A7-86FF976E763F"),
    # captechconsulting.com, "SQL Uniqueidentifiers are really big integers": FFEEDDCC-BBAA-9988-6677-001122334455
    # is handled as the integer 00112233-4455-6677-8899-AABBCCDDEEFF, so it is below 01...; and above 00112233...FE.
    ("FFEEDDCC-BBAA-9988-6677-001122334455", "00000000-0000-0000-0000-001122334456"),
    ("FEEEDDCC-BBAA-9988-6677-001122334455", "FFEEDDCC-BBAA-9988-6677-001122334455"),
]


def test_order_key_reproduces_sql_servers_published_order() -> None:
    shuffled = list(np.random.default_rng(1).permutation(SQLSERVER_ASCENDING))
    assert sorted(shuffled, key=sqlserver_order_key) == SQLSERVER_ASCENDING
    assert sorted(shuffled, key=text_order_key) != SQLSERVER_ASCENDING  # text order is another order
    for low, high in SQLSERVER_PAIRS:
        assert sqlserver_order_key(low) < sqlserver_order_key(high)
    assert sqlserver_order_key("FFEEDDCC-BBAA-9988-6677-001122334455") == "00112233445566778899aabbccddeeff"
    assert text_order_key(SQLSERVER_PAIRS[0][0]) > text_order_key(SQLSERVER_PAIRS[0][1])
    assert text_order_key(SQLSERVER_PAIRS[1][0]) > text_order_key(SQLSERVER_PAIRS[1][1])


def test_order_key_equals_the_byte_layout_regrouped_as_sqlguid_compares() -> None:
    # .NET's SqlGuid compares the 16 bytes of Guid.ToByteArray() (Python's UUID.bytes_le) in the order
    # 10..15, 8, 9, 6, 7, 4, 5, 0..3.
    sqlguid_order = (10, 11, 12, 13, 14, 15, 8, 9, 6, 7, 4, 5, 0, 1, 2, 3)
    rng = np.random.default_rng(7)
    for _ in range(2000):
        u = uuid.UUID(bytes=rng.bytes(16))
        reference = bytes(u.bytes_le[i] for i in sqlguid_order).hex()
        assert sqlserver_order_key(str(u)) == reference
        assert bytes(u.bytes[i] for i in SQLSERVER_BYTE_SIGNIFICANCE).hex() == reference


def test_case_and_braces_do_not_change_the_order_key() -> None:
    guid = "55666BEE-B3A0-4BF5-81A7-86FF976E763F"
    assert sqlserver_order_key("{" + guid + "}") == sqlserver_order_key(guid.lower()) == sqlserver_order_key(guid)
    assert text_order_key(" " + guid + " ") == guid.lower()
    assert sqlserver_order_key("not-a-guid") == "not-a-guid"  # compared as text, so the cursor check names it


def test_the_first_page_cursor_is_below_every_guid_in_both_orders() -> None:
    rng = np.random.default_rng(3)
    keys = [str(uuid.UUID(bytes=rng.bytes(16))) for _ in range(500)] + SQLSERVER_ASCENDING
    for name in ("sqlserver", "text"):
        sort_key = order_key_function(name)
        assert all(sort_key(NIL_GUID) < sort_key(k) for k in keys)
    with pytest.raises(ValueError, match="key_order must be one of sqlserver, text"):
        order_key_function("binary")
