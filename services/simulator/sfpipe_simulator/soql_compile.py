"""SOQL AST → one DuckDB statement, resolved against the metadata.

The statement yields either one JSON text per record (REST: the record exactly as the page
carries it, built by DuckDB so that no Python touches a field), or one text column per
selected path (Bulk 2.0 CSV, Salesforce's formats), or AggregateResult rows, or a count.
Values are bound as parameters; identifiers come only from the metadata, never from the query.
Parent fields (``Account.Owner.Name``) become LEFT JOINs on the parent's ``Id``; polymorphic
parents (``Who``, ``What``) join a union of their target objects' Id, Name and type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from typing import Literal as TypingLiteral

from sfpipe_simulator.ids import is_valid_id, to18
from sfpipe_simulator.metadata import (
    ID_TYPES,
    INTEGER_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldDef,
    ObjectDef,
    get_object,
)
from sfpipe_simulator.soql import (
    ESCAPED_PERCENT,
    ESCAPED_UNDERSCORE,
    Aggregate,
    BoolOp,
    Comparison,
    Condition,
    FieldRef,
    FieldsMacro,
    Literal,
    Not,
    Query,
    SoqlError,
    date_literal_range,
    parse,
)

Mode = TypingLiteral["json", "csv"]
MAX_OFFSET = 2_000
FIELDS_LIMIT = 200
JSON_DATETIME = "%Y-%m-%dT%H:%M:%S.%g+0000"
CSV_DATETIME = "%Y-%m-%dT%H:%M:%S.%gZ"
ADDRESS_KEYS = (
    ("city", "City"),
    ("country", "Country"),
    ("countryCode", "CountryCode"),
    ("geocodeAccuracy", "GeocodeAccuracy"),
    ("latitude", "Latitude"),
    ("longitude", "Longitude"),
    ("postalCode", "PostalCode"),
    ("state", "State"),
    ("stateCode", "StateCode"),
    ("street", "Street"),
)
NAME_FIELDS = {"Case": "CaseNumber", "Order": "OrderNumber"}
POLYMORPHIC_FIELDS = {
    "id": FieldDef("Id", "id", label="ID"),
    "name": FieldDef("Name", "string", label="Name", length=255),
    "type": FieldDef("Type", "picklist", label="Object Type", length=255),
}


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A SQL string literal (for constants from the metadata or the URL prefix, never user input)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Rel:
    """A joined parent: its alias, object (None when polymorphic) and output name."""

    alias: str
    name: str
    obj: ObjectDef | None
    targets: tuple[str, ...]
    children: dict[str, Any] = field(default_factory=dict)


@dataclass
class Resolved:
    """A field path resolved to a column: the field, the alias it lives at, the chain of parents."""

    field: FieldDef
    alias: str
    chain: list[Rel]
    ref: FieldRef

    @property
    def column(self) -> str:
        """``alias."Column"``."""
        return f"{self.alias}.{q(self.field.name)}"

    @property
    def header(self) -> str:
        """The CSV header (``Account.Name``)."""
        return ".".join([r.name for r in self.chain] + [self.field.name])


@dataclass
class Compiled:
    """What the store runs for a query."""

    sql: str
    params: list[Any]
    kind: str  # records | count | aggregate
    sobject: ObjectDef
    headers: list[str]
    count_sql: str | None = None
    count_params: list[Any] = field(default_factory=list)


class Compiler:
    """Compiles one parsed query for one caller (REST JSON or Bulk CSV)."""

    def __init__(self, query: Query, *, include_deleted: bool, today: date, url_prefix: str, mode: Mode,
                 bulk: bool = False) -> None:  # fmt: skip
        self.query = query
        self.include_deleted = include_deleted
        self.today = today
        self.url_prefix = url_prefix
        self.mode = mode
        self.bulk = bulk
        self.params: list[Any] = []
        self.joins: list[str] = []
        self.rels: dict[tuple[str, ...], Rel] = {}
        self.n_alias = 0
        obj = get_object(query.sobject)
        if obj is None:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use a custom object, "
                "be sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
                query.text,
                query.sobject_pos,
            )
        self.obj = obj
        self.root = Rel("t0", obj.name, obj, (obj.name,))

    # ------------------------------------------------------------------ errors

    def _invalid_field(self, ref: FieldRef, name: str, on: str) -> SoqlError:
        return SoqlError(
            "INVALID_FIELD",
            f"No such column '{name}' on entity '{on}'. If you are attempting to use a custom field, be sure to "
            "append the '__c' after the custom field name. Please reference your WSDL or the describe call for "
            "the appropriate names.",
            self.query.text,
            ref.pos,
        )

    # ------------------------------------------------------------------ resolution

    def resolve(self, ref: FieldRef) -> Resolved:
        """Resolve a path, adding the joins its parents need."""
        parts = list(ref.parts)
        if len(parts) > 1:
            head = parts[0].lower()
            alias = (self.query.alias or "").lower()
            if head == alias or (head == self.obj.name.lower() and self.obj.relationship(parts[0]) is None):
                parts = parts[1:]
        current = self.root
        chain: list[Rel] = []
        key: tuple[str, ...] = ()
        for part in parts[:-1]:
            if current.obj is None:
                raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{part}' in field path. "
                                "Polymorphic relationships only expose Id, Name and Type here.",
                                self.query.text, ref.pos)  # fmt: skip
            ref_field = current.obj.relationship(part)
            if ref_field is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{part}' in field path. If you are attempting to use a "
                    "custom relationship, be sure to append the '__r' after the custom relationship name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                    self.query.text,
                    ref.pos,
                )
            key = (*key, ref_field.relationship_name or part)
            rel = self.rels.get(key)
            if rel is None:
                rel = self._join(current, ref_field, ref)
                self.rels[key] = rel
            chain.append(rel)
            current = rel
        leaf = parts[-1]
        if current.obj is None:
            found = POLYMORPHIC_FIELDS.get(leaf.lower())
            if found is None:
                raise self._invalid_field(ref, leaf, "Name")
            return Resolved(found, current.alias, chain, ref)
        f = current.obj.field(leaf)
        if f is None:
            raise self._invalid_field(ref, leaf, current.obj.name)
        return Resolved(f, current.alias, chain, ref)

    def _join(self, parent: Rel, ref_field: FieldDef, ref: FieldRef) -> Rel:
        self.n_alias += 1
        alias = f"t{self.n_alias}"
        fk = f"{parent.alias}.{q(ref_field.name)}"
        targets = tuple(t for t in ref_field.reference_to if get_object(t) is not None)
        name = ref_field.relationship_name or ref_field.name
        if not targets:
            raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{name}': its object "
                            f"({', '.join(ref_field.reference_to)}) is not part of this org.",
                            self.query.text, ref.pos)  # fmt: skip
        if len(ref_field.reference_to) == 1:
            target = get_object(targets[0])
            assert target is not None
            self.joins.append(f"LEFT JOIN {q(target.table)} {alias} ON {alias}.{q('Id')} = {fk}")
            return Rel(alias, name, target, targets)
        union = " UNION ALL ".join(
            f"SELECT {q('Id')}, {q(NAME_FIELDS.get(t, 'Name'))} AS {q('Name')}, {lit(t)} AS {q('Type')} FROM {q(t)}"
            for t in targets
        )
        self.joins.append(f"LEFT JOIN ({union}) {alias} ON {alias}.{q('Id')} = {fk}")
        return Rel(alias, name, None, targets)

    # ------------------------------------------------------------------ value expressions

    def json_value(self, r: Resolved) -> str:
        """The JSON value of a field (Salesforce's REST formats)."""
        f = r.field
        if f.type == "address":
            obj = r.chain[-1].obj if r.chain else self.obj
            assert obj is not None
            parts = {p.name.removeprefix(f.name.removesuffix("Address")): p for p in obj.compound_parts(f)}
            pairs = []
            for key, suffix in ADDRESS_KEYS:
                part = parts.get(suffix)
                pairs.append(f"{q(key)} := " + (f"{r.alias}.{q(part.name)}" if part else "NULL"))
            present = " OR ".join(f"{r.alias}.{q(p.name)} IS NOT NULL" for p in parts.values())
            return f"CASE WHEN {present} THEN struct_pack({', '.join(pairs)}) END"
        if f.type == "datetime":
            return f"strftime({r.column}, {lit(JSON_DATETIME)})"
        if f.type == "date":
            return f"strftime({r.column}, '%Y-%m-%d')"
        if f.type == "time":
            return f"strftime({r.column}, '%H:%M:%S.%gZ')"
        return r.column

    def csv_value(self, r: Resolved) -> str:
        """The CSV text of a field (Bulk API 2.0 formats)."""
        f = r.field
        if f.type == "address":
            raise SoqlError("FeatureNotEnabled", "Selecting compound data not supported in Bulk Query",
                            self.query.text, r.ref.pos)  # fmt: skip
        if f.type == "boolean":
            return f"CASE WHEN {r.column} THEN 'true' WHEN NOT {r.column} THEN 'false' END"
        if f.type == "datetime":
            return f"strftime({r.column}, {lit(CSV_DATETIME)})"
        if f.type == "date":
            return f"strftime({r.column}, '%Y-%m-%d')"
        if f.type == "time":
            return f"strftime({r.column}, '%H:%M:%S.%gZ')"
        if f.type in INTEGER_TYPES or f.type in NUMBER_TYPES:
            return f"CAST({r.column} AS VARCHAR)"
        return r.column

    # ------------------------------------------------------------------ select list

    def select_items(self) -> list[Resolved]:
        """The selected fields, FIELDS() expanded, duplicates refused."""
        out: list[Resolved] = []
        seen: set[str] = set()
        for item in self.query.select:
            if isinstance(item, FieldsMacro):
                if item.kind in {"ALL", "CUSTOM"} and (self.query.limit is None or self.query.limit > FIELDS_LIMIT):
                    raise SoqlError("MALFORMED_QUERY", f"The SOQL FIELDS function must have a LIMIT of at most "
                                    f"{FIELDS_LIMIT}", self.query.text, item.pos)  # fmt: skip
                if item.kind == "CUSTOM":
                    continue
                fields = self.obj.stored_fields if self.bulk else self.obj.fields
                refs = [FieldRef((f.name,), item.pos) for f in fields]
            elif isinstance(item, FieldRef):
                refs = [item]
            else:
                raise SoqlError("MALFORMED_QUERY", "aggregate functions cannot be mixed with fields without "
                                "GROUP BY", self.query.text, item.pos)  # fmt: skip
            for ref in refs:
                r = self.resolve(ref)
                key = r.header.lower()
                if key in seen:
                    raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {r.header}", self.query.text,
                                    ref.pos)  # fmt: skip
                seen.add(key)
                out.append(r)
        if not out:
            raise SoqlError("MALFORMED_QUERY", "unexpected token: 'FROM'", self.query.text, self.query.sobject_pos)
        return out

    def record_json(self, items: list[Resolved]) -> str:
        """One json_object per record, parents nested where they first appear."""
        tree: dict[str, Any] = {}
        rel_by_alias = {rel.alias: rel for rel in self.rels.values()}
        for r in items:
            node = tree
            for rel in r.chain:
                entry = node.setdefault(rel.name, ("rel", rel, {}))
                node = entry[2]
            node[r.field.name] = ("field", r)
        del rel_by_alias
        return self._object_json(self.root, tree)

    def _object_json(self, rel: Rel, node: dict[str, Any]) -> str:
        type_expr = f"{rel.alias}.{q('Type')}" if rel.obj is None else lit(rel.obj.name)
        url_base = f"{lit(self.url_prefix)} || {type_expr} || '/' || {rel.alias}.{q('Id')}"
        parts = [f"{q('attributes')} := struct_pack({q('type')} := {type_expr}, {q('url')} := {url_base})"]
        for key, entry in node.items():
            if entry[0] == "field":
                parts.append(f"{q(key)} := {self.json_value(entry[1])}")
            else:
                child: Rel = entry[1]
                inner = self._object_json(child, entry[2])
                parts.append(f"{q(key)} := CASE WHEN {child.alias}.{q('Id')} IS NULL THEN NULL ELSE {inner} END")
        return "struct_pack(" + ", ".join(parts) + ")"

    # ------------------------------------------------------------------ where

    def condition(self, cond: Condition, having: bool = False) -> str:
        """A WHERE or HAVING condition (each comparison two-valued, as SOQL treats NULL)."""
        if isinstance(cond, BoolOp):
            joiner = f" {cond.op} "
            return "(" + joiner.join(self.condition(c, having) for c in cond.items) + ")"
        if isinstance(cond, Not):
            return f"(NOT {self.condition(cond.item, having)})"
        return f"COALESCE({self.comparison(cond, having)}, FALSE)"

    def _left(self, left: FieldRef | Aggregate, having: bool) -> tuple[str, FieldDef, int]:
        if isinstance(left, Aggregate):
            expr, f = self.aggregate_expr(left)
            return expr, f, left.pos
        r = self.resolve(left)
        if not r.field.filterable:
            raise SoqlError("INVALID_FIELD", f"field '{r.field.name}' can not be filtered in a query call",
                            self.query.text, left.pos)  # fmt: skip
        if having and left.text.lower() not in {g.text.lower() for g in self.query.group_by}:
            raise SoqlError("MALFORMED_QUERY", f"Field must be grouped or aggregated: {r.field.name}",
                            self.query.text, left.pos)  # fmt: skip
        return r.column, r.field, left.pos

    def comparison(self, cmp: Comparison, having: bool) -> str:
        """One comparison."""
        column, f, pos = self._left(cmp.left, having)
        op = cmp.op
        category = _category(f)
        if op == "LIKE":
            assert isinstance(cmp.right, Literal)
            if category not in {"text", "id"}:
                raise SoqlError("INVALID_FIELD", f"invalid operator on {f.type} field: LIKE", self.query.text, pos)
            pattern = cmp.right.value.replace("\\", "\\\\")
            pattern = pattern.replace(ESCAPED_PERCENT, "\\%").replace(ESCAPED_UNDERSCORE, "\\_")
            self.params.append(pattern)
            return f"({column} ILIKE ? ESCAPE '\\')"
        if op in {"INCLUDES", "EXCLUDES"}:
            if f.type != "multipicklist":
                raise SoqlError("INVALID_FIELD", f"{op} operator only valid on multi-select picklist",
                                self.query.text, pos)  # fmt: skip
            assert isinstance(cmp.right, tuple)
            values = [self._bind_value(f, v) for v in cmp.right]
            self.params.append([str(v).lower() for v in values])
            test = f"list_has_any(string_split(lower({column}), ';'), ?)"
            return test if op == "INCLUDES" else f"NOT {test}"
        if op in {"IN", "NOT IN"}:
            assert isinstance(cmp.right, tuple)
            ranges = [v for v in cmp.right if v.kind == "dateliteral"]
            if ranges:
                parts = [self._range_compare(column, f, v, "=") for v in cmp.right]
                inner = "(" + " OR ".join(parts) + ")"
                return inner if op == "IN" else f"({column} IS NULL OR NOT {inner})"
            has_null = any(v.kind == "null" for v in cmp.right)
            values = [self._bind_value(f, v) for v in cmp.right if v.kind != "null"]
            expr = f"lower({column})" if category == "text" else column
            tests = []
            if values:
                self.params.extend(values)
                placeholders = ", ".join("?" for _ in values)
                tests.append(f"{expr} IN ({placeholders})")
            if has_null:
                tests.append(f"{column} IS NULL")
            inner = "(" + " OR ".join(tests) + ")"
            return inner if op == "IN" else f"NOT {inner}"
        assert isinstance(cmp.right, Literal)
        value = cmp.right
        if value.kind == "null":
            if op == "=":
                return f"({column} IS NULL)"
            if op == "!=":
                return f"({column} IS NOT NULL)"
            return "FALSE"
        if value.kind == "dateliteral":
            return self._range_compare(column, f, value, op)
        bound = self._bind_value(f, value, op)
        expr = f"lower({column})" if category == "text" else column
        self.params.append(bound)
        if op == "!=":
            return f"({expr} IS DISTINCT FROM ?)"
        return f"({expr} {op} ?)"

    def _range_compare(self, column: str, f: FieldDef, value: Literal, op: str) -> str:
        category = _category(f)
        if category not in {"date", "datetime"}:
            raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{f.name}' must be of type "
                            f"{_type_word(f)} and should not be enclosed in quotes", self.query.text, value.pos)
        name, n = value.value
        try:
            start, end = date_literal_range(name, n, self.today)
        except SoqlError as exc:
            raise SoqlError("MALFORMED_QUERY", exc.detail, self.query.text, value.pos) from None
        lo: date | datetime = start
        hi: date | datetime = end
        if category == "datetime":
            lo = datetime.combine(start, time()).replace(tzinfo=None)
            hi = datetime.combine(end, time()).replace(tzinfo=None)
        if op == "=":
            self.params.extend([lo, hi])
            return f"({column} >= ? AND {column} < ?)"
        if op == "!=":
            self.params.extend([lo, hi])
            return f"({column} IS NULL OR NOT ({column} >= ? AND {column} < ?))"
        bound = {"<": lo, "<=": hi, ">": hi, ">=": lo}[op]
        sql_op = {"<": "<", "<=": "<", ">": ">=", ">=": ">="}[op]
        self.params.append(bound)
        return f"({column} {sql_op} ?)"

    def _bind_value(self, f: FieldDef, value: Literal, op: str = "=") -> Any:
        category = _category(f)
        kind = value.kind
        mismatch = SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{f.name}' must be of type {_type_word(f)} and should not be "
            "enclosed in quotes" if category not in {"text", "id"} else
            f"value of filter criterion for field '{f.name}' must be of type string and should be enclosed in "
            "quotes",
            self.query.text,
            value.pos,
        )  # fmt: skip
        if category == "text":
            if kind != "string":
                raise mismatch
            return value.value.replace(ESCAPED_PERCENT, "%").replace(ESCAPED_UNDERSCORE, "_").lower()
        if category == "id":
            if kind != "string":
                raise mismatch
            text = value.value.replace(ESCAPED_PERCENT, "%").replace(ESCAPED_UNDERSCORE, "_")
            if is_valid_id(text) or (len(text) == 15 and text.isalnum()):
                return to18(text)
            if op in {"=", "!="} and text:
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}", self.query.text,
                                value.pos)  # fmt: skip
            return text
        if category == "boolean":
            if kind != "boolean":
                raise mismatch
            return value.value
        if category == "number":
            if kind != "number":
                raise mismatch
            return value.value
        if category == "date":
            if kind != "date":
                raise mismatch
            return value.value
        if category == "datetime":
            if kind != "datetime":
                raise mismatch
            moment: datetime = value.value
            return moment.astimezone(UTC).replace(tzinfo=None)
        if category == "time":
            raise mismatch
        raise mismatch

    # ------------------------------------------------------------------ aggregates

    def aggregate_expr(self, agg: Aggregate) -> tuple[str, FieldDef]:
        """SQL and result field of an aggregate function."""
        if agg.arg is None:
            return "count(*)", FieldDef("expr", "int")
        r = self.resolve(agg.arg)
        f = r.field
        category = _category(f)
        if agg.func in {"SUM", "AVG"} and category != "number":
            raise SoqlError("MALFORMED_QUERY", f"field {f.name} does not support aggregate operator {agg.func}",
                            self.query.text, agg.pos)  # fmt: skip
        if agg.func in {"MIN", "MAX"} and category in {"boolean"}:
            raise SoqlError("MALFORMED_QUERY", f"field {f.name} does not support aggregate operator {agg.func}",
                            self.query.text, agg.pos)  # fmt: skip
        if agg.func == "COUNT":
            return f"count({r.column})", FieldDef("expr", "int")
        if agg.func == "COUNT_DISTINCT":
            return f"count(DISTINCT {r.column})", FieldDef("expr", "int")
        if agg.func == "AVG":
            return f"avg({r.column})", FieldDef("expr", "double")
        return f"{agg.func.lower()}({r.column})", f

    # ------------------------------------------------------------------ whole query

    def base_where(self) -> list[str]:
        """Soft-deleted rows are only visible to queryAll."""
        if self.include_deleted or not self.obj.has_is_deleted:
            return []
        return [f"NOT t0.{q('IsDeleted')}"]

    def order_clause(self, aggregate: bool) -> str:
        """ORDER BY with Salesforce's NULL placement, text ordered case-insensitively."""
        keys = []
        for item in self.query.order_by:
            if isinstance(item.key, Aggregate):
                if not aggregate:
                    raise SoqlError("MALFORMED_QUERY", "aggregate functions in ORDER BY need GROUP BY",
                                    self.query.text, item.key.pos)  # fmt: skip
                expr, _ = self.aggregate_expr(item.key)
            else:
                r = self.resolve(item.key)
                if not r.field.sortable:
                    raise SoqlError("INVALID_FIELD", f"field '{r.field.name}' can not be sorted in a query call",
                                    self.query.text, item.key.pos)  # fmt: skip
                expr = f"lower({r.column})" if _category(r.field) == "text" else r.column
            direction = "DESC" if item.descending else "ASC"
            nulls = "NULLS FIRST" if item.nulls_first else "NULLS LAST"
            keys.append(f"{expr} {direction} {nulls}")
        return " ORDER BY " + ", ".join(keys) if keys else ""

    def limits(self) -> str:
        """LIMIT / OFFSET, with Salesforce's offset ceiling."""
        out = ""
        if self.query.offset is not None:
            if self.bulk:
                raise SoqlError("MALFORMED_QUERY", "OFFSET is not supported in Bulk API queries", self.query.text)
            if self.query.offset > MAX_OFFSET:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        if self.query.limit is not None:
            out += f" LIMIT {int(self.query.limit)}"
        if self.query.offset:
            if self.query.limit is None:
                out += " LIMIT 9223372036854775807"
            out += f" OFFSET {int(self.query.offset)}"
        return out

    def compile(self) -> Compiled:
        """The statement for this query."""
        query = self.query
        if query.is_count:
            if self.bulk:
                raise SoqlError("MALFORMED_QUERY", "COUNT() is not supported in Bulk API queries", query.text)
            return self._compile_count()
        if query.is_aggregate:
            if self.bulk:
                raise SoqlError("MALFORMED_QUERY", "Aggregate queries are not supported in Bulk API queries",
                                query.text)  # fmt: skip
            return self._compile_aggregate()
        if any(isinstance(s, Aggregate) and s.func == "COUNT" and s.arg is None for s in query.select):
            raise SoqlError("MALFORMED_QUERY", "COUNT() cannot be used with other fields", query.text)
        items = self.select_items()
        where = self.base_where()
        if query.where is not None:
            where.append(self.condition(query.where))
        order = self.order_clause(aggregate=False)
        limits = self.limits()
        if self.mode == "json":
            select = f"CAST(to_json({self.record_json(items)}) AS VARCHAR) AS j"
        else:
            select = ", ".join(f"{self.csv_value(r)} AS {q(r.header)}" for r in items)
        sql = f"SELECT {select} FROM {q(self.obj.table)} t0 {' '.join(self.joins)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += order + limits
        return Compiled(sql, list(self.params), "records", self.obj, [r.header for r in items])

    def _compile_count(self) -> Compiled:
        where = self.base_where()
        if self.query.where is not None:
            where.append(self.condition(self.query.where))
        inner = f"SELECT 1 FROM {q(self.obj.table)} t0 {' '.join(self.joins)}"
        if where:
            inner += " WHERE " + " AND ".join(where)
        inner += self.limits()
        sql = f"SELECT count(*) FROM ({inner})"
        return Compiled(sql, list(self.params), "count", self.obj, [])

    def _compile_aggregate(self) -> Compiled:
        query = self.query
        groups = [self.resolve(g) for g in query.group_by]
        group_keys = {g.ref.text.lower() for g in groups}
        parts = ["'attributes', json_object('type', 'AggregateResult')"]
        n_expr = 0
        used: set[str] = set()
        for item in query.select:
            if isinstance(item, FieldsMacro):
                raise SoqlError("MALFORMED_QUERY", "FIELDS() cannot be used in aggregate queries", query.text,
                                item.pos)  # fmt: skip
            if isinstance(item, Aggregate):
                expr, f = self.aggregate_expr(item)
                name = item.alias or f"expr{n_expr}"
                if item.alias is None:
                    n_expr += 1
                value = self._format_aggregate(expr, f)
            else:
                if item.text.lower() not in group_keys:
                    raise SoqlError("MALFORMED_QUERY", f"Field must be grouped or aggregated: {item.parts[-1]}",
                                    query.text, item.pos)  # fmt: skip
                r = self.resolve(item)
                name = r.field.name
                value = self.json_value(r)
            if name.lower() in used:
                raise SoqlError("MALFORMED_QUERY", f"duplicate alias: {name}", query.text)
            used.add(name.lower())
            parts.append(f"{lit(name)}, {value}")
        where = self.base_where()
        if query.where is not None:
            where.append(self.condition(query.where))
        sql = f"SELECT CAST(json_object({', '.join(parts)}) AS VARCHAR) AS j FROM {q(self.obj.table)} t0 "
        sql += " ".join(self.joins)
        if where:
            sql += " WHERE " + " AND ".join(where)
        if groups:
            sql += " GROUP BY " + ", ".join(g.column for g in groups)
        if query.having is not None:
            sql += " HAVING " + self.condition(query.having, having=True)
        sql += self.order_clause(aggregate=True) + self.limits()
        return Compiled(sql, list(self.params), "aggregate", self.obj, [])

    def _format_aggregate(self, expr: str, f: FieldDef) -> str:
        if f.type == "datetime":
            return f"strftime({expr}, {lit(JSON_DATETIME)})"
        if f.type == "date":
            return f"strftime({expr}, '%Y-%m-%d')"
        return expr


def _category(f: FieldDef) -> str:
    if f.type in ID_TYPES:
        return "id"
    if f.type in TEXT_TYPES:
        return "text"
    if f.type in NUMBER_TYPES or f.type in INTEGER_TYPES:
        return "number"
    if f.type in {"boolean", "date", "datetime", "time"}:
        return f.type
    return "other"


def _type_word(f: FieldDef) -> str:
    return {"datetime": "dateTime", "int": "integer", "currency": "double", "percent": "double"}.get(f.type, f.type)


def compile_soql(text: str, *, include_deleted: bool, today: date, version: str, mode: Mode = "json",
                 bulk: bool = False) -> Compiled:  # fmt: skip
    """Parse and compile a query for the REST (``json``) or Bulk (``csv``) path."""
    query = parse(text)
    compiler = Compiler(query, include_deleted=include_deleted, today=today,
                        url_prefix=f"/services/data/v{version}/sobjects/", mode=mode, bulk=bulk)  # fmt: skip
    return compiler.compile()
