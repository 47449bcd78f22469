"""Two ways to reach the local DuckDB warehouse, behind one small interface.

DuckDB lets one process open a file for writing. A single process (a CLI command, a
test) opens it directly (:class:`EmbeddedSession`); when several services run at once
the warehouse server owns the file and every service talks to it over Arrow Flight
(:class:`FlightSession`). See docs/adr/0011-local-warehouse-server.md.
"""

from __future__ import annotations

import abc
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight

from sfpipe.adapters.warehouse.duckdb import engine
from sfpipe.errors import BadInputError, TransientError


class DuckDBSession(abc.ABC):
    """Run DuckDB SQL (already transpiled) and move Arrow data in and out."""

    @abc.abstractmethod
    def fetch(self, sql: str) -> pa.Table:
        """Every row of a read query."""

    @abc.abstractmethod
    def stream(self, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The rows of a read query in batches."""

    def reader(self, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        """A read query as a stream that knows its schema before the first row (DB-API cursors need it)."""
        return self.fetch(sql).to_reader()

    @abc.abstractmethod
    def run(self, statements: Sequence[str], *, fetch_last: bool = False) -> pa.Table | None:
        """Statements in one write transaction."""

    @abc.abstractmethod
    def put(self, dataset: str, table: str, reader: pa.RecordBatchReader, *, replace: bool) -> int:
        """Stream Arrow data into a table."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


class EmbeddedSession(DuckDBSession):
    """The DuckDB file opened in this process."""

    def __init__(self, path: Path | str, memory_limit: str | None = None) -> None:
        self.path = path
        self.conn = engine.connect(path, memory_limit)
        self.lock = threading.Lock()

    def fetch(self, sql: str) -> pa.Table:
        """Every row of a read query."""
        return engine.fetch(self.conn, sql)

    def stream(self, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The rows of a read query in batches."""
        return engine.stream(self.conn, sql, batch_rows)

    def reader(self, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        """A read query as a lazy stream with its schema."""
        schema, batches = engine.stream_schema(self.conn, sql, batch_rows)
        return pa.RecordBatchReader.from_batches(schema, batches)

    def run(self, statements: Sequence[str], *, fetch_last: bool = False) -> pa.Table | None:
        """Statements in one write transaction."""
        return engine.run(self.conn, statements, self.lock, fetch_last=fetch_last)

    def put(self, dataset: str, table: str, reader: pa.RecordBatchReader, *, replace: bool) -> int:
        """Stream Arrow data into a table."""
        return engine.put(self.conn, self.lock, dataset, table, reader, replace=replace)

    def close(self) -> None:
        """Close the file."""
        self.conn.close()


def _raise_remote(exc: flight.FlightError) -> None:
    text = str(exc)
    if "BadInputError" in text:
        raise BadInputError(text.split("BadInputError:", 1)[-1].strip().split(". Detail:")[0]) from None
    if isinstance(exc, flight.FlightUnavailableError | flight.FlightTimedOutError) or "TransientError" in text:
        msg = f"local warehouse server: {text}"
        raise TransientError(msg) from None
    raise exc


class FlightSession(DuckDBSession):
    """The warehouse server, over Arrow Flight (gRPC)."""

    def __init__(self, url: str, timeout: float = 600.0) -> None:
        self.url = url
        self.client = flight.FlightClient(url)
        self.options = flight.FlightCallOptions(timeout=timeout)

    def fetch(self, sql: str) -> pa.Table:
        """Every row of a read query."""
        try:
            return self.client.do_get(flight.Ticket(json.dumps({"sql": sql}).encode()), self.options).read_all()
        except flight.FlightError as exc:
            _raise_remote(exc)
            raise

    def stream(self, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The rows of a read query in batches."""
        ticket = flight.Ticket(json.dumps({"sql": sql, "batch_rows": batch_rows}).encode())
        try:
            reader = self.client.do_get(ticket, self.options)
            for chunk in reader:
                yield chunk.data
        except flight.FlightError as exc:
            _raise_remote(exc)
            raise

    def reader(self, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        """A read query as a stream from the server: rows arrive as they are read."""
        ticket = flight.Ticket(json.dumps({"sql": sql, "batch_rows": batch_rows}).encode())
        try:
            stream = self.client.do_get(ticket, self.options)
            schema = stream.schema
        except flight.FlightError as exc:
            _raise_remote(exc)
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for chunk in stream:
                    yield chunk.data
            except flight.FlightError as exc:
                _raise_remote(exc)
                raise

        return pa.RecordBatchReader.from_batches(schema, batches())

    def run(self, statements: Sequence[str], *, fetch_last: bool = False) -> pa.Table | None:
        """Statements in one write transaction on the server."""
        body = json.dumps({"statements": list(statements), "fetch_last": fetch_last}).encode()
        try:
            results = list(self.client.do_action(flight.Action("run", body), self.options))
        except flight.FlightError as exc:
            _raise_remote(exc)
            raise
        if not fetch_last or not results:
            return None
        return pa.ipc.open_stream(results[0].body).read_all()

    def put(self, dataset: str, table: str, reader: pa.RecordBatchReader, *, replace: bool) -> int:
        """Stream Arrow data to the server, which writes it in one transaction."""
        descriptor = flight.FlightDescriptor.for_path(dataset, table, "replace" if replace else "append")
        try:
            writer, metadata_reader = self.client.do_put(descriptor, reader.schema, self.options)
            for batch in reader:
                writer.write_batch(batch)
            writer.done_writing()
            answer = metadata_reader.read()
            writer.close()
        except flight.FlightError as exc:
            _raise_remote(exc)
            raise
        return int(json.loads(answer.to_pybytes())["rows"]) if answer is not None else -1

    def ping(self) -> bool:
        """Whether the server answers."""
        try:
            list(self.client.do_action(flight.Action("ping", b""), flight.FlightCallOptions(timeout=2)))
        except flight.FlightError:
            return False
        return True

    def close(self) -> None:
        """Close the gRPC channel."""
        self.client.close()
