"""The contract of the two Slate queries LeadScore reads, shared by the client, the validator and the sandbox.

Each query is a Slate query exposed as a web service; its Custom SQL ships in ``slate/sql/<name>.sql``
(``slate.sqlfiles``). Every value arrives as a string; a NULL column is omitted from its row. Both queries take the
same custom parameters and page themselves: rows are ordered by ``key`` (a GUID, in SQL Server's ``uniqueidentifier``
order: ``slate.keyorder``), the ``after`` parameter is the last key of the previous page (the nil GUID on page 1), and
``limit`` caps the rows per page.
"""

from __future__ import annotations

from dataclasses import dataclass

# Slate custom-parameter types (vendor docs) of the parameters both queries declare.
QUERY_PARAMS: dict[str, str] = {
    "since": "datetime",  # inclusive lower bound of the change window
    "until": "datetime",  # exclusive upper bound of the change window
    "after": "uniqueidentifier",  # paging cursor: return rows whose key is greater than this
    "limit": "int",  # row cap of this page
}
RESERVED_PARAM_NAMES = frozenset({"callback", "base", "run", "query", "user", "identity", "id", "h", "output"})
MAX_PAGE_ROWS = 10_000

# Kinds of the interactions query and what their `detail` holds.
INTERACTION_KINDS: dict[str, str] = {
    "email_sent": "mailing name",
    "email_open": "mailing name",
    "email_click": "mailing name",
    "email_optout": "mailing name",
    "ping": "URL of the page",
    "activity": "activity code: appointment, chat, email, phone call, walkin",
    "event_registered": "form (event) name",
    "event_attended": "form (event) name",
    "event_noshow": "form (event) name",
    "event_cancelled": "form (event) name",
}
ACTIVITY_CODES = ("appointment", "chat", "email", "phone call", "walkin")


@dataclass(frozen=True)
class Column:
    """One column of a query: its Slate type and whether every row must carry it."""

    name: str
    slate_type: str  # uniqueidentifier, datetime, date, varchar, int, real, bit
    required: bool
    personal: bool = False  # personal data the model does not need: dropped at cleaning (FERPA)


@dataclass(frozen=True)
class QuerySpec:
    """A Slate query exposed as a web service."""

    name: str
    key: str  # the GUID column rows are ordered and paged by
    columns: tuple[Column, ...]
    doc: str

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"query {self.name!r} has no column {name!r}")


LEADS = QuerySpec(
    name="leads",
    key="person_guid",
    doc=(
        "One row per person whose record was created or changed (application started) in [since, until): "
        "the person, the first origin and its source, college of interest, application start, tags."
    ),
    columns=(
        Column("person_guid", "uniqueidentifier", True),
        Column("ref", "int", False),
        Column("first_name", "varchar", False, personal=True),
        Column("last_name", "varchar", False, personal=True),
        Column("email", "varchar", False, personal=True),
        Column("origin_date", "datetime", True),
        Column("origin_source", "varchar", True),
        Column("college_of_interest", "varchar", False),
        Column("application_created", "datetime", False),
        Column("tags", "varchar", False),  # comma-separated tag names, e.g. "test"
        Column("updated", "datetime", True),  # latest change of the record as of `until`
    ),
)

INTERACTIONS = QuerySpec(
    name="interactions",
    key="interaction_guid",
    doc=(
        "One row per interaction stamped in [since, until): email messages (sent/open/click/optout), "
        "web pings, activities and event form responses."
    ),
    columns=(
        Column("interaction_guid", "uniqueidentifier", True),
        Column("person_guid", "uniqueidentifier", True),
        Column("kind", "varchar", True),
        Column("detail", "varchar", False),
        Column("occurred", "datetime", True),
    ),
)

QUERIES: dict[str, QuerySpec] = {LEADS.name: LEADS, INTERACTIONS.name: INTERACTIONS}
