"""SQL that sfpipe generates, in BigQuery's dialect, shared by both warehouse backends."""

from __future__ import annotations

from collections.abc import Sequence

from sfpipe.adapters.warehouse.base import MergeSpec, check_name


def _q(name: str) -> str:
    return f"`{check_name(name, 'column')}`"


def newest_per_key_sql(spec: MergeSpec, columns: Sequence[str]) -> str:
    """The source's newest version of each key."""
    order = ", ".join(f"{_q(c)} DESC" for c in spec.sequence)
    cols = ", ".join(_q(c) for c in columns)
    return (
        f"SELECT {cols} FROM {spec.source.sql}\n"
        f"  WHERE TRUE\n"
        f"  QUALIFY ROW_NUMBER() OVER (PARTITION BY {_q(spec.key)} ORDER BY {order}) = 1"
    )


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


def merge_sql(spec: MergeSpec, columns: Sequence[str]) -> str:
    """One MERGE: insert new keys, update a key only with a strictly newer version."""
    if spec.key not in columns:
        msg = f"merge key {spec.key!r} is not among the source columns"
        raise ValueError(msg)
    updates = ",\n    ".join(f"{_q(c)} = s.{_q(c)}" for c in columns if c != spec.key)
    insert_cols = ", ".join(_q(c) for c in columns)
    insert_vals = ", ".join(f"s.{_q(c)}" for c in columns)
    return (
        f"MERGE {spec.target.sql} AS t\n"
        f"USING (\n  {newest_per_key_sql(spec, columns)}\n) AS s\n"
        f"ON t.{_q(spec.key)} = s.{_q(spec.key)}\n"
        f"WHEN MATCHED AND {newer_condition(spec.sequence)} THEN UPDATE SET\n    {updates}\n"
        f"WHEN NOT MATCHED THEN INSERT ({insert_cols})\n  VALUES ({insert_vals})"
    )


def merge_effect_sql(spec: MergeSpec, columns: Sequence[str]) -> str:
    """Counts of what a merge is about to do: run in the same transaction, before it.

    BigQuery's job statistics give inserted and updated rows but not how many of them
    are deletions; this query gives all three the same way on both backends.
    """
    newer = newer_condition(spec.sequence)
    if spec.deleted_flag:
        flag = _q(spec.deleted_flag)
        deleted = (
            f"COUNTIF(COALESCE(s.{flag}, FALSE) AND (t.{_q(spec.key)} IS NULL OR "
            f"({newer} AND NOT COALESCE(t.{flag}, FALSE))))"
        )
    else:
        deleted = "0"
    return (
        f"SELECT\n"
        f"  COUNTIF(t.{_q(spec.key)} IS NULL) AS inserted,\n"
        f"  COUNTIF(t.{_q(spec.key)} IS NOT NULL AND {newer}) AS updated,\n"
        f"  {deleted} AS deleted\n"
        f"FROM (\n  {newest_per_key_sql(spec, columns)}\n) AS s\n"
        f"LEFT JOIN {spec.target.sql} AS t ON t.{_q(spec.key)} = s.{_q(spec.key)}"
    )
