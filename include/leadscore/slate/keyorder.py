"""How a query web service orders its GUID paging key: SQL Server's ``uniqueidentifier`` order, or plain text order.

Slate is a SQL Server application: ``ORDER BY`` on a ``uniqueidentifier`` and ``WHERE key > @after`` compare the 16
bytes of the GUID in the order 10-15, 8-9, 6-7, 4-5, 0-3 of its (mixed-endian) byte layout, each group from its first
byte (BRIEF §8; Microsoft's SQL Programmability blog, "How are GUIDs compared in SQL Server 2005?"; .NET's
``SqlGuid``). In the display form ``g1-g2-g3-g4-g5`` that is: group 5 as written, group 4 as written, then groups 3,
2 and 1 each read byte-reversed (they are stored little-endian). So ``FFEEDDCC-BBAA-9988-6677-001122334455`` sorts
as the number ``00112233 4455 6677 8899 AABBCCDDEEFF``. Text order (lower-cased string order) is what a service
built on another database gives.

The client checks each page against the configured order; the sandbox serves pages in it. Both use this module.
"""

from __future__ import annotations

from collections.abc import Callable

KEY_ORDERS = ("sqlserver", "text")
DEFAULT_KEY_ORDER = "sqlserver"
# The cursor of page 1: the nil GUID sorts before every other GUID in both orders, so ``key > @after`` keeps all rows.
NIL_GUID = "00000000-0000-0000-0000-000000000000"
# Display-form byte positions (0 = the first two hex digits) from the most to the least significant for SQL Server.
SQLSERVER_BYTE_SIGNIFICANCE = (10, 11, 12, 13, 14, 15, 8, 9, 7, 6, 5, 4, 3, 2, 1, 0)


def text_order_key(key: str) -> str:
    """Sort key of ``key`` in text order: the trimmed, lower-cased string."""
    return key.strip().lower()


def sqlserver_order_key(key: str) -> str:
    """Sort key of ``key`` in SQL Server's ``uniqueidentifier`` order: 32 hex digits, most significant first.

    Args:
        key: a GUID in any case, with or without braces.
    Returns:
        A fixed-width string whose string order is SQL Server's order of the GUIDs. A key that is not a GUID gets
        its text order key, so that a page holding one still fails the cursor check with the key named rather than
        raising here.
    """
    k = key.strip().lower()
    if k[:1] == "{" and k[-1:] == "}":
        k = k[1:-1]
    if len(k) != 36 or k[8] != "-" or k[13] != "-" or k[18] != "-" or k[23] != "-":
        return k
    # Group 5, group 4, then groups 3, 2, 1 byte-reversed (SQLSERVER_BYTE_SIGNIFICANCE, spelled out for speed: the
    # client calls this for every row of every page).
    return k[24:36] + k[19:23] + k[16:18] + k[14:16] + k[11:13] + k[9:11] + k[6:8] + k[4:6] + k[2:4] + k[0:2]


def order_key_function(key_order: str) -> Callable[[str], str]:
    """The sort-key function of ``key_order`` (``sqlserver`` or ``text``); ValueError for another name."""
    if key_order == "sqlserver":
        return sqlserver_order_key
    if key_order == "text":
        return text_order_key
    raise ValueError(f"key_order must be one of {', '.join(KEY_ORDERS)}, got {key_order!r}")
