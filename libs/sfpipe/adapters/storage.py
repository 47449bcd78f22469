"""The object store: GCS in the cloud, fake-gcs-server locally, one client library for both.

Writes stream (resumable uploads in chunks) so that no file is held whole in memory;
state files are written with ``if_generation_match`` so that two writers can never both
believe they moved a watermark.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import google.cloud.storage as storage
from google.api_core import exceptions as gexc

from sfpipe.errors import BadInputError, ConflictError, NotFoundError, TransientError

log = logging.getLogger(__name__)

CHUNK_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    """An object's identity: where it is and which generation."""

    bucket: str
    name: str
    generation: int
    size: int

    @property
    def uri(self) -> str:
        """`gs://bucket/name`."""
        return f"gs://{self.bucket}/{self.name}"


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/name` → (bucket, name), with a clear error for anything else."""
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        msg = f"{uri!r} is not an object URI; expected gs://<bucket>/<name>"
        raise BadInputError(msg, field="uri")
    bucket, name = uri[5:].split("/", 1)
    if not bucket or not name:
        msg = f"{uri!r} is not an object URI; expected gs://<bucket>/<name>"
        raise BadInputError(msg, field="uri")
    return bucket, name


class ObjectStore:
    """Buckets and objects through ``google-cloud-storage``."""

    def __init__(self, client: storage.Client) -> None:
        self.client = client

    def ensure_bucket(self, bucket: str, *, versioned: bool = False) -> None:
        """Create a bucket if it does not exist (local set-up; Terraform owns cloud buckets)."""
        try:
            self.client.get_bucket(bucket)
        except gexc.NotFound:
            created = self.client.bucket(bucket)
            created.versioning_enabled = versioned
            try:
                self.client.create_bucket(created)
            except gexc.Conflict:
                pass

    @contextmanager
    def open_write(self, uri: str, content_type: str = "application/octet-stream") -> Iterator[IO[bytes]]:
        """A writable stream to an object; it exists only once the block exits cleanly."""
        bucket, name = split_uri(uri)
        blob = self.client.bucket(bucket).blob(name, chunk_size=CHUNK_SIZE)
        with blob.open("wb", content_type=content_type, ignore_flush=True) as stream:
            yield stream

    @contextmanager
    def open_read(self, uri: str) -> Iterator[IO[bytes]]:
        """A readable, seekable stream of an object (fetched in chunks)."""
        bucket, name = split_uri(uri)
        blob = self.client.bucket(bucket).blob(name, chunk_size=CHUNK_SIZE)
        try:
            with blob.open("rb") as stream:
                yield stream
        except gexc.NotFound:
            msg = f"{uri} does not exist"
            raise NotFoundError(msg) from None

    def upload_file(self, uri: str, path: str, content_type: str = "application/octet-stream") -> StoredObject:
        """Upload a local file (resumable for large files)."""
        bucket, name = split_uri(uri)
        blob = self.client.bucket(bucket).blob(name, chunk_size=CHUNK_SIZE)
        blob.upload_from_filename(path, content_type=content_type)
        return StoredObject(bucket, name, int(blob.generation or 0), int(blob.size or 0))

    def download_file(self, uri: str, path: str, generation: int | None = None) -> None:
        """Download an object to a local file, optionally a given generation."""
        bucket, name = split_uri(uri)
        blob = self.client.bucket(bucket).blob(name, generation=generation, chunk_size=CHUNK_SIZE)
        try:
            blob.download_to_filename(path)
        except gexc.NotFound:
            msg = f"{uri} (generation {generation}) does not exist" if generation else f"{uri} does not exist"
            raise NotFoundError(msg) from None

    def put_bytes(
        self,
        uri: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_generation_match: int | None = None,
    ) -> StoredObject:
        """Write a small object; with a generation precondition, lose a race loudly.

        ``if_generation_match=0`` means "only if it does not exist yet".
        """
        bucket, name = split_uri(uri)
        blob = self.client.bucket(bucket).blob(name)
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=if_generation_match)
        except gexc.PreconditionFailed:
            msg = f"{uri} changed since generation {if_generation_match} was read: another writer got there first"
            raise ConflictError(msg) from None
        except (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests) as exc:
            msg = f"writing {uri} failed transiently: {exc}"
            raise TransientError(msg) from exc
        return StoredObject(bucket, name, int(blob.generation or 0), len(data))

    def get_bytes(self, uri: str) -> tuple[bytes, int]:
        """An object's content and generation."""
        bucket, name = split_uri(uri)
        blob = self.client.bucket(bucket).blob(name)
        try:
            data = blob.download_as_bytes()
        except gexc.NotFound:
            msg = f"{uri} does not exist"
            raise NotFoundError(msg) from None
        return data, int(blob.generation or 0)

    def put_json(self, uri: str, value: Any, *, if_generation_match: int | None = None) -> StoredObject:
        """Write a JSON document (see :meth:`put_bytes` for the precondition)."""
        body = json.dumps(value, indent=2, sort_keys=True, default=str).encode()
        return self.put_bytes(uri, body, content_type="application/json", if_generation_match=if_generation_match)

    def get_json(self, uri: str) -> tuple[Any, int]:
        """A JSON document and its generation."""
        data, generation = self.get_bytes(uri)
        try:
            return json.loads(data), generation
        except json.JSONDecodeError as exc:
            msg = f"{uri} is not valid JSON: {exc}"
            raise BadInputError(msg, field=uri) from None

    def stat(self, uri: str) -> StoredObject | None:
        """An object's generation and size, or None when it does not exist."""
        bucket, name = split_uri(uri)
        blob = self.client.bucket(bucket).get_blob(name)
        if blob is None:
            return None
        return StoredObject(bucket, name, int(blob.generation or 0), int(blob.size or 0))

    def exists(self, uri: str) -> bool:
        """Whether an object exists."""
        return self.stat(uri) is not None

    def list(self, bucket: str, prefix: str = "") -> Iterator[StoredObject]:
        """Objects under a prefix, paged by the client."""
        for blob in self.client.list_blobs(bucket, prefix=prefix):
            yield StoredObject(bucket, blob.name, int(blob.generation or 0), int(blob.size or 0))

    def delete(self, uri: str) -> None:
        """Delete an object if it exists."""
        bucket, name = split_uri(uri)
        try:
            self.client.bucket(bucket).blob(name).delete()
        except gexc.NotFound:
            pass
