"""How Great Expectations reaches the warehouse: the one place that decides it.

The factory already chose the warehouse by mode; this module only asks which warehouse it
got and gives GX a matching SQLAlchemy datasource:

- DuckDB (local): the ``duckdb+sfpipe`` dialect of :mod:`sfpipe_quality.dbapi`, whose
  connections run GX's SQL through the warehouse's own session (the warehouse server
  over Arrow Flight, or the file this process opened). Suite SQL, written in BigQuery's
  dialect, is transpiled by the library's one transpiler.
- BigQuery (gcp): sqlalchemy-bigquery on the warehouse's own ``bigquery.Client`` (same
  project, credentials and location); suite SQL runs as written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.adapters.warehouse.transpile import to_duckdb_one
from sfpipe.errors import BadInputError
from sfpipe_quality.spec import BATCH

_PLACEHOLDER = "sfpipe_gx_batch_placeholder"


@dataclass
class GxConnection:
    """A SQLAlchemy connection string and engine arguments for GX, and the SQL dialect it speaks."""

    connection_string: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    dialect: str = "bigquery"

    def sql(self, bigquery_sql: str) -> str:
        """Suite SQL (BigQuery dialect, ``{batch}`` for the table under test) in this engine's dialect."""
        if self.dialect == "bigquery":
            return bigquery_sql
        marked = bigquery_sql.replace(BATCH, _PLACEHOLDER)
        out = to_duckdb_one(marked)
        return out.replace(f'"{_PLACEHOLDER}"', BATCH).replace(_PLACEHOLDER, BATCH)


def connection_for(warehouse: Warehouse, on_statement: Callable[[str], None] | None = None) -> GxConnection:
    """The GX datasource of a warehouse; ``on_statement`` sees every SQL statement sent (local only)."""
    if warehouse.name == "duckdb":
        from sfpipe_quality import dbapi

        session = warehouse.session  # type: ignore[attr-defined]

        def creator() -> dbapi.Connection:
            return dbapi.Connection(session, on_statement)

        return GxConnection(dbapi.URL, {"creator": creator}, dialect="duckdb")
    if warehouse.name == "bigquery":
        client = warehouse.client  # type: ignore[attr-defined]
        location = getattr(warehouse, "location", None)
        url = f"bigquery://{client.project}?user_supplied_client=true"
        if location:
            url += f"&location={location}"
        return GxConnection(url, {"connect_args": {"client": client}}, dialect="bigquery")
    msg = f"no Great Expectations datasource for a {warehouse.name!r} warehouse; expected duckdb or bigquery"
    raise BadInputError(msg, field="warehouse")
