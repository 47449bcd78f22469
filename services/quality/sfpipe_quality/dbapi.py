"""A DB-API 2.0 driver and SQLAlchemy dialect over sfpipe's local warehouse session.

Great Expectations reaches a database through SQLAlchemy. Locally the DuckDB file is
owned by one process (the warehouse server, or this process when it opened the file
itself), and DuckDB lets no second process open it, not even read-only. So GX does not
open the file: its SQL, compiled by duckdb-engine's dialect, is sent through the same
:class:`~sfpipe.adapters.warehouse.duckdb.session.DuckDBSession` every sfpipe process
uses — Arrow Flight to the server, or the in-process connection. Every query GX builds
is an aggregate or a ``LIMIT``-ed sample, and rows are streamed, so a cursor that is
closed early never pulls more than the batch in flight. See
docs/adr/0070-quality-checks-through-the-warehouse-session.md.

The URL ``duckdb+sfpipe://`` names this dialect; the session comes in through the
engine's ``creator``. Parameters are bound client-side (``pyformat``), as psycopg2 and
PyMySQL do, because the session speaks plain SQL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects import registry

from sfpipe.adapters.warehouse.duckdb.session import DuckDBSession
from sfpipe.errors import BadInputError, SfpipeError

DIALECT_NAME = "duckdb.sfpipe"
URL = "duckdb+sfpipe://"
BATCH_ROWS = 1_000

apilevel = "2.0"
threadsafety = 1
paramstyle = "pyformat"


class Error(Exception):
    """The DB-API error root."""


class Warning(Exception):
    """A DB-API warning (never raised)."""


class InterfaceError(Error):
    """Misuse of the driver."""


class DatabaseError(Error):
    """The warehouse rejected or failed a statement."""


class DataError(DatabaseError):
    """A value could not be handled."""


class OperationalError(DatabaseError):
    """The warehouse was unreachable or busy."""


class IntegrityError(DatabaseError):
    """Not raised: the session runs no constraints through this driver."""


class InternalError(DatabaseError):
    """An internal failure in the warehouse."""


class ProgrammingError(DatabaseError):
    """The SQL does not parse or bind."""


class NotSupportedError(DatabaseError):
    """An operation the driver does not offer."""


def Binary(value: bytes) -> bytes:
    """Bytes pass through unchanged."""
    return value


def render_literal(value: Any) -> str:
    """A Python value as a DuckDB SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"'{value}'::DOUBLE"
        return repr(value)
    if isinstance(value, Decimal):
        return f"{value}"
    if isinstance(value, datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return f"{kind} '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, time):
        return f"TIME '{value.isoformat()}'"
    if isinstance(value, timedelta):
        return f"INTERVAL '{value.total_seconds()} seconds'"
    if isinstance(value, bytes | bytearray | memoryview):
        return "'" + "".join(f"\\x{b:02x}" for b in bytes(value)) + "'::BLOB"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_literal(v) for v in value) + "]"
    return "'" + str(value).replace("'", "''") + "'"


def bind(statement: str, parameters: Mapping[str, Any] | Sequence[Any] | None) -> str:
    """Substitute ``%(name)s`` parameters as literals (``%%`` becomes ``%``)."""
    if parameters is None:
        return statement
    if isinstance(parameters, Mapping):
        return statement % {k: render_literal(v) for k, v in parameters.items()}
    return statement % tuple(render_literal(v) for v in parameters)


def _plain(column: pa.Array) -> pa.Array:
    """Decimals as floats: GX turns each Decimal into a float anyway, but inspects the call stack
    for every one it converts (tens of milliseconds each).
    """
    if pa.types.is_decimal(column.type):
        return column.cast(pa.float64())
    return column


def _translate(exc: Exception) -> Error:
    if isinstance(exc, BadInputError):
        return ProgrammingError(str(exc))
    if isinstance(exc, SfpipeError):
        return OperationalError(str(exc))
    return DatabaseError(f"{type(exc).__name__}: {exc}")


class Cursor:
    """Runs one statement at a time through the session and streams its rows."""

    arraysize = 100

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.description: list[tuple[str, str, None, None, None, None, bool]] | None = None
        self.rowcount = -1
        self._rows: Iterator[tuple[Any, ...]] | None = None
        self._reader: pa.RecordBatchReader | None = None
        self.statements: list[str] = []

    def execute(self, operation: str, parameters: Mapping[str, Any] | Sequence[Any] | None = None) -> Cursor:
        """Run a statement; a query's rows are read lazily."""
        self._close_reader()
        sql = bind(operation, parameters)
        self.connection.log(sql)
        try:
            reader = self.connection.session.reader(sql, BATCH_ROWS)
        except Exception as exc:
            raise _translate(exc) from exc
        if len(reader.schema) == 0:
            self.description = None
            self._rows = iter(())
            return self
        self._reader = reader
        self.description = [(f.name, str(f.type), None, None, None, None, f.nullable) for f in reader.schema]
        self._rows = self._iterate(reader)
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement once per parameter set."""
        for parameters in seq_of_parameters:
            self.execute(operation, parameters)

    @staticmethod
    def _iterate(reader: pa.RecordBatchReader) -> Iterator[tuple[Any, ...]]:
        try:
            for batch in reader:
                columns = [_plain(column).to_pylist() for column in batch.columns]
                yield from zip(*columns, strict=True)
        except Exception as exc:
            raise _translate(exc) from exc

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None."""
        if self._rows is None:
            raise InterfaceError("no statement was executed")
        return next(self._rows, None)

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """Up to ``size`` rows (``arraysize`` by default)."""
        count = self.arraysize if size is None else size
        rows = []
        for _ in range(count):
            row = self.fetchone()
            if row is None:
                break
            rows.append(row)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every remaining row."""
        if self._rows is None:
            raise InterfaceError("no statement was executed")
        return list(self._rows)

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._rows = None

    def close(self) -> None:
        """Stop reading: the rest of a stream is never fetched."""
        self._close_reader()

    def setinputsizes(self, sizes: Any) -> None:
        """Ignored, as the DB-API allows."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Ignored, as the DB-API allows."""


class Connection:
    """A read connection over a session; commit and rollback have nothing to do."""

    def __init__(self, session: DuckDBSession, on_statement: Callable[[str], None] | None = None) -> None:
        self.session = session
        self.on_statement = on_statement
        self.closed = False
        self.notices: list[str] = []

    def log(self, sql: str) -> None:
        """Tell an observer which SQL is sent (tests and the benchmark count it)."""
        if self.on_statement is not None:
            self.on_statement(sql)

    def cursor(self) -> Cursor:
        """A new cursor."""
        if self.closed:
            raise InterfaceError("connection is closed")
        return Cursor(self)

    def commit(self) -> None:
        """Nothing to commit: checks only read."""

    def rollback(self) -> None:
        """Nothing to roll back: checks only read."""

    def close(self) -> None:
        """Forget the session (the warehouse owns and closes it)."""
        self.closed = True


class _DBAPI:
    """This module, as SQLAlchemy's ``dbapi`` object."""

    apilevel = apilevel
    threadsafety = threadsafety
    paramstyle = paramstyle
    Error = Error
    Warning = Warning
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError
    TransactionException = OperationalError
    ParserException = ProgrammingError
    Binary = staticmethod(Binary)


class SessionDialect(DuckDBDialect):
    """duckdb-engine's DuckDB dialect, executing through an sfpipe session."""

    driver = "sfpipe"
    default_paramstyle = "pyformat"
    supports_statement_cache = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("paramstyle", "pyformat")
        super().__init__(*args, **kwargs)

    @staticmethod
    def dbapi(**kwargs: Any) -> Any:  # type: ignore[override]
        """This driver's DB-API object."""
        return _DBAPI

    @classmethod
    def import_dbapi(cls) -> Any:
        """This driver's DB-API object."""
        return _DBAPI

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        """Connections come from the engine's ``creator`` (which carries the session)."""
        msg = "the duckdb+sfpipe dialect needs create_engine(..., creator=...) with an sfpipe session"
        raise InterfaceError(msg)

    def do_rollback(self, dbapi_connection: Any) -> None:
        """Nothing to roll back."""

    def do_commit(self, dbapi_connection: Any) -> None:
        """Nothing to commit."""

    def do_begin(self, dbapi_connection: Any) -> None:
        """Reads need no transaction: each query sees the last committed state."""

    def get_columns(  # type: ignore[override]
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        """Columns from DuckDB's information_schema.

        SQLAlchemy 2.1's PostgreSQL reflection joins ``pg_collation``, which DuckDB does
        not emulate, so the inherited query fails and GX would fall back to a query that
        drops the schema name.
        """
        rows = connection.exec_driver_sql(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            f"WHERE table_schema = {render_literal(schema or 'main')} AND table_name = {render_literal(table_name)} "
            "ORDER BY ordinal_position"
        ).fetchall()
        if not rows:
            from sqlalchemy.exc import NoSuchTableError

            raise NoSuchTableError(f"{schema}.{table_name}" if schema else table_name)
        return [
            {
                "name": name,
                "type": sql_type(data_type),
                "nullable": nullable == "YES",
                "default": None,
                "autoincrement": False,
            }
            for name, data_type, nullable in rows
        ]


def sql_type(duckdb_type: str) -> Any:
    """A DuckDB type name as a SQLAlchemy type (for GX's column-type metrics)."""
    from sqlalchemy import types as sqltypes

    name = duckdb_type.upper()
    base = name.split("(", 1)[0].strip()
    simple: dict[str, Any] = {
        "VARCHAR": sqltypes.String,
        "BOOLEAN": sqltypes.Boolean,
        "BIGINT": sqltypes.BigInteger,
        "INTEGER": sqltypes.Integer,
        "SMALLINT": sqltypes.SmallInteger,
        "TINYINT": sqltypes.SmallInteger,
        "HUGEINT": sqltypes.Numeric,
        "DOUBLE": sqltypes.Float,
        "FLOAT": sqltypes.Float,
        "DATE": sqltypes.Date,
        "TIME": sqltypes.Time,
        "BLOB": sqltypes.LargeBinary,
        "JSON": sqltypes.JSON,
        "UUID": sqltypes.Uuid,
    }
    if base in simple:
        return simple[base]()
    if base in ("DECIMAL", "NUMERIC"):
        return sqltypes.Numeric()
    if base.startswith("TIMESTAMP"):
        return sqltypes.TIMESTAMP(timezone="TIME ZONE" in name or base == "TIMESTAMPTZ")
    return sqltypes.NullType()


registry.register(DIALECT_NAME, __name__, "SessionDialect")
