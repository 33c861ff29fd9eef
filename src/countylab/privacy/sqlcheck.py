"""Parse analyst SQL into a small, bounded query model, or refuse it.

Why a model and not the SQL itself: the engine never runs the analyst's text.  sqlglot parses
it (DuckDB dialect); every node must be on an allow-list; every table must be a permitted
table; every column is resolved against the steward's metadata.  What survives is a
``QueryModel`` from which the planner writes its own SQL with bounding and clamping built in.

Everything refused here is refused from the query text and the catalog metadata alone, before
any budget is charged.  Analyst expressions come out total (``totality.make_total``).

Joins: sensitivity never comes from the shape of a join any more.  The planner bounds the
rows of each privacy unit on the relation actually aggregated, so this module only makes sure
every row of that relation has exactly one owner: private tables join each other only on
their privacy units, and only when the units are the same kind of entity (the rule of Tumult
Analytics' ``join_private``); public tables join on any declared joinable column.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import sqlglot
from sqlglot import exp

from countylab.errors import TooLarge, ValidationFailed
from countylab.privacy.sandboxed_duckdb import check_single_select
from countylab.privacy.spec import ColumnKind, ColumnPolicy, TableSpec
from countylab.privacy.totality import (
    check_scalar,
    check_text_limits,
    check_tree_depth,
    join_key,
    make_total,
)

AggKind = Literal["count", "count_unit", "sum", "avg", "var", "stddev", "quantile"]

_AGG_NODES: dict[type[exp.Expression], AggKind] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Variance: "var",
    exp.VariancePop: "var",
    exp.Stddev: "stddev",
    exp.StddevSamp: "stddev",
    exp.StddevPop: "stddev",
    exp.Median: "quantile",
    exp.Quantile: "quantile",
    exp.PercentileCont: "quantile",
    exp.PercentileDisc: "quantile",
}
_POP_AGGS = (exp.VariancePop, exp.StddevPop)


@dataclass(frozen=True)
class Agg:
    kind: AggKind
    column: str | None  # qualified SQL of the aggregated column
    bounds: tuple[float, float] | None
    q: float = 0.5
    pop: bool = False


@dataclass(frozen=True)
class Output:
    name: str
    source: Literal["group", "agg"]
    index: int


@dataclass(frozen=True)
class QueryModel:
    """A validated query: what to aggregate, over which relation, bounded how.

    ``from_sql``/``where_sql``/``group_sqls`` are engine-rendered (qualified, total).  The
    planner bounds the rows of ``unit_sql`` to ``contribution`` on the relation ``from_sql``
    filtered by ``where_sql``, immediately before aggregation.
    """

    tables: tuple[TableSpec, ...]  # every table the query reads, once each
    from_sql: str
    where_sql: str | None
    group_sqls: tuple[str, ...]
    public_keys: tuple[tuple[Any, ...], ...] | None  # all key tuples when every group key is public
    aggs: tuple[Agg, ...]
    outputs: tuple[Output, ...]
    unit_sql: str | None  # the privacy unit every row of the joined relation belongs to
    contribution: int  # k: rows kept per unit = the largest max_rows_per_unit of the private tables
    order_by: tuple[tuple[int, bool], ...]  # (output index, descending)
    limit: int | None
    normalized_sql: str
    private_tables: tuple[TableSpec, ...] = ()  # charge every one of these datasets' ledgers
    aliases: tuple[str, ...] = ()  # FROM order
    private_aliases: tuple[str, ...] = ()

    @property
    def joined(self) -> bool:
        return len(self.aliases) > 1


def _refuse(zh: str, en: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(zh, en, **details)


class _Scope:
    """Aliases of the FROM clause and column resolution against metadata."""

    def __init__(self, permitted: Mapping[str, TableSpec]) -> None:
        self.permitted = permitted
        self.alias: dict[str, TableSpec] = {}

    def add(self, node: exp.Expression) -> str:
        if not isinstance(node, exp.Table) or node.args.get("db") or node.args.get("catalog"):
            raise _refuse("只能查询已授权的表", "only permitted tables may be queried", reason="relation")
        ident = node.this
        if not isinstance(ident, exp.Identifier) or ident.quoted and not ident.name.isidentifier():
            raise _refuse("只能查询已授权的表", "only permitted tables may be queried", reason="relation")
        spec = self.permitted.get(ident.name.lower())
        if spec is None:
            raise _refuse(
                f"表 {ident.name} 不存在或未授权本项目使用",
                f"table {ident.name} does not exist or is not granted to this project",
                table=ident.name,
            )
        alias = (node.alias or spec.name).lower()
        if alias in self.alias or not alias.isidentifier() or alias.startswith("__"):
            raise _refuse("表别名重复或无效", "duplicate or invalid table alias", table=alias)
        self.alias[alias] = spec
        return alias

    def resolve(self, col: exp.Column) -> tuple[str, TableSpec, str, ColumnPolicy]:
        name = col.name.lower()
        if col.table:
            alias = col.table.lower()
            spec = self.alias.get(alias)
            if spec is None or name not in spec.columns:
                raise _refuse("列不存在", "unknown column", column=col.sql())
            return alias, spec, name, spec.columns[name]
        hits = [(a, s) for a, s in self.alias.items() if name in s.columns]
        if len(hits) != 1:
            raise _refuse("列不存在或有歧义", "unknown or ambiguous column", column=name)
        a, s = hits[0]
        return a, s, name, s.columns[name]


def _qualify(node: exp.Expression, scope: _Scope) -> exp.Expression:
    """Check scalar nodes against the allow-list and qualify every column."""
    for sub in node.walk():
        if isinstance(sub, exp.Star | exp.Subquery | exp.Select) or type(sub) in _AGG_NODES:
            raise _refuse(
                "此处不允许聚合、子查询或 *",
                "aggregates, subqueries and * are not allowed here",
                reason=type(sub).__name__,
            )
    check_scalar(node)

    def fix(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Column):
            alias, _, name, _ = scope.resolve(n)
            return exp.column(name, table=alias, quoted=True)
        return n

    return node.copy().transform(fix)


def _total_sql(node: exp.Expression, scope: _Scope) -> str:
    return make_total(_qualify(node, scope)).sql(dialect="duckdb")


def _columns_used(node: exp.Expression, scope: _Scope) -> list[tuple[TableSpec, str, ColumnPolicy]]:
    out = []
    for c in node.find_all(exp.Column):
        _, spec, name, pol = scope.resolve(c)
        out.append((spec, name, pol))
    return out


def _is_unit(spec: TableSpec, name: str) -> bool:
    return spec.privacy_unit == name


_PRIVATE_JOIN_ZH = (
    "两个含个人数据的表只能按各自的隐私主体列相等连接，且主体必须是同一类实体（如都是人）："
    "否则连接后的一行属于多个主体，无法限定每个主体的贡献。请改用计算中心的沙箱作业。"
)
_PRIVATE_JOIN_EN = (
    "two tables with personal rows may be joined only on their privacy-unit columns being equal, "
    "and only when both units are the same kind of entity (e.g. both persons): any other join gives "
    "rows owned by several units, whose contribution cannot be bounded. Use a sandbox job instead."
)


def _parse_join(join: exp.Join, scope: _Scope, private: list[tuple[str, TableSpec]]) -> str:
    if join.args.get("kind") or join.side not in ("", None) or join.args.get("using"):
        raise _refuse("只支持内连接 ON a = b", "only INNER JOIN ... ON a = b is supported", reason="join")
    new_alias = scope.add(join.this)
    on = join.args.get("on")
    if not isinstance(on, exp.EQ) or not all(isinstance(s, exp.Column) for s in (on.this, on.expression)):
        raise _refuse("连接条件必须是两列相等", "join condition must be column = column", reason="join")
    sides = [scope.resolve(c) for c in (on.this, on.expression)]
    if sides[0][0] == new_alias:
        sides.reverse()
    (oa, ospec, ocol, opol), (na, nspec, ncol, npol) = sides
    if na != new_alias or oa == new_alias:
        raise _refuse(
            "连接条件必须引用新连接的表", "join condition must reference the joined table", reason="join"
        )
    declared = f"{nspec.name}.{ncol}" in opol.joinable_to or f"{ospec.name}.{ocol}" in npol.joinable_to
    if nspec.privacy_unit is not None and private:
        same_unit = (
            _is_unit(nspec, ncol)
            and ospec.privacy_unit is not None
            and _is_unit(ospec, ocol)
            and ospec.entity == nspec.entity
        )
        if not same_unit:
            raise _refuse(
                _PRIVATE_JOIN_ZH,
                _PRIVATE_JOIN_EN,
                reason="private_join",
                column=f"{ospec.name}.{ocol}={nspec.name}.{ncol}",
            )
    elif not declared:
        raise _refuse(
            "目录未声明这两列可连接",
            "the catalog does not declare these columns joinable",
            column=f"{ospec.name}.{ocol}={nspec.name}.{ncol}",
        )
    if nspec.privacy_unit is not None:
        private.append((new_alias, nspec))
    left = join_key(f'"{oa}"."{ocol}"', opol, npol)
    right = join_key(f'"{na}"."{ncol}"', npol, opol)
    return f' JOIN {nspec.name} AS "{new_alias}" ON {left} = {right}'


def _agg_of(node: exp.Expression, scope: _Scope, unit_sql: str | None) -> Agg:
    kind = _AGG_NODES[type(node)]
    arg = node.this
    if kind == "count":
        if isinstance(arg, exp.Star) or isinstance(arg, exp.Literal) and not arg.is_string:
            return Agg("count", None, None)
        if (
            isinstance(arg, exp.Distinct)
            and len(arg.expressions) == 1
            and isinstance(arg.expressions[0], exp.Column)
        ):
            _, spec, name, _ = scope.resolve(arg.expressions[0])
            # Every private table of the relation shares the unit (joined on it), so any of them names it.
            if unit_sql is not None and _is_unit(spec, name):
                return Agg("count_unit", unit_sql, None)
        raise _refuse(
            "只支持 COUNT(*) 和 COUNT(DISTINCT 隐私主体)",
            "only COUNT(*) and COUNT(DISTINCT privacy unit) are supported",
            reason="count",
        )
    if not isinstance(arg, exp.Column):
        raise _refuse(
            "聚合参数必须是一个数值列", "aggregate argument must be one numeric column", reason=kind
        )
    alias, spec, name, pol = scope.resolve(arg)
    if _is_unit(spec, name) or pol.kind is not ColumnKind.NUMERIC or pol.bounds() is None:
        raise _refuse(
            "只能聚合有截断上下界的数值列（不能聚合隐私主体列）",
            "only numeric columns with declared bounds can be aggregated (not the privacy unit)",
            column=name,
        )
    q = 0.5
    qarg = node.args.get("quantile") or node.args.get("expression")
    if kind == "quantile" and qarg is not None:
        if not isinstance(qarg, exp.Literal) or qarg.is_string or not 0.0 < float(qarg.this) < 1.0:
            raise _refuse(
                "分位数必须是 0 到 1 之间的常数", "quantile must be a constant in (0, 1)", column=name
            )
        q = float(qarg.this)
    return Agg(kind, f'"{alias}"."{name}"', pol.bounds(), q=q, pop=isinstance(node, _POP_AGGS))


def _within_group(node: exp.Expression) -> exp.Expression:
    """``percentile_cont(q) WITHIN GROUP (ORDER BY col)`` → ``percentile_cont(col, q)``."""
    if not isinstance(node, exp.WithinGroup):
        return node
    inner, order = node.this, node.expression
    keys = order.expressions if isinstance(order, exp.Order) else []
    if (
        not isinstance(inner, exp.PercentileCont | exp.PercentileDisc)
        or len(keys) != 1
        or keys[0].args.get("desc")
    ):
        raise _refuse(
            "只支持 percentile_cont(q) WITHIN GROUP (ORDER BY 列)",
            "only percentile_cont(q) WITHIN GROUP (ORDER BY column) is supported",
            reason="within_group",
        )
    return type(inner)(this=keys[0].this, expression=inner.this)


def _parse_tree(sql: str) -> exp.Select:
    check_text_limits(sql)
    check_single_select(sql)
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise _refuse("SQL 语法错误", "SQL syntax error", reason=str(exc)[:200]) from exc
    except RecursionError as exc:  # a backstop: check_text_limits should have refused it
        raise _refuse("SQL 嵌套过深", "SQL is nested too deeply", reason="sql_too_deep") from exc
    check_tree_depth(tree)
    if not isinstance(tree, exp.Select):
        raise _refuse("只允许单个 SELECT 查询", "only a single SELECT is allowed", reason=type(tree).__name__)
    allowed_args = {"expressions", "from_", "joins", "where", "group", "order", "limit"}
    extra = [k for k, v in tree.args.items() if v not in (None, [], False) and k not in allowed_args]
    if extra:
        raise _refuse("不支持的 SQL 子句", "unsupported SQL clause", reason=",".join(sorted(extra)))
    return tree


V = TypeVar("V")


class Lru(Generic[V]):
    """A small thread-safe LRU map for pure functions of their key (only successes are kept)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get_or(self, key: Hashable, make: Callable[[], V]) -> V:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()  # raises: nothing is kept
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def tables_key(permitted: Mapping[str, TableSpec]) -> tuple[tuple[str, str], ...]:
    """Everything about the permitted tables a model depends on, as a hashable key.

    ``repr`` of a frozen ``TableSpec`` spells out every field (files, unit, k, version, each
    column's kind, bounds, key set and join rules, with their types), and is recomputed on every
    call, so a spec whose content changed can never hit an entry made for the old content.
    """
    return tuple((name, repr(spec)) for name, spec in permitted.items())


# Parsing and validating one text costs ~2 ms of sqlglot per query; the model is a pure function
# of (text, permitted tables, key cap), so a repeated question reuses it.  Refusals are not
# kept: they are recomputed (and raise) every time.
_MODELS: Lru[QueryModel] = Lru(512)


def parse_query(sql: str, permitted: Mapping[str, TableSpec], max_keys: int) -> QueryModel:
    """Validate ``sql`` against the allow-list and metadata; return its bounded model."""
    if not isinstance(sql, str):
        return _parse_query(sql, permitted, max_keys)
    key = (sql, int(max_keys), tables_key(permitted))
    return _MODELS.get_or(key, lambda: _parse_query(sql, permitted, max_keys))


def _parse_query(sql: str, permitted: Mapping[str, TableSpec], max_keys: int) -> QueryModel:
    tree = _parse_tree(sql)
    scope = _Scope(permitted)
    frm = tree.args.get("from_")
    if frm is None:
        raise _refuse("缺少 FROM", "FROM is required", reason="from")
    base = scope.add(frm.this)
    bspec = scope.alias[base]
    private: list[tuple[str, TableSpec]] = [(base, bspec)] if bspec.privacy_unit else []
    from_sql = f'{bspec.name} AS "{base}"'
    for join in tree.args.get("joins") or []:
        from_sql += _parse_join(join, scope, private)
    unit_sql = f'"{private[0][0]}"."{private[0][1].privacy_unit}"' if private else None
    private_specs = {s.name: s for _, s in private}
    contribution = max((s.max_rows_per_unit for s in private_specs.values()), default=1)

    where = tree.args.get("where")
    where_sql = _total_sql(where.this, scope) if where is not None else None

    items = list(tree.expressions)
    names = [
        it.alias or (it.name if isinstance(it, exp.Column) else it.sql(dialect="duckdb").lower())
        for it in items
    ]
    groups: list[exp.Expression] = []
    for g in tree.args["group"].expressions if tree.args.get("group") else []:
        if (
            isinstance(g, exp.Literal)
            and not g.is_string
            and g.this.isdigit()
            and 0 < int(g.this) <= len(items)
        ):
            g = items[int(g.this) - 1].unalias()
        elif (
            isinstance(g, exp.Column)
            and not g.table
            and g.name in names
            and g.name not in {c for _, s in scope.alias.items() for c in s.columns}
        ):
            g = items[names.index(g.name)].unalias()
        groups.append(g)
    group_keys: list[str] = []  # qualified, for matching select items
    group_sqls: list[str] = []  # qualified and total, for running
    key_sets: list[tuple[Any, ...] | None] = []
    for g in groups:
        for spec, name, pol in _columns_used(g, scope):
            if pol.kind is ColumnKind.IDENTIFIER or _is_unit(spec, name):
                raise _refuse(
                    "不能按标识列或隐私主体列分组",
                    "cannot GROUP BY an identifier or the privacy unit",
                    column=name,
                )
        group_keys.append(_qualify(g, scope).sql(dialect="duckdb"))
        group_sqls.append(_total_sql(g, scope))
        key_sets.append(scope.resolve(g)[3].public_keys if isinstance(g, exp.Column) else None)

    aggs: list[Agg] = []
    outputs: list[Output] = []
    for it, name in zip(items, names, strict=True):
        node = _within_group(it.unalias())
        if isinstance(node, exp.Star):
            raise _refuse("不允许 SELECT *", "SELECT * is not allowed", reason="star")
        if type(node) in _AGG_NODES:
            aggs.append(_agg_of(node, scope, unit_sql))
            outputs.append(Output(name, "agg", len(aggs) - 1))
            continue
        rendered = _qualify(node, scope).sql(dialect="duckdb")
        if rendered not in group_keys:
            raise _refuse(
                "非聚合列必须出现在 GROUP BY 中", "non-aggregate columns must be in GROUP BY", column=name
            )
        outputs.append(Output(name, "group", group_keys.index(rendered)))
    if not aggs:
        raise _refuse("查询必须包含聚合", "the query must contain an aggregate", reason="no_aggregate")

    public: tuple[tuple[Any, ...], ...] | None = None
    if group_sqls and all(k is not None for k in key_sets):
        size = 1
        for k in key_sets:
            size *= len(k or ())
        if size > max_keys:
            raise TooLarge("公开分组键组合过多", "too many public group keys", max_rows=max_keys)
        public = tuple(itertools.product(*[k or () for k in key_sets]))

    order: list[tuple[int, bool]] = []
    for o in tree.args["order"].expressions if tree.args.get("order") else []:
        target = o.this
        if isinstance(target, exp.Literal) and not target.is_string and target.this.isdigit():
            idx = int(target.this) - 1
            if not 0 <= idx < len(outputs):
                raise _refuse("ORDER BY 序号超出范围", "ORDER BY position out of range", reason="order")
        elif isinstance(target, exp.Column) and not target.table and target.name in names:
            idx = names.index(target.name)
        else:
            raise _refuse("ORDER BY 只能引用输出列", "ORDER BY may only name output columns", reason="order")
        order.append((idx, bool(o.args.get("desc"))))
    limit = None
    if tree.args.get("limit") is not None:
        lim = tree.args["limit"].expression
        if not isinstance(lim, exp.Literal) or lim.is_string or not lim.this.isdigit():
            raise _refuse("LIMIT 必须是整数常数", "LIMIT must be an integer constant", reason="limit")
        limit = int(lim.this)
    tables = {s.name: s for s in scope.alias.values()}
    return QueryModel(
        tables=tuple(tables.values()),
        from_sql=from_sql,
        where_sql=where_sql,
        group_sqls=tuple(group_sqls),
        public_keys=public,
        aggs=tuple(aggs),
        outputs=tuple(outputs),
        unit_sql=unit_sql,
        contribution=contribution,
        order_by=tuple(order),
        limit=limit,
        normalized_sql=tree.sql(dialect="duckdb", normalize=True, identify=False),
        private_tables=tuple(private_specs.values()),
        aliases=tuple(scope.alias),
        private_aliases=tuple(a for a, _ in private),
    )
