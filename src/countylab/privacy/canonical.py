"""The canonical form of a validated query: what the answer cache is keyed on.

Why not the text: averaging needs fresh noise for the same question, so the same question in
other words must hit the cache — another alias (``residents r``), qualified columns, ``GROUP BY
1``, comments, redundant parentheses, keyword or identifier case, whitespace.  So the key is
built from the engine-rendered pieces of the :class:`~.sqlcheck.QueryModel` (already qualified,
positions resolved, columns resolved against metadata), parsed again with sqlglot and written
as a tree in which table aliases are numbered in FROM order, parentheses that the tree already
encodes are dropped and comments are ignored.  Output *names* are left out (they do not change
the numbers); their order and sources are in.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlglot
from sqlglot import exp

from countylab.privacy.sqlcheck import QueryModel


def _tree(node: Any, aliases: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_tree(n, aliases) for n in node]
    if not isinstance(node, exp.Expression):
        return node if isinstance(node, str | int | float | bool) or node is None else str(node)
    if isinstance(node, exp.Paren):
        return _tree(node.this, aliases)
    if isinstance(node, exp.Table):  # a table by its name, its alias by FROM position
        return ["table", node.name.lower(), aliases.get(node.alias_or_name.lower())]
    if isinstance(node, exp.Column):
        table = node.table.lower()
        return ["col", aliases.get(table, table), node.name.lower()]
    if isinstance(node, exp.Identifier):
        return ["id", node.name.lower()]
    if isinstance(node, exp.Literal):
        return ["lit", bool(node.is_string), node.this]
    out: list[Any] = [node.key]
    for key in sorted(node.args):
        value = node.args[key]
        if key == "comments" or value is None or value == [] or value is False:
            continue
        out.append([key, _tree(value, aliases)])
    return out


def _alias_map(model: QueryModel) -> dict[str, str]:
    return {alias.lower(): f"t{i}" for i, alias in enumerate(model.aliases)}


def _piece(sql: str | None, aliases: dict[str, str], *, relation: bool = False) -> Any:
    if sql is None:
        return None
    text = f"SELECT 1 FROM {sql}" if relation else f"SELECT {sql}"
    return _tree(sqlglot.parse_one(text, dialect="duckdb"), aliases)


def canonical_key(model: QueryModel) -> str:
    """A string equal for two models exactly when they ask the same question of the same tables."""
    aliases = _alias_map(model)
    payload = {
        "from": _piece(model.from_sql, aliases, relation=True),
        "where": _piece(model.where_sql, aliases),
        "groups": [_piece(g, aliases) for g in model.group_sqls],
        "aggs": [[a.kind, _piece(a.column, aliases), a.bounds, a.q, a.pop] for a in model.aggs],
        "outputs": [[o.source, o.index] for o in model.outputs],
        "unit": _piece(model.unit_sql, aliases),
        "k": model.contribution,
        "public_keys": model.public_keys,
        "order": model.order_by,
        "limit": model.limit,
    }
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return re.sub(r"\s+", " ", text)
