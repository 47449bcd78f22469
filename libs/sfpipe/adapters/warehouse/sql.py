"""SQL that sfpipe generates, in BigQuery's dialect, shared by both warehouse backends."""

from __future__ import annotations

from collections.abc import Sequence

from sfpipe.adapters.warehouse.base import MergeSpec, check_name


def _q(name: str) -> str:
    return f"`{check_name(name, 'column')}`"


def _source_sql(spec: MergeSpec) -> str:
    return f"(\n  {spec.source_query}\n  ) AS _rows" if spec.source_query else spec.source.sql


def newest_per_key_sql(spec: MergeSpec, columns: Sequence[str]) -> str:
    """The source's newest version of each key (ties broken by ``spec.tiebreak``)."""
    cols = ", ".join(_q(c) for c in (*columns, *(c for c in spec.carry if c not in columns)))
    if spec.unique_source:
        return f"SELECT {cols} FROM {_source_sql(spec)}"
    order = ", ".join(f"{_q(c)} DESC" for c in (*spec.sequence, *spec.tiebreak))
    rank = f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {_q(spec.key)} ORDER BY {order}) = 1"
    if spec.rank_repeated_only:
        # the source is spelt out each time, not a CTE: DuckDB would materialise a CTE used
        # more than once (a full copy of the rows); BigQuery reads only the key column for
        # the repeated-key subqueries
        key = _q(spec.key)
        source = _source_sql(spec)
        repeated = f"SELECT {key} FROM {source} GROUP BY {key} HAVING COUNT(*) > 1"
        return (
            f"SELECT {cols} FROM {source}\n  WHERE {key} NOT IN ({repeated})\n"
            f"UNION ALL\n"
            f"SELECT {cols} FROM {source}\n  WHERE {key} IN ({repeated})\n  {rank}"
        )
    return f"SELECT {cols} FROM {_source_sql(spec)}\n  WHERE TRUE\n  {rank}"


def _merge_source(spec: MergeSpec, columns: Sequence[str]) -> str:
    return f"(\n  {newest_per_key_sql(spec, columns)}\n)"


def newer_condition(sequence: Sequence[str], new: str = "s", old: str = "t") -> str:
    """`new` is strictly newer than `old` by the sequence columns compared left to right.

    A NULL on the old side counts as older than anything; the generated SQL is the same
    in both dialects.
    """
    terms = []
    for i, col in enumerate(sequence):
        equal_prefix = [f"{new}.{_q(prev)} IS NOT DISTINCT FROM {old}.{_q(prev)}" for prev in sequence[:i]]
        newer = f"({new}.{_q(col)} > {old}.{_q(col)} OR ({old}.{_q(col)} IS NULL AND {new}.{_q(col)} IS NOT NULL))"
        terms.append("(" + " AND ".join([*equal_prefix, newer]) + ")")
    return "(" + " OR ".join(terms) + ")"


def equal_condition(sequence: Sequence[str], new: str = "s", old: str = "t") -> str:
    """`new` and `old` carry the same version."""
    return "(" + " AND ".join(f"{new}.{_q(c)} IS NOT DISTINCT FROM {old}.{_q(c)}" for c in sequence) + ")"


def replaces_condition(spec: MergeSpec) -> str:
    """When a matched source row replaces the target's.

    Strictly newer; or equal, for refresh runs; or a live row over a tombstone, for repairs.
    """
    newer = newer_condition(spec.sequence)
    condition = f"({newer} OR {equal_condition(spec.sequence)})" if spec.replace_equal else newer
    if spec.revive_tombstones and spec.tombstone_flag:
        flag = _q(spec.tombstone_flag)
        condition = f"({condition} OR (COALESCE(t.{flag}, FALSE) AND NOT COALESCE(s.{flag}, FALSE)))"
    return condition


def _tombstone(spec: MergeSpec) -> str | None:
    return f"COALESCE(s.{_q(spec.tombstone_flag)}, FALSE)" if spec.tombstone_flag else None


def merge_sql(spec: MergeSpec, columns: Sequence[str]) -> str:
    """One MERGE: insert new keys, update a key only with a strictly newer version."""
    if spec.key not in columns:
        msg = f"merge key {spec.key!r} is not among the source columns"
        raise ValueError(msg)
    tomb = _tombstone(spec)
    if tomb:
        updates = ",\n    ".join(
            f"{_q(c)} = IF({tomb}, COALESCE(s.{_q(c)}, t.{_q(c)}), s.{_q(c)})" for c in columns if c != spec.key
        )
    else:
        updates = ",\n    ".join(f"{_q(c)} = s.{_q(c)}" for c in columns if c != spec.key)
    insert_cols = ", ".join(_q(c) for c in columns)
    insert_vals = ", ".join(f"s.{_q(c)}" for c in columns)
    not_matched = f"WHEN NOT MATCHED AND NOT {tomb} THEN" if tomb else "WHEN NOT MATCHED THEN"
    return (
        f"MERGE {spec.target.sql} AS t\n"
        f"USING {_merge_source(spec, columns)} AS s\n"
        f"ON t.{_q(spec.key)} = s.{_q(spec.key)}\n"
        f"WHEN MATCHED AND {replaces_condition(spec)} THEN UPDATE SET\n    {updates}\n"
        f"{not_matched} INSERT ({insert_cols})\n  VALUES ({insert_vals})"
    )


def merge_effect_sql(spec: MergeSpec, columns: Sequence[str]) -> str:
    """Counts of what a merge is about to do: run in the same transaction, before it.

    BigQuery's job statistics give inserted and updated rows but not how many of them
    are deletions; this query gives all three the same way on both backends. A deletion
    is also an insert or an update; a tombstone that finds no row counts nothing.
    """
    replaces = replaces_condition(spec)
    key = _q(spec.key)
    tomb = _tombstone(spec)
    inserting = f"(t.{key} IS NULL AND NOT {tomb})" if tomb else f"t.{key} IS NULL"
    if spec.deleted_flag:
        flag = _q(spec.deleted_flag)
        deleted = (
            f"COUNTIF(COALESCE(s.{flag}, FALSE) AND ({inserting} OR "
            f"(t.{key} IS NOT NULL AND {replaces} AND NOT COALESCE(t.{flag}, FALSE))))"
        )
    else:
        deleted = "0"
    source_sql = f"(\n  {newest_per_key_sql(spec, columns)}\n)"
    return (
        f"SELECT\n"
        f"  COUNTIF({inserting}) AS inserted,\n"
        f"  COUNTIF(t.{key} IS NOT NULL AND {replaces}) AS updated,\n"
        f"  {deleted} AS deleted\n"
        f"FROM {source_sql} AS s\n"
        f"LEFT JOIN {spec.target.sql} AS t ON t.{key} = s.{key}"
    )
