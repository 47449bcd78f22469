"""The local warehouse server: one process owns the DuckDB file and serves every service.

It speaks Arrow Flight: ``DoGet`` runs a read query and streams its rows, ``DoPut``
streams Arrow data into a table, and the ``run`` action executes write statements in one
transaction. Writes are serialised by one lock; reads run concurrently on their own
cursors against the last committed state.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from sfpipe.adapters.warehouse.duckdb import engine
from sfpipe.errors import BadInputError, TransientError

log = logging.getLogger(__name__)


def _flight_error(exc: Exception) -> flight.FlightError:
    name = type(exc).__name__
    if isinstance(exc, TransientError):
        return flight.FlightUnavailableError(f"TransientError: {exc}")
    if isinstance(exc, BadInputError):
        return flight.FlightServerError(f"BadInputError: {exc}")
    return flight.FlightServerError(f"{name}: {exc}")


class WarehouseServer(flight.FlightServerBase):
    """Arrow Flight in front of one DuckDB file."""

    def __init__(self, path: Path | str, location: str, memory_limit: str | None = None, **kwargs: Any) -> None:
        super().__init__(location, **kwargs)
        self.path = path
        self.conn = engine.connect(path, memory_limit)
        self.lock = threading.Lock()

    def do_get(self, context: flight.ServerCallContext, ticket: flight.Ticket) -> flight.FlightDataStream:
        """Stream a read query's rows."""
        request = json.loads(ticket.ticket)
        try:
            schema, batches = engine.stream_schema(self.conn, request["sql"], int(request.get("batch_rows", 100_000)))
        except Exception as exc:
            raise _flight_error(exc) from exc
        return flight.GeneratorStream(schema, batches)

    def do_put(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        """Write a stream of batches into ``dataset.table`` (append or replace)."""
        dataset, table, mode = (p.decode() for p in descriptor.path)
        try:
            rows = engine.put(self.conn, self.lock, dataset, table, reader.to_reader(), replace=mode == "replace")
        except Exception as exc:
            raise _flight_error(exc) from exc
        writer.write(pa.py_buffer(json.dumps({"rows": rows}).encode()))

    def do_action(self, context: flight.ServerCallContext, action: flight.Action) -> list[bytes]:
        """`run`: write statements in one transaction; `ping`: a health check."""
        if action.type == "ping":
            return [b"pong"]
        if action.type != "run":
            raise flight.FlightServerError(f"BadInputError: unknown action {action.type!r}")
        request = json.loads(action.body.to_pybytes())
        try:
            result = engine.run(self.conn, request["statements"], self.lock, fetch_last=bool(request.get("fetch_last")))
        except Exception as exc:
            raise _flight_error(exc) from exc
        if result is None:
            return []
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, result.schema) as out:
            out.write_table(result)
        return [sink.getvalue().to_pybytes()]

    def list_actions(self, context: flight.ServerCallContext) -> list[tuple[str, str]]:
        """The actions this server understands."""
        return [("run", "write statements in one transaction"), ("ping", "health check")]


def serve(path: Path | str, host: str, port: int, memory_limit: str | None = None) -> None:
    """Serve the warehouse until interrupted."""
    server = WarehouseServer(path, f"grpc://{host}:{port}", memory_limit)
    log.info("warehouse server on grpc://%s:%s owns %s", host, server.port, path)
    server.serve()
