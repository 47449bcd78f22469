"""Operations on one DuckDB connection, shared by the embedded warehouse and the server.

Writes are serialised by the caller (one lock per file); reads run on their own cursors
and see the last committed state (DuckDB's MVCC), so a long MERGE never blocks a reader.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from sfpipe.adapters.warehouse.base import check_name
from sfpipe.errors import BadInputError, TransientError

_CONFLICT = re.compile(r"conflict|lock", re.IGNORECASE)


def connect(path: Path | str, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file with sfpipe's session settings (and a memory cap, when given)."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            msg = (
                f"the local warehouse {path} is held by another process; "
                "start the warehouse server (`sfpipe up`) and set SFPIPE_WAREHOUSE_URL"
            )
            raise TransientError(msg) from exc
        raise
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET preserve_insertion_order = false")
    if memory_limit:
        # beyond it DuckDB spills sorts, joins and large inserts to <file>.tmp instead of growing
        conn.execute("SET memory_limit = ?", [memory_limit])
    return conn


def cursor(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A new cursor with the session settings (they are per cursor in DuckDB)."""
    cur = conn.cursor()
    cur.execute("SET TimeZone = 'UTC'")
    return cur


def _translate(exc: duckdb.Error, sql: str) -> Exception:
    text = str(exc)
    if isinstance(exc, duckdb.TransactionException) or _CONFLICT.search(text):
        return TransientError(f"warehouse conflict, retry: {text}")
    if isinstance(exc, duckdb.ParserException | duckdb.BinderException | duckdb.CatalogException):
        return BadInputError(f"{text}\n  in SQL: {sql[:2000]}", field="sql")
    if isinstance(exc, duckdb.InvalidInputException | duckdb.ConversionException):
        # a corrupt Parquet page or a value that does not fit its column: retrying cannot help
        return BadInputError(f"{text}\n  in SQL: {sql[:500]}", field="data")
    return exc


def fetch(conn: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run a query on its own cursor and return every row."""
    cur = cursor(conn)
    try:
        relation = cur.sql(sql)
        return relation.to_arrow_table() if relation is not None else pa.table({})
    except duckdb.Error as exc:
        raise _translate(exc, sql) from exc
    finally:
        cur.close()


def stream(conn: duckdb.DuckDBPyConnection, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Run a query on its own cursor and yield its rows in batches."""
    cur = cursor(conn)
    try:
        try:
            relation = cur.sql(sql)
        except duckdb.Error as exc:
            raise _translate(exc, sql) from exc
        if relation is None:
            return
        reader = relation.to_arrow_reader(batch_rows)
        yield from reader
    finally:
        cur.close()


def stream_schema(
    conn: duckdb.DuckDBPyConnection, sql: str, batch_rows: int
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """A query's schema and a generator of its batches (for the Flight server)."""
    cur = cursor(conn)
    try:
        relation = cur.sql(sql)
    except duckdb.Error as exc:
        cur.close()
        raise _translate(exc, sql) from exc
    if relation is None:
        cur.close()
        return pa.schema([]), iter(())
    reader = relation.to_arrow_reader(batch_rows)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            cur.close()

    return reader.schema, batches()


def run(
    conn: duckdb.DuckDBPyConnection,
    statements: Sequence[str],
    lock: threading.Lock,
    *,
    fetch_last: bool = False,
    retries: int = 5,
) -> pa.Table | None:
    """Run statements in one transaction under the write lock; the last one's rows if asked."""
    attempt = 0
    while True:
        attempt += 1
        with lock:
            cur = cursor(conn)
            try:
                cur.execute("BEGIN TRANSACTION")
                result: pa.Table | None = None
                for i, sql in enumerate(statements):
                    if fetch_last and i == len(statements) - 1:
                        relation = cur.sql(sql)
                        result = relation.to_arrow_table() if relation is not None else None
                    else:
                        cur.execute(sql).fetchall()
                cur.execute("COMMIT")
                return result
            except duckdb.Error as exc:
                try:
                    cur.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                failed = _translate(exc, "; ".join(statements))
                if isinstance(failed, TransientError) and attempt < retries:
                    time.sleep(0.05 * attempt)
                    continue
                raise failed from exc
            finally:
                cur.close()


def put(
    conn: duckdb.DuckDBPyConnection,
    lock: threading.Lock,
    dataset: str,
    table: str,
    reader: pa.RecordBatchReader,
    *,
    replace: bool,
) -> int:
    """Stream Arrow batches into a table in one transaction; rows written."""
    check_name(dataset, "dataset")
    check_name(table, "table")
    target = f'"{dataset}"."{table}"'
    counted = 0

    def counting() -> Iterator[pa.RecordBatch]:
        nonlocal counted
        for batch in reader:
            counted += batch.num_rows
            yield batch

    incoming = pa.RecordBatchReader.from_batches(reader.schema, counting())
    with lock:
        cur = cursor(conn)
        try:
            cur.execute("BEGIN TRANSACTION")
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{dataset}"').fetchall()
            exists = cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [dataset, table],
            ).fetchall()[0]
            cur.register("_sfpipe_incoming", incoming)
            if replace or not exists or not exists[0]:
                cur.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM _sfpipe_incoming")
            else:
                cur.execute(f"INSERT INTO {target} BY NAME SELECT * FROM _sfpipe_incoming")
            cur.unregister("_sfpipe_incoming")
            cur.execute("COMMIT")
            return counted
        except duckdb.Error as exc:
            try:
                cur.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise _translate(exc, f"load into {target}") from exc
        finally:
            cur.close()
