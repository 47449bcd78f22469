"""Streaming an object's tables into zstd Parquet parts on the object store.

Tables are buffered only up to one row group (``row_group_bytes`` of Arrow data), then
encoded straight into a resumable upload: an object of any size passes through a bounded
amount of memory. A part becomes visible only when it is closed cleanly; an aborted part
is cancelled, so that a crash or a bad page never leaves half a file that a manifest
could point at.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sfpipe.adapters.storage import ObjectStore
from sfpipe.lake import ManifestFile

log = logging.getLogger(__name__)

ROW_GROUP_BYTES = 32 << 20
"""Arrow bytes buffered per row group (Parquet row groups stay well under 128 MiB)."""

PART_BYTES = 1 << 30
"""A part is closed and the next one started once this many Parquet bytes are written."""

_PART = re.compile(r"part-(\d{5})\.parquet$")


class _Aborted(Exception):
    """Thrown into an upload to cancel it."""


@dataclass
class _OpenPart:
    uri: str
    upload: contextlib.AbstractContextManager[IO[bytes]]
    stream: IO[bytes]
    writer: pq.ParquetWriter
    rows: int = 0


class ObjectWriter:
    """Writes one object's rows of one run as Parquet parts ``part-00000.parquet``, ``part-00001``…"""

    def __init__(
        self,
        store: ObjectStore,
        part_uri: Callable[[int], str],
        schema: pa.Schema,
        *,
        row_group_bytes: int = ROW_GROUP_BYTES,
        part_bytes: int = PART_BYTES,
        compression_level: int | None = None,
    ) -> None:
        self.store = store
        self.part_uri = part_uri
        self.schema = schema
        self.row_group_bytes = row_group_bytes
        self.part_bytes = part_bytes
        self.compression_level = compression_level
        self._buffer: list[pa.Table] = []
        self._buffered_bytes = 0
        self._buffered_rows = 0
        self._part: _OpenPart | None = None
        self._next_part = 0
        self.files: list[ManifestFile] = []
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        """Add rows; a row group is encoded and uploaded whenever enough are buffered."""
        if table.num_rows == 0:
            return
        if table.schema != self.schema:
            table = table.cast(self.schema)
        self._buffer.append(table)
        self._buffered_bytes += table.nbytes
        self._buffered_rows += table.num_rows
        if self._buffered_bytes >= self.row_group_bytes:
            self._flush_row_group()

    def _flush_row_group(self) -> None:
        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer, self._buffered_bytes, self._buffered_rows = [], 0, 0
        part = self._part or self._open_part()
        part.writer.write_table(table, row_group_size=max(table.num_rows, 1))
        part.rows += table.num_rows
        self.rows += table.num_rows
        if part.stream.tell() >= self.part_bytes:
            self._close_part()

    def _open_part(self) -> _OpenPart:
        uri = self.part_uri(self._next_part)
        self._next_part += 1
        upload = self.store.open_write(uri)
        stream = upload.__enter__()
        options: dict[str, Any] = {"compression": "zstd"}
        if self.compression_level is not None:
            options["compression_level"] = self.compression_level
        writer = pq.ParquetWriter(stream, self.schema, **options)
        self._part = _OpenPart(uri, upload, stream, writer)
        return self._part

    def _close_part(self) -> None:
        part = self._part
        if part is None:
            return
        self._part = None
        part.writer.close()
        part.upload.__exit__(None, None, None)
        stored = self.store.stat(part.uri)
        if stored is None:
            msg = f"{part.uri} was written but cannot be found"
            raise RuntimeError(msg)
        self.files.append(ManifestFile(uri=part.uri, generation=stored.generation, rows=part.rows, bytes=stored.size))

    def close(self) -> list[ManifestFile]:
        """Write what is buffered, finish the open part, and drop parts left by an earlier attempt."""
        self._flush_row_group()
        self._close_part()
        self._drop_stale_parts()
        return list(self.files)

    def abort(self) -> None:
        """Cancel the open part's upload; parts already closed stay (no manifest points at them)."""
        self._buffer, self._buffered_bytes, self._buffered_rows = [], 0, 0
        part = self._part
        if part is None:
            return
        self._part = None
        error = _Aborted("extraction of this object failed")
        with contextlib.suppress(Exception):
            part.writer.close()
        with contextlib.suppress(Exception):
            part.upload.__exit__(_Aborted, error, None)

    def _drop_stale_parts(self) -> None:
        """A re-run of the same run id may write fewer parts than the first attempt: delete the extra ones."""
        probe = self.part_uri(0)
        prefix_uri = probe.rsplit("/", 1)[0] + "/"
        bucket, prefix = prefix_uri[5:].split("/", 1)
        kept = {f.uri for f in self.files}
        for stored in self.store.list(bucket, prefix):
            match = _PART.search(stored.name)
            if match and stored.uri not in kept and int(match.group(1)) >= len(self.files):
                log.info("deleting %s left by an earlier attempt of this run", stored.uri)
                self.store.delete(stored.uri)
