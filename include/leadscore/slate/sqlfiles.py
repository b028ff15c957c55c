"""The Custom SQL of each Slate query LeadScore reads, shipped as ``slate/sql/<query name>.sql``.

A Slate admin pastes a file as the SQL of a Custom SQL query and the ``<param>`` lines of
:func:`param_declarations` (also in each file's header) into the query's Edit Web Service. The files follow the
contract of ``slate.queries``: their output columns are the QuerySpec's columns in order, each cast to a string as
``WIRE_CASTS`` says for its Slate type, and they declare the parameters of ``QUERY_PARAMS``. ``tests/slate/test_sql``
parses every file as T-SQL and checks it against that contract.
"""

from __future__ import annotations

from pathlib import Path

from leadscore.slate.queries import QUERIES, QUERY_PARAMS

SQL_DIR = Path(__file__).with_name("sql")

# Slate type of a contract column -> (function, SQL string type, length) of its outermost expression in the SQL:
# GUIDs as LOWER(CAST(x AS varchar(36))); datetimes as CONVERT(varchar(19), x, 126), i.e. yyyy-mm-ddThh:mi:ss in
# the instance's time zone; ints as CAST(x AS varchar(11)); text as CAST(x AS nvarchar(n)), any n.
WIRE_CASTS: dict[str, tuple[str, str, int | None]] = {
    "uniqueidentifier": ("LOWER(CAST)", "VARCHAR", 36),
    "datetime": ("CONVERT(126)", "VARCHAR", 19),
    "int": ("CAST", "VARCHAR", 11),
    "varchar": ("CAST", "NVARCHAR", None),
}


def sql_path(name: str) -> Path:
    """Path of the shipped SQL of query ``name`` (it may not exist: the tests require one per query)."""
    return SQL_DIR / f"{name}.sql"


def query_sql(name: str) -> str:
    """The Custom SQL text of query ``name``.

    Raises:
        KeyError: ``name`` is not a query of ``slate.queries.QUERIES``.
        FileNotFoundError: the query has no shipped SQL file (the message names the expected path).
    """
    if name not in QUERIES:
        raise KeyError(f"no query {name!r}; known: {', '.join(QUERIES)}")
    path = sql_path(name)
    if not path.exists():
        raise FileNotFoundError(f"query {name!r} has no shipped SQL: expected {path}")
    return path.read_text(encoding="utf-8")


def param_declarations() -> list[str]:
    """The ``<param>`` elements to paste into a query's Edit Web Service, one per ``QUERY_PARAMS`` entry, in order."""
    return [f'<param id="{name}" type="{slate_type}"/>' for name, slate_type in QUERY_PARAMS.items()]
