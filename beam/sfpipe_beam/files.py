"""File access for the pipeline: ``gs://`` objects (fake-gcs-server locally) and local paths.

Workers build their own storage client: on Dataflow the worker's credentials, locally the
emulator named by ``STORAGE_EMULATOR_HOST`` (the same variable Google's clients honour).
Lake files are fetched once per worker into a cache folder and read from local disk,
row group by row group.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

from sfpipe.adapters.storage import ObjectStore
from sfpipe.errors import NotFoundError

_local = threading.local()
_cache_lock = threading.Lock()


def store() -> ObjectStore:
    """This thread's object store."""
    existing: ObjectStore | None = getattr(_local, "store", None)
    if existing is None:
        from google.cloud import storage

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(project="sfpipe-local", credentials=AnonymousCredentials())
        else:
            client = storage.Client()
        existing = ObjectStore(client)
        _local.store = existing
    return existing


def is_gcs(uri: str) -> bool:
    """Whether a location is a GCS object."""
    return uri.startswith("gs://")


def cache_dir() -> Path:
    """Where this process keeps fetched lake files."""
    path = Path(os.environ.get("SFPIPE_BEAM_CACHE") or Path(tempfile.gettempdir()) / f"sfpipe-beam-{os.getpid()}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def local_copy(uri: str, generation: int | None = None) -> str:
    """A local path holding the file (fetched once per process for ``gs://``)."""
    if not is_gcs(uri):
        if not Path(uri).exists():
            msg = f"{uri} does not exist"
            raise NotFoundError(msg)
        return uri
    digest = hashlib.sha256(f"{uri}#{generation or 0}".encode()).hexdigest()[:24]
    target = cache_dir() / f"{digest}.parquet"
    with _cache_lock:
        if not target.exists():
            partial = target.with_suffix(".part")
            store().download_file(uri, str(partial), generation=generation or None)
            partial.rename(target)
    return str(target)


def clear_cache() -> None:
    """Remove the fetched files."""
    shutil.rmtree(cache_dir(), ignore_errors=True)


def read_bytes(uri: str, generation: int | None = None) -> bytes:
    """A small file's content (the manifest), optionally a given generation."""
    if not is_gcs(uri):
        try:
            return Path(uri).read_bytes()
        except FileNotFoundError:
            msg = f"{uri} does not exist"
            raise NotFoundError(msg) from None
    data, live = store().get_bytes(uri)
    if generation and live != generation:
        msg = f"{uri} is at generation {live}, not {generation} as the launch named"
        raise NotFoundError(msg)
    return data


def write_bytes(uri: str, data: bytes, content_type: str = "application/json") -> None:
    """Write a small file (the result)."""
    if is_gcs(uri):
        store().put_bytes(uri, data, content_type=content_type)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(data)
    partial.rename(path)


def publish_file(local: str, uri: str) -> int:
    """Move a finished local file to its destination; its size in bytes."""
    size = Path(local).stat().st_size
    if is_gcs(uri):
        store().upload_file(uri, local, content_type="application/vnd.apache.parquet")
        Path(local).unlink(missing_ok=True)
    else:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local, uri)
    return size


def join(base: str, *parts: str) -> str:
    """A child location of a folder (``gs://`` or local)."""
    return "/".join([base.rstrip("/"), *parts]) if is_gcs(base) else str(Path(base).joinpath(*parts))
