"""Analyst expressions that cannot fail at run time, and SQL too big or too deep to parse.

Why: if an analyst expression can raise on some rows and not on others, "error" versus
"answer" becomes an exact yes/no question about one row, whatever noise the answer carries.
So every analyst expression the engine runs is *total*:

* the whole expression is wrapped in DuckDB's ``TRY(...)``, which turns any run-time error of
  a row (overflow, bad cast, invalid date, …) into NULL for that row;
* ``CAST`` becomes ``TRY_CAST``;
* only nodes on ``SCALAR_NODES`` are accepted, each checked to be total under that wrapping
  (``tests/privacy/test_totality.py`` runs random expressions over adversarial rows), and the
  few whose errors ``TRY`` cannot catch (constant-folded arguments such as a ``date_trunc``
  unit, a ``LIKE … ESCAPE``, a type name) are restricted here to arguments checked at parse
  time, so their errors depend on the query text only.

Join keys are compared as ``TRY_CAST`` of both sides to one type chosen from the catalog
kinds, so a VARCHAR key joined to an INTEGER key cannot raise a conversion error mid-join.

Limits on the text come before any recursive parser sees it: sqlglot recurses once per
nesting level, so deeply nested SQL would otherwise end in a ``RecursionError``.
"""

from __future__ import annotations

import sqlglot
from sqlglot import TokenType, exp

from countylab.errors import ValidationFailed
from countylab.privacy.spec import ColumnKind, ColumnPolicy

MAX_SQL_CHARS = 20_000
MAX_TOKENS = 2_000
MAX_NESTING = 24  # parentheses + CASE … END + a run of unary NOT / minus / plus
MAX_TREE_DEPTH = 90

SCALAR_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,  # no ESCAPE clause (exp.Escape is not listed): no pattern can raise
    exp.ILike,
    exp.Add,  # integer overflow → NULL under TRY
    exp.Sub,
    exp.Mul,
    exp.Div,  # x / 0 → ±inf or NULL, never an error
    exp.IntDiv,
    exp.Mod,
    exp.Neg,
    exp.Case,
    exp.If,
    exp.Cast,  # rewritten to TRY_CAST
    exp.TryCast,
    exp.Try,
    exp.DataType,  # only the plain types of _CAST_TYPES
    exp.DataTypeParam,
    exp.Floor,
    exp.Ceil,
    exp.Round,
    exp.Abs,
    exp.Coalesce,
    exp.Least,
    exp.Greatest,
    exp.Year,
    exp.Month,
    exp.Day,
    exp.Quarter,
    exp.Extract,  # unit checked against _DATE_PARTS
    exp.Var,
    exp.Lower,
    exp.Upper,
    exp.Substring,  # negative or huge offsets/lengths → '' or NULL under TRY
    exp.Length,
    exp.TimestampTrunc,  # unit checked against _DATE_PARTS
    exp.DateTrunc,
    exp.Sqrt,  # of a negative → NaN
    exp.Ln,  # of 0 or a negative → -inf / NaN
    exp.Log,
    exp.Exp,  # overflow → inf
    exp.Pow,
    exp.Sign,
    exp.Tuple,
)

_DATE_PARTS = frozenset(
    {"YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "DOW", "DOY", "HOUR", "MINUTE", "SECOND", "DECADE"}
)
_T = exp.DataType.Type
_CAST_TYPES = frozenset(
    {
        _T.BOOLEAN,
        _T.TINYINT,
        _T.SMALLINT,
        _T.INT,
        _T.BIGINT,
        _T.INT128,
        _T.FLOAT,
        _T.DOUBLE,
        _T.DECIMAL,
        _T.VARCHAR,
        _T.TEXT,
        _T.DATE,
        _T.TIMESTAMP,
        _T.TIMESTAMPNTZ,
    }
)


def _refuse(zh: str, en: str, **details: object) -> ValidationFailed:
    return ValidationFailed(zh, en, **details)


def check_text_limits(sql: str) -> None:
    """Refuse SQL that is too long or too deeply nested, before any recursive parser runs."""
    if len(sql) > MAX_SQL_CHARS:
        raise _refuse(
            f"SQL 过长（上限 {MAX_SQL_CHARS} 个字符）",
            f"SQL is too long (at most {MAX_SQL_CHARS} characters)",
            reason="sql_too_long",
        )
    try:
        tokens = sqlglot.tokenize(sql, read="duckdb")
    except sqlglot.errors.TokenError as exc:
        raise _refuse("SQL 语法错误", "SQL syntax error", reason="tokens") from exc
    if len(tokens) > MAX_TOKENS:
        raise _refuse(
            f"SQL 过长（上限 {MAX_TOKENS} 个词法单元）",
            f"SQL is too long (at most {MAX_TOKENS} tokens)",
            reason="sql_too_long",
        )
    depth = unary = 0
    for tok in tokens:
        kind = tok.token_type
        if kind in (TokenType.L_PAREN, TokenType.CASE):
            depth += 1
        elif kind in (TokenType.R_PAREN, TokenType.END):
            depth = max(0, depth - 1)
        unary = unary + 1 if kind in (TokenType.NOT, TokenType.DASH, TokenType.PLUS) else 0
        if depth + unary > MAX_NESTING:
            raise _refuse(
                f"SQL 嵌套过深（上限 {MAX_NESTING} 层）",
                f"SQL is nested too deeply (at most {MAX_NESTING} levels)",
                reason="sql_too_deep",
            )


def check_tree_depth(tree: exp.Expr) -> None:
    """Refuse parsed trees deeper than ``MAX_TREE_DEPTH`` (long chains of AND/OR/+ …)."""
    stack: list[tuple[exp.Expr, int]] = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        if d > MAX_TREE_DEPTH:
            raise _refuse(
                f"SQL 表达式过深（上限 {MAX_TREE_DEPTH} 层）",
                f"SQL expression is too deep (at most {MAX_TREE_DEPTH} levels)",
                reason="sql_too_deep",
            )
        stack.extend((child, d + 1) for child in node.iter_expressions())


def check_scalar(node: exp.Expression) -> None:
    """Every node on the allow-list, with arguments whose errors TRY cannot catch pinned down."""
    for sub in node.walk():
        if not isinstance(sub, SCALAR_NODES):
            raise _refuse(
                "不支持的 SQL 语法或函数", "unsupported SQL construct or function", reason=type(sub).__name__
            )
        if isinstance(sub, exp.DataType) and (
            sub.this not in _CAST_TYPES or sub.this is not _T.DECIMAL and sub.expressions
        ):
            raise _refuse(
                "不支持的类型转换", "unsupported CAST target type", reason=sub.sql(dialect="duckdb")
            )
        if isinstance(sub, exp.DataType) and sub.this is _T.DECIMAL:
            params = [p.this for p in sub.expressions]
            ok = all(isinstance(p, exp.Literal) and not p.is_string and p.this.isdigit() for p in params)
            nums = [int(p.this) for p in params] if ok else []
            if (
                not ok
                or len(nums) > 2
                or nums
                and not 1 <= nums[0] <= 38
                or len(nums) == 2
                and nums[1] > nums[0]
            ):
                raise _refuse("DECIMAL 精度无效", "invalid DECIMAL precision", reason="decimal")
        if isinstance(sub, exp.Extract | exp.TimestampTrunc | exp.DateTrunc):
            unit = sub.this if isinstance(sub, exp.Extract) else sub.args.get("unit")
            name = unit.name.upper() if isinstance(unit, exp.Var | exp.Literal) else ""
            if name not in _DATE_PARTS:
                raise _refuse(
                    "日期单位必须是常量（year、month、day 等）",
                    "the date part must be a constant such as year, month or day",
                    reason="date_part",
                )
        if isinstance(sub, exp.Var) and not isinstance(
            sub.parent, exp.Extract | exp.TimestampTrunc | exp.DateTrunc
        ):
            raise _refuse("不支持的 SQL 语法或函数", "unsupported SQL construct or function", reason="Var")


def make_total(node: exp.Expression) -> exp.Expression:
    """``CAST`` → ``TRY_CAST`` and the whole expression inside ``TRY(...)``.

    A bare column or literal cannot raise and is left as it is (so grouping by a column keeps
    DuckDB's fast paths).
    """

    def fix(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Cast) and not isinstance(n, exp.TryCast):
            return exp.TryCast(this=n.this, to=n.args["to"])
        return n

    out = node.copy().transform(fix)
    while isinstance(out, exp.Paren):
        out = out.this
    if isinstance(out, exp.Column | exp.Literal | exp.Boolean | exp.Null | exp.Try):
        return out
    return exp.Try(this=out)


def join_key(sql_column: str, pol: ColumnPolicy, other: ColumnPolicy) -> str:
    """A join key that cannot raise: both sides TRY_CAST to one type chosen from the catalog kinds."""
    kinds = {pol.kind, other.kind}
    if kinds == {ColumnKind.NUMERIC}:
        target = "DOUBLE"
    elif kinds == {ColumnKind.DATE}:
        target = "DATE"
    else:
        target = "VARCHAR"
    return f"TRY_CAST({sql_column} AS {target})"
