"""A SOQL parser: query text → AST, with Salesforce's error codes and caret messages.

Written by hand (a tokenizer plus recursive descent) because SOQL's rules are small but
peculiar: AND and OR cannot be mixed without parentheses, datetimes and date literals are
bare words (``2024-01-01T00:00:00Z``, ``LAST_N_DAYS:30``), ``!=`` keeps NULLs, text compares
case-insensitively. The AST is compiled to DuckDB SQL by :mod:`sfpipe_simulator.soql_compile`.
Every malformed input raises :class:`SoqlError` (never another exception), which the API turns
into ``MALFORMED_QUERY`` and friends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

AGGREGATES = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})
KEYWORDS = frozenset(
    {
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "INCLUDES", "EXCLUDES", "NULL", "TRUE",
        "FALSE", "ORDER", "BY", "ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "GROUP", "HAVING",
        "FOR", "VIEW", "REFERENCE", "UPDATE", "WITH", "USING", "SCOPE", "TYPEOF",
    }
)  # fmt: skip
DATE_LITERALS = frozenset(
    {
        "YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH", "THIS_MONTH",
        "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_QUARTER", "LAST_QUARTER", "NEXT_QUARTER",
        "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR", "THIS_FISCAL_QUARTER", "LAST_FISCAL_QUARTER",
        "NEXT_FISCAL_QUARTER", "THIS_FISCAL_YEAR", "LAST_FISCAL_YEAR", "NEXT_FISCAL_YEAR",
    }
)  # fmt: skip
N_DATE_LITERALS = frozenset(
    {
        "LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_WEEKS", "NEXT_N_WEEKS", "N_WEEKS_AGO",
        "LAST_N_MONTHS", "NEXT_N_MONTHS", "N_MONTHS_AGO", "LAST_N_QUARTERS", "NEXT_N_QUARTERS",
        "N_QUARTERS_AGO", "LAST_N_YEARS", "NEXT_N_YEARS", "N_YEARS_AGO", "LAST_N_FISCAL_QUARTERS",
        "NEXT_N_FISCAL_QUARTERS", "N_FISCAL_QUARTERS_AGO", "LAST_N_FISCAL_YEARS", "NEXT_N_FISCAL_YEARS",
        "N_FISCAL_YEARS_AGO",
    }
)  # fmt: skip
MAX_QUERY_LENGTH = 100_000
ESCAPED_PERCENT = "\ue000"
"""Stands for ``\\%`` inside a decoded string literal: a literal percent sign in a LIKE pattern."""
ESCAPED_UNDERSCORE = "\ue001"
"""Stands for ``\\_`` inside a decoded string literal."""


class SoqlError(Exception):
    """A query Salesforce would refuse; ``code`` is the REST errorCode."""

    def __init__(self, code: str, message: str, query: str = "", pos: int | None = None) -> None:
        self.code = code
        self.detail = message
        self.query = query
        self.pos = pos
        super().__init__(self.render())

    def render(self) -> str:
        """Salesforce's format: the query line, a caret, the row and column, then the reason."""
        if self.pos is None or not self.query:
            return self.detail
        before = self.query[: self.pos]
        row = before.count("\n") + 1
        line_start = before.rfind("\n") + 1
        column = self.pos - line_start + 1
        line_end = self.query.find("\n", self.pos)
        line = self.query[line_start : line_end if line_end >= 0 else len(self.query)]
        caret = " " * (column - 1) + "^"
        return f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{self.detail}"


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}(?::?\d{2})?)?)
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>')
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.:\-+])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class Token:
    """One lexical token: kind, text (or decoded value) and offset in the query."""

    kind: str
    text: str
    pos: int
    value: Any = None

    @property
    def upper(self) -> str:
        """Keyword comparison text."""
        return self.text.upper()


def tokenize(query: str) -> list[Token]:
    """Split a query into tokens; string literals are decoded (LIKE's escaped wildcards marked)."""
    tokens: list[Token] = []
    pos = 0
    n = len(query)
    while pos < n:
        m = _TOKEN.match(query, pos)
        if m is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{query[pos]}'", query, pos)
        kind = m.lastgroup or ""
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "string":
            value, end = _read_string(query, pos)
            tokens.append(Token("string", query[pos:end], pos, value))
            pos = end
            continue
        tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", n))
    return tokens


def _read_string(query: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    pos = start + 1
    n = len(query)
    while pos < n:
        char = query[pos]
        if char == "'":
            return "".join(out), pos + 1
        if char == "\\":
            if pos + 1 >= n:
                break
            nxt = query[pos + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                pos += 2
                continue
            if nxt in "%_":
                out.append(ESCAPED_PERCENT if nxt == "%" else ESCAPED_UNDERSCORE)
                pos += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", query[pos + 2 : pos + 6] or ""):
                out.append(chr(int(query[pos + 2 : pos + 6], 16)))
                pos += 6
                continue
            raise SoqlError("MALFORMED_QUERY", "Invalid string literal: illegal escape sequence", query, pos)
        out.append(char)
        pos += 1
    raise SoqlError("MALFORMED_QUERY", "unexpected token: unterminated string literal", query, start)


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class FieldRef:
    """A (possibly dotted) field path as written."""

    parts: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        """The path as written."""
        return ".".join(self.parts)


@dataclass(frozen=True)
class Aggregate:
    """``COUNT()``, ``COUNT(Id)``, ``SUM(Amount)`` … with an optional alias."""

    func: str
    arg: FieldRef | None
    alias: str | None
    pos: int


@dataclass(frozen=True)
class FieldsMacro:
    """``FIELDS(ALL | STANDARD | CUSTOM)``."""

    kind: str
    pos: int


SelectItem = FieldRef | Aggregate | FieldsMacro


@dataclass(frozen=True)
class Literal:
    """A value on the right of a comparison."""

    kind: str  # string | number | boolean | null | date | datetime | dateliteral
    value: Any
    pos: int
    text: str


@dataclass(frozen=True)
class Comparison:
    """``field op value``, ``field [NOT] IN (...)``, ``field LIKE '...'``, ``INCLUDES`` / ``EXCLUDES``."""

    left: FieldRef | Aggregate
    op: str
    right: Literal | tuple[Literal, ...]
    pos: int


@dataclass(frozen=True)
class BoolOp:
    """A run of conditions joined by the same connective."""

    op: str
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """``NOT condition``."""

    item: Condition


Condition = Comparison | BoolOp | Not


@dataclass(frozen=True)
class OrderItem:
    """One ORDER BY key."""

    key: FieldRef | Aggregate
    descending: bool
    nulls_first: bool


@dataclass
class Query:
    """A parsed SELECT."""

    select: list[SelectItem]
    sobject: str
    sobject_pos: int
    alias: str | None = None
    where: Condition | None = None
    group_by: list[FieldRef] = field(default_factory=list)
    having: Condition | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    text: str = ""

    @property
    def is_count(self) -> bool:
        """``SELECT COUNT() FROM …``: the answer is only totalSize."""
        return (
            len(self.select) == 1
            and isinstance(self.select[0], Aggregate)
            and self.select[0].func == "COUNT"
            and self.select[0].arg is None
        )

    @property
    def is_aggregate(self) -> bool:
        """Whether the rows are AggregateResults (an aggregate function or GROUP BY)."""
        return bool(self.group_by) or any(isinstance(s, Aggregate) for s in self.select)


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def error(self, tok: Token | None = None, message: str | None = None) -> SoqlError:
        tok = tok or self.tok
        if message is None:
            message = "unexpected token: <EOF>" if tok.kind == "eof" else f"unexpected token: '{tok.text}'"
        return SoqlError("MALFORMED_QUERY", message, self.query, tok.pos)

    def is_kw(self, *words: str, tok: Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind == "ident" and tok.upper in words

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.error()
        return self.advance()

    def expect_punct(self, char: str) -> Token:
        if not (self.tok.kind == "punct" and self.tok.text == char):
            raise self.error()
        return self.advance()

    def at_punct(self, char: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == char

    # grammar
    def parse(self) -> Query:
        self.expect_kw("SELECT")
        select = self.select_list()
        self.expect_kw("FROM")
        obj_tok = self.tok
        # "Order" is an object name as well as a keyword: after FROM it names the object
        # unless it starts an ORDER BY clause (`SELECT Id FROM Order ORDER BY Id` is valid)
        order_object = obj_tok.upper == "ORDER" and not self.is_kw("BY", tok=self.peek())
        if obj_tok.kind != "ident" or (obj_tok.upper in KEYWORDS and not order_object):
            raise self.error()
        self.advance()
        if self.at_punct("."):
            raise self.error()
        q = Query(select=select, sobject=obj_tok.text, sobject_pos=obj_tok.pos, text=self.query)
        if self.tok.kind == "ident" and self.tok.upper not in KEYWORDS:
            q.alias = self.advance().text
        if self.is_kw("USING"):
            self.advance()
            self.expect_kw("SCOPE")
            scope = self.advance()
            if scope.kind != "ident" or scope.text.lower() not in {"everything", "mine", "team", "delegated"}:
                raise self.error(scope)
        if self.is_kw("WHERE"):
            self.advance()
            q.where = self.condition()
        if self.is_kw("WITH"):
            raise self.error(message="WITH clauses are not supported by this org")
        if self.is_kw("GROUP"):
            self.advance()
            self.expect_kw("BY")
            q.group_by = [self.field_ref()]
            while self.at_punct(","):
                self.advance()
                q.group_by.append(self.field_ref())
        if self.is_kw("HAVING"):
            if not q.group_by:
                raise self.error()
            self.advance()
            q.having = self.condition(allow_aggregates=True)
        if self.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            q.order_by = [self.order_item()]
            while self.at_punct(","):
                self.advance()
                q.order_by.append(self.order_item())
        if self.is_kw("LIMIT"):
            self.advance()
            q.limit = self.integer()
        if self.is_kw("OFFSET"):
            self.advance()
            q.offset = self.integer()
        if self.is_kw("FOR"):
            self.advance()
            self.for_target()
            while self.at_punct(","):
                self.advance()
                self.for_target()
        if self.tok.kind != "eof":
            raise self.error()
        return q

    def for_target(self) -> None:
        if not self.is_kw("VIEW", "REFERENCE", "UPDATE"):
            raise self.error()
        self.advance()

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.error()
        self.advance()
        value = int(tok.text)
        if value > 2_147_483_647:
            raise SoqlError("MALFORMED_QUERY", f"For input string: \"{tok.text}\"", self.query, tok.pos)
        return value

    def select_list(self) -> list[SelectItem]:
        items = [self.select_item()]
        while self.at_punct(","):
            self.advance()
            items.append(self.select_item())
        return items

    def select_item(self) -> SelectItem:
        tok = self.tok
        if self.at_punct("("):
            raise SoqlError("MALFORMED_QUERY", "relationship subqueries are not supported by this org", self.query,
                            tok.pos)  # fmt: skip
        if tok.kind != "ident":
            raise self.error()
        if self.is_kw("TYPEOF"):
            raise self.error(message="TYPEOF is not supported by this org")
        nxt = self.peek()
        if nxt.kind == "punct" and nxt.text == "(":
            name = tok.upper
            if name == "FIELDS":
                self.advance()
                self.advance()
                kind = self.advance()
                if kind.kind != "ident" or kind.upper not in {"ALL", "STANDARD", "CUSTOM"}:
                    raise self.error(kind)
                self.expect_punct(")")
                return FieldsMacro(kind.upper, tok.pos)
            return self.aggregate(allow_alias=True)
        if tok.upper in KEYWORDS and tok.upper not in {"FIRST", "LAST", "VIEW", "REFERENCE", "UPDATE", "SCOPE"}:
            raise self.error()
        return self.field_ref()

    def aggregate(self, allow_alias: bool) -> Aggregate:
        tok = self.advance()
        name = tok.upper
        if name not in AGGREGATES:
            raise SoqlError("MALFORMED_QUERY", f"Unknown function: {tok.text}", self.query, tok.pos)
        self.expect_punct("(")
        arg = None
        if not self.at_punct(")"):
            arg = self.field_ref()
        self.expect_punct(")")
        if arg is None and name != "COUNT":
            raise SoqlError("MALFORMED_QUERY", f"{name} requires a field argument", self.query, tok.pos)
        alias = None
        if allow_alias and self.tok.kind == "ident" and self.tok.upper not in KEYWORDS:
            alias = self.advance().text
        return Aggregate(name, arg, alias, tok.pos)

    def field_ref(self) -> FieldRef:
        tok = self.tok
        if tok.kind != "ident":
            raise self.error()
        parts = [self.advance().text]
        while self.at_punct("."):
            self.advance()
            part = self.tok
            if part.kind != "ident":
                raise self.error()
            parts.append(self.advance().text)
        if len(parts) > 6:
            raise SoqlError("MALFORMED_QUERY", "relationship paths are limited to 5 levels", self.query, tok.pos)
        return FieldRef(tuple(parts), tok.pos)

    def order_item(self) -> OrderItem:
        key: FieldRef | Aggregate
        if self.tok.kind == "ident" and self.peek().kind == "punct" and self.peek().text == "(":
            key = self.aggregate(allow_alias=False)
        else:
            key = self.field_ref()
        descending = False
        if self.is_kw("ASC", "DESC"):
            descending = self.advance().upper == "DESC"
        nulls_first = not descending
        if self.is_kw("NULLS"):
            self.advance()
            if not self.is_kw("FIRST", "LAST"):
                raise self.error()
            nulls_first = self.advance().upper == "FIRST"
        return OrderItem(key, descending, nulls_first)

    def condition(self, allow_aggregates: bool = False) -> Condition:
        first = self.unary(allow_aggregates)
        if not self.is_kw("AND", "OR"):
            return first
        op = self.tok.upper
        items = [first]
        while self.is_kw("AND", "OR"):
            if self.tok.upper != op:
                raise self.error()
            self.advance()
            items.append(self.unary(allow_aggregates))
        return BoolOp(op, tuple(items))

    def unary(self, allow_aggregates: bool) -> Condition:
        if self.is_kw("NOT"):
            self.advance()
            return Not(self.unary(allow_aggregates))
        if self.at_punct("("):
            self.advance()
            inner = self.condition(allow_aggregates)
            self.expect_punct(")")
            return inner
        return self.comparison(allow_aggregates)

    def comparison(self, allow_aggregates: bool) -> Comparison:
        tok = self.tok
        left: FieldRef | Aggregate
        if tok.kind == "ident" and self.peek().kind == "punct" and self.peek().text == "(":
            if not allow_aggregates:
                raise SoqlError("MALFORMED_QUERY", "functions are not supported in WHERE by this org",
                                self.query, tok.pos)  # fmt: skip
            left = self.aggregate(allow_alias=False)
        else:
            if tok.kind != "ident" or tok.upper in KEYWORDS:
                raise self.error()
            left = self.field_ref()
        op_tok = self.tok
        if op_tok.kind == "op":
            self.advance()
            op = "!=" if op_tok.text == "<>" else op_tok.text
            return Comparison(left, op, self.value(), op_tok.pos)
        negated = False
        if self.is_kw("NOT"):
            self.advance()
            negated = True
            if not self.is_kw("IN"):
                raise self.error()
        if self.is_kw("IN", "INCLUDES", "EXCLUDES"):
            word = self.advance().upper
            if negated and word != "IN":
                raise self.error()
            self.expect_punct("(")
            if self.is_kw("SELECT"):
                raise SoqlError("MALFORMED_QUERY", "semi-join subqueries are not supported by this org",
                                self.query, self.tok.pos)  # fmt: skip
            values = [self.value()]
            while self.at_punct(","):
                self.advance()
                values.append(self.value())
            self.expect_punct(")")
            name = "NOT IN" if negated else word
            return Comparison(left, name, tuple(values), op_tok.pos)
        if self.is_kw("LIKE"):
            self.advance()
            value = self.value()
            if value.kind != "string":
                raise self.error(message=f"unexpected token: '{value.text}'")
            return Comparison(left, "LIKE", value, op_tok.pos)
        raise self.error()

    def value(self) -> Literal:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return Literal("string", tok.value, tok.pos, tok.text)
        sign = ""
        if tok.kind == "punct" and tok.text in "+-":
            self.advance()
            sign = tok.text
            tok = self.tok
            if tok.kind != "number":
                raise self.error()
        if tok.kind == "number":
            self.advance()
            text = sign + tok.text
            try:
                number: int | float = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
            except ValueError:
                raise self.error(tok) from None
            return Literal("number", number, tok.pos, text)
        if tok.kind == "date":
            self.advance()
            try:
                return Literal("date", date.fromisoformat(tok.text), tok.pos, tok.text)
            except ValueError:
                raise SoqlError("MALFORMED_QUERY", f"invalid date: {tok.text}", self.query, tok.pos) from None
        if tok.kind == "datetime":
            self.advance()
            return Literal("datetime", parse_datetime_literal(tok.text, self.query, tok.pos), tok.pos, tok.text)
        if tok.kind == "ident":
            word = tok.upper
            if word in {"TRUE", "FALSE"}:
                self.advance()
                return Literal("boolean", word == "TRUE", tok.pos, tok.text)
            if word == "NULL":
                self.advance()
                return Literal("null", None, tok.pos, tok.text)
            if word in DATE_LITERALS:
                self.advance()
                return Literal("dateliteral", (word, None), tok.pos, tok.text)
            if word in N_DATE_LITERALS:
                self.advance()
                if not self.at_punct(":"):
                    raise self.error()
                self.advance()
                num = self.tok
                if num.kind != "number" or not num.text.isdigit():
                    raise self.error()
                self.advance()
                return Literal("dateliteral", (word, int(num.text)), tok.pos, f"{tok.text}:{num.text}")
        if tok.kind == "punct" and tok.text == ":":
            raise SoqlError("MALFORMED_QUERY", "bind variables are only supported in Apex", self.query, tok.pos)
        raise self.error()


def parse_datetime_literal(text: str, query: str = "", pos: int = 0) -> datetime:
    """An ISO 8601 datetime as SOQL accepts it (``Z``, ``±hh:mm``, ``±hhmm``, ``±hh``, fractions) → UTC."""
    m = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2})(?::?(\d{2}))?)?", text
    )
    if m is None:
        raise SoqlError("MALFORMED_QUERY", f"invalid dateTime: {text}", query, pos)
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    micros = int((m.group(7) or "0").ljust(6, "0")[:6])
    tz = UTC
    if m.group(8) and m.group(8) != "Z":
        sign = 1 if m.group(9) == "+" else -1
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11) or 0))
        if offset >= timedelta(hours=24):
            raise SoqlError("MALFORMED_QUERY", f"invalid dateTime: {text}", query, pos)
        tz = timezone(sign * offset)
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=tz).astimezone(UTC)
    except ValueError:
        raise SoqlError("MALFORMED_QUERY", f"invalid dateTime: {text}", query, pos) from None


def parse(query: str) -> Query:
    """Parse one SOQL query."""
    if len(query) > MAX_QUERY_LENGTH:
        raise SoqlError("MALFORMED_QUERY", f"Query is too long: at most {MAX_QUERY_LENGTH} characters")
    if not query.strip():
        raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>", query, 0)
    try:
        return _Parser(query).parse()
    except RecursionError:
        raise SoqlError("MALFORMED_QUERY", "query is nested too deeply", query, 0) from None


# --------------------------------------------------------------------------- date literals


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def date_literal_range(name: str, n: int | None, today: date) -> tuple[date, date]:
    """The half-open day range ``[start, end)`` a date literal stands for (weeks start on Sunday)."""
    week_start = today - timedelta(days=(today.weekday() + 1) % 7)
    month_start = today.replace(day=1)
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    year_start = date(today.year, 1, 1)
    name = name.replace("_FISCAL", "")
    k = n or 0
    table: dict[str, tuple[date, date]] = {
        "YESTERDAY": (today - timedelta(days=1), today),
        "TODAY": (today, today + timedelta(days=1)),
        "TOMORROW": (today + timedelta(days=1), today + timedelta(days=2)),
        "LAST_WEEK": (week_start - timedelta(days=7), week_start),
        "THIS_WEEK": (week_start, week_start + timedelta(days=7)),
        "NEXT_WEEK": (week_start + timedelta(days=7), week_start + timedelta(days=14)),
        "LAST_MONTH": (_add_months(month_start, -1), month_start),
        "THIS_MONTH": (month_start, _add_months(month_start, 1)),
        "NEXT_MONTH": (_add_months(month_start, 1), _add_months(month_start, 2)),
        "LAST_90_DAYS": (today - timedelta(days=90), today + timedelta(days=1)),
        "NEXT_90_DAYS": (today + timedelta(days=1), today + timedelta(days=91)),
        "THIS_QUARTER": (quarter_start, _add_months(quarter_start, 3)),
        "LAST_QUARTER": (_add_months(quarter_start, -3), quarter_start),
        "NEXT_QUARTER": (_add_months(quarter_start, 3), _add_months(quarter_start, 6)),
        "THIS_YEAR": (year_start, date(today.year + 1, 1, 1)),
        "LAST_YEAR": (date(today.year - 1, 1, 1), year_start),
        "NEXT_YEAR": (date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)),
    }
    if name in table:
        return table[name]
    try:
        ranges: dict[str, tuple[date, date]] = {
            "LAST_N_DAYS": (today - timedelta(days=k), today + timedelta(days=1)),
            "NEXT_N_DAYS": (today + timedelta(days=1), today + timedelta(days=k + 1)),
            "N_DAYS_AGO": (today - timedelta(days=k), today - timedelta(days=k - 1)),
            "LAST_N_WEEKS": (week_start - timedelta(days=7 * k), week_start),
            "NEXT_N_WEEKS": (week_start + timedelta(days=7), week_start + timedelta(days=7 * (k + 1))),
            "N_WEEKS_AGO": (week_start - timedelta(days=7 * k), week_start - timedelta(days=7 * (k - 1))),
            "LAST_N_MONTHS": (_add_months(month_start, -k), month_start),
            "NEXT_N_MONTHS": (_add_months(month_start, 1), _add_months(month_start, k + 1)),
            "N_MONTHS_AGO": (_add_months(month_start, -k), _add_months(month_start, -k + 1)),
            "LAST_N_QUARTERS": (_add_months(quarter_start, -3 * k), quarter_start),
            "NEXT_N_QUARTERS": (_add_months(quarter_start, 3), _add_months(quarter_start, 3 * (k + 1))),
            "N_QUARTERS_AGO": (_add_months(quarter_start, -3 * k), _add_months(quarter_start, -3 * (k - 1))),
            "LAST_N_YEARS": (date(today.year - k, 1, 1), year_start),
            "NEXT_N_YEARS": (date(today.year + 1, 1, 1), date(today.year + k + 1, 1, 1)),
            "N_YEARS_AGO": (date(today.year - k, 1, 1), date(today.year - k + 1, 1, 1)),
        }
    except (OverflowError, ValueError):
        raise SoqlError("MALFORMED_QUERY", f"date literal out of range: {name}:{n}") from None
    return ranges[name]
