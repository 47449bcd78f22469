"""The one place that decides how a run is loaded: warehouse-native or Beam.

Per run, by size: the manifest's rows and Parquet bytes against
``SFPIPE_BEAM_THRESHOLD_ROWS`` / ``SFPIPE_BEAM_THRESHOLD_BYTES``, unless
``SFPIPE_LOAD_PATH`` (or ``sfpipe load --path``) forces one. See docs/adr/0030.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfpipe.config import LoadPath, Settings
from sfpipe.lake import Manifest


@dataclass(frozen=True)
class PathChoice:
    """The path a run takes and why."""

    path: LoadPath
    reason: str
    rows: int
    bytes: int


def run_size(manifest: Manifest, objects: list[str] | None = None) -> tuple[int, int]:
    """Rows and Parquet bytes of a run (or of some of its objects)."""
    names = objects if objects is not None else list(manifest.objects)
    entries = [manifest.objects[n] for n in names]
    return sum(e.rows for e in entries), sum(f.bytes for e in entries for f in e.files)


def choose_path(
    manifest: Manifest, settings: Settings, *, forced: LoadPath | None = None, objects: list[str] | None = None
) -> PathChoice:
    """Warehouse-native for ordinary runs; Beam past either threshold, or when forced."""
    rows, size = run_size(manifest, objects)
    wanted = forced or settings.load_path
    if wanted is LoadPath.WAREHOUSE:
        return PathChoice(LoadPath.WAREHOUSE, "forced", rows, size)
    if wanted is LoadPath.BEAM:
        return PathChoice(LoadPath.BEAM, "forced", rows, size)
    if rows > settings.beam_threshold_rows:
        return PathChoice(LoadPath.BEAM, f"{rows} rows > {settings.beam_threshold_rows}", rows, size)
    if size > settings.beam_threshold_bytes:
        return PathChoice(LoadPath.BEAM, f"{size} bytes > {settings.beam_threshold_bytes}", rows, size)
    return PathChoice(LoadPath.WAREHOUSE, "below the Beam thresholds", rows, size)
