"""Building SOQL text: field lists, datetime literals, half-open time windows.

SOQL datetime literals are documented to the second (``2024-01-02T03:04:05Z``), so every
bound written here is a whole second; a window's lower bound is rounded down so that a
rounded window never loses a record, only re-reads one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

# Salesforce answers "414 URI Too Long" a little above 16 KiB of URL: keep URL-encoded REST queries under this.
MAX_REST_QUERY_CHARS = 15_000


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal in UTC, to the second (rounded down)."""
    if value.tzinfo is None:
        msg = f"{value!r} has no time zone; SOQL windows need aware datetimes"
        raise ValueError(msg)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_second(value: datetime) -> datetime:
    """The datetime rounded down to a whole second."""
    return value.replace(microsecond=0)


def ceil_second(value: datetime) -> datetime:
    """The datetime rounded up to a whole second."""
    return value if value.microsecond == 0 else value.replace(microsecond=0) + timedelta(seconds=1)


def quote(value: str) -> str:
    """A SOQL string literal, with backslashes and quotes escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def window_clause(cursor: str, start: datetime | None, end: datetime | None) -> str:
    """``cursor >= start AND cursor < end`` (either side may be open)."""
    parts = []
    if start is not None:
        parts.append(f"{cursor} >= {soql_datetime(floor_second(start))}")
    if end is not None:
        parts.append(f"{cursor} < {soql_datetime(ceil_second(end))}")
    return " AND ".join(parts)


def select(
    sobject: str,
    fields: Iterable[str],
    where: str = "",
    *,
    order_by: str | None = None,
    limit: int | None = None,
) -> str:
    """``SELECT f1, f2 FROM X [WHERE …] [ORDER BY …] [LIMIT n]``."""
    names = list(fields)
    if not names:
        msg = f"no fields to select from {sobject}"
        raise ValueError(msg)
    text = f"SELECT {', '.join(names)} FROM {sobject}"
    if where:
        text += f" WHERE {where}"
    if order_by:
        text += f" ORDER BY {order_by}"
    if limit is not None:
        text += f" LIMIT {int(limit)}"
    return text


def count(sobject: str, where: str = "") -> str:
    """``SELECT COUNT() FROM X [WHERE …]`` (the answer is ``totalSize``)."""
    text = f"SELECT COUNT() FROM {sobject}"
    if where:
        text += f" WHERE {where}"
    return text


def url_length(query: str) -> int:
    """Characters a query takes in a REST URL (``q=`` is URL-encoded on the way)."""
    return len(quote_plus(query))


def fits_url(query: str, limit: int = MAX_REST_QUERY_CHARS) -> bool:
    """Whether a query can travel as a REST ``q=`` parameter without passing the URL limit."""
    return url_length(query) <= limit


def column_groups(
    sobject: str,
    fields: Sequence[str],
    where: str = "",
    *,
    keys: Sequence[str] = ("Id",),
    order_by: str | None = "Id",
    limit: int = MAX_REST_QUERY_CHARS,
) -> list[list[str]]:
    """Split a field list into groups whose queries each fit a REST URL; every group starts with ``keys``.

    A very wide object (hundreds of custom fields) cannot be read by one REST query: Salesforce
    answers "414 URI Too Long". Its fields are queried in column groups that share the same
    filter and order and are joined back by ``Id`` (``keys`` also carries the version field, so
    that a row whose groups were read at different versions can be told apart). One group when
    the whole list fits.
    """
    head = [k for k in keys if k in fields or k == "Id"]
    rest = [f for f in fields if f not in head]

    def length(group: list[str]) -> int:
        return url_length(select(sobject, group, where, order_by=order_by))

    if length(head) > limit:
        msg = f"{sobject}: even {', '.join(head)} with the filter does not fit a REST URL of {limit} characters"
        raise ValueError(msg)
    groups: list[list[str]] = []
    current = list(head)
    for name in rest:
        current.append(name)
        if length(current) > limit:
            current.pop()
            if len(current) == len(head):
                msg = f"{sobject}.{name} alone does not fit a REST URL of {limit} characters"
                raise ValueError(msg)
            groups.append(current)
            current = [*head, name]
    groups.append(current)
    return groups
