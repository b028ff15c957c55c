"""The shipped Slate queries (slate/sql/*.sql) parsed as T-SQL and checked against the contract of slate.queries.

Every QuerySpec in QUERIES must ship a SQL file: a new query without one fails here. Expectations come from QUERIES,
QUERY_PARAMS, INTERACTION_KINDS and sqlfiles.WIRE_CASTS only, so the contract has one source of truth.
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from leadscore.slate.queries import INTERACTION_KINDS, INTERACTIONS, QUERIES, QUERY_PARAMS, QuerySpec
from leadscore.slate.sqlfiles import WIRE_CASTS, param_declarations, query_sql, sql_path

SPECS = list(QUERIES.values())
# BRIEF §2: the Slate tables the queries read, plus the lookups that name a mailing, a form or a field prompt.
SLATE_TABLES = {
    "person",
    "origin",
    "lookup.origin.type",
    "application",
    "message",
    "ping",
    "activity",
    "form.response",
    "tag",
    "field",
}
LOOKUP_TABLES = {"mailing", "form", "lookup.prompt"}


def parsed(spec: QuerySpec) -> exp.Select:
    tree = sqlglot.parse_one(query_sql(spec.name), read="tsql")
    assert isinstance(tree, exp.Select), f"{spec.name}.sql must be one SELECT (page by TOP/ORDER BY at the top)"
    return tree


def parameter_names(node: exp.Expression) -> set[str]:
    return {p.name for p in node.find_all(exp.Parameter)}


def is_param(node: exp.Expression, name: str) -> bool:
    return isinstance(node, exp.Parameter) and node.name == name


def key_source(spec: QuerySpec, tree: exp.Select) -> exp.Column:
    """The uniqueidentifier column under the key's string cast: what ORDER BY and the cursor must compare."""
    out = next(e for e in tree.expressions if e.alias_or_name == spec.key)
    column = out.this.this.this  # LOWER(CAST(<column> AS varchar(36)))
    assert isinstance(column, exp.Column) and column.table, f"{spec.name}: key must cast a table-qualified column"
    return column


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_query_ships_its_sql(spec: QuerySpec) -> None:
    assert sql_path(spec.name).is_file(), f"query {spec.name!r} has no SQL file at {sql_path(spec.name)}"
    assert parsed(spec) is not None


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_output_columns_are_the_contract_in_order(spec: QuerySpec) -> None:
    assert [e.alias_or_name for e in parsed(spec).expressions] == list(spec.column_names)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_column_is_cast_to_the_string_slate_serves_for_its_type(spec: QuerySpec) -> None:
    for out in parsed(spec).expressions:
        column = spec.column(out.alias_or_name)
        function, sql_type, length = WIRE_CASTS[column.slate_type]
        node = out.this
        if function == "LOWER(CAST)":
            assert isinstance(node, exp.Lower), f"{spec.name}.{column.name}: GUIDs are served lower case"
            node = node.this
        if function == "CONVERT(126)":
            assert isinstance(node, exp.Convert), f"{spec.name}.{column.name}: datetimes need CONVERT(..., 126)"
            target, style = node.this, node.args["style"]
            assert style.to_py() == 126, f"{spec.name}.{column.name}: style {style} is not ISO 8601 (126)"
        else:
            assert isinstance(node, exp.Cast), f"{spec.name}.{column.name}: {node.sql('tsql')} is not a CAST"
            target = node.to
        assert target.this.name == sql_type, f"{spec.name}.{column.name}: cast to {target.sql('tsql')}"
        sizes = [p.this.to_py() for p in target.expressions]
        assert len(sizes) == 1 and (length is None or sizes == [length]), f"{spec.name}.{column.name}: {sizes}"


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_parameters_are_declared_as_the_contract_types(spec: QuerySpec) -> None:
    text = query_sql(spec.name)
    header = [line.strip("- ").strip() for line in text.splitlines() if line.lstrip("- ").startswith("<param ")]
    assert header == param_declarations()
    declared = dict(re.findall(r'<param id="(\w+)" type="(\w+)"/>', "\n".join(header)))
    assert declared == QUERY_PARAMS
    assert parameter_names(parsed(spec)) == set(QUERY_PARAMS)  # the body uses each, and nothing undeclared


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_pages_by_the_uniqueidentifier_key_with_the_cursor_and_the_row_cap(spec: QuerySpec) -> None:
    tree = parsed(spec)
    key = key_source(spec, tree)
    order = tree.args["order"].expressions
    assert len(order) == 1 and order[0].this == key and not order[0].args.get("desc")
    limit = tree.args["limit"]
    assert limit.args["limit_options"].args.get("with_ties"), "TOP ... WITH TIES keeps duplicate keys on one page"
    assert "limit" in parameter_names(limit.expression)
    cursor = [
        node
        for node in tree.args["where"].find_all(exp.Or)
        if isinstance(node.this, exp.Is)
        and is_param(node.this.this, "after")
        and isinstance(node.expression, exp.GT)
        and node.expression.this == key
        and is_param(node.expression.expression, "after")
    ]
    assert cursor, f"{spec.name}: WHERE needs (@after IS NULL OR {key.sql('tsql')} > @after)"


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_test_tagged_records_are_excluded(spec: QuerySpec) -> None:
    where = parsed(spec).args["where"]
    excluded = [
        node
        for node in where.find_all(exp.Not)
        if isinstance(node.this, exp.Exists)
        and any(t.name == "tag" for t in node.this.find_all(exp.Table))
        and any(lit.is_string and lit.this == "test" for lit in node.this.find_all(exp.Literal))
    ]
    assert excluded, f"{spec.name}: WHERE needs NOT EXISTS (... FROM [tag] ... = 'test')"


def test_the_queries_read_slates_own_tables() -> None:
    read: set[str] = set()
    for spec in SPECS:
        tables = {t.name for t in parsed(spec).find_all(exp.Table)}
        assert tables <= SLATE_TABLES | LOOKUP_TABLES, f"{spec.name} reads unknown tables {tables - SLATE_TABLES}"
        read |= tables
    assert read >= SLATE_TABLES


def test_interactions_union_every_kind_and_nothing_else() -> None:
    source = parsed(INTERACTIONS).args["from_"].this
    assert isinstance(source, exp.Subquery) and isinstance(source.this, exp.Union)
    branches: list[exp.Select] = []
    stack: list[exp.Expression] = [source.this]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Union):
            assert not node.args.get("distinct"), "UNION ALL: a UNION would drop repeated interactions silently"
            stack += [node.this, node.expression]
        else:
            branches.append(node)
    kinds: set[str] = set()
    for branch in branches:
        assert len(branch.expressions) == 5, branch.sql("tsql")[:200]
        kind = branch.expressions[2].unalias()
        if isinstance(kind, exp.Case):
            values = [i.args["true"] for i in kind.args["ifs"]] + [kind.args["default"]]
        else:
            values = [kind]
        assert all(isinstance(v, exp.Literal) and v.is_string for v in values), kind.sql("tsql")
        kinds |= {v.this for v in values}
    assert kinds == set(INTERACTION_KINDS)
    assert len(branches) >= 4 and {"message", "ping", "activity", "form.response"} <= {
        t.name for b in branches for t in b.find_all(exp.Table)
    }
