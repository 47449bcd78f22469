"""The batch load pipeline: a run's lake Parquet → the newest version per Id, staged for one MERGE.

``python -m sfpipe_beam --runner=FnApiRunner --manifest=gs://… --staging=… --result=…``
locally; the same entry (``sfpipe_beam/__main__.py``) is the Flex Template's on Dataflow.

Only keys travel through the shuffle. Each lake file is read twice, column-projected and
in Arrow record batches, never one Python object per row:

1. ``ReadKeys``: ``Id`` and the version column of every row, with the file and the row
   number, split into buckets by a hash of ``Id`` (about 30 bytes a row);
2. ``PickNewest``: per bucket, the newest version of each ``Id`` (version, then the later
   file: the same order the warehouse's MERGE uses), as row numbers per file;
3. ``WriteWinners``: per file, the winning rows taken out of its row groups, normalised
   to describe's types, with ``_source_file``, written as one staging Parquet file.

The last step writes the result (``_staged.json``): the files per object that the loader
merges into the raw layer. The pipeline never writes the warehouse: one writer (the
loader) owns that, and DuckDB allows only one anyway.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from sfpipe import raw
from sfpipe.errors import SfpipeError, TerminalError
from sfpipe.lake import Manifest, StagedFile, StagedObject, StagedRun, parse_manifest
from sfpipe_beam import files
from sfpipe_beam.arrowops import split_by_bucket

log = logging.getLogger(__name__)

LOCAL_RUNNERS = {"FnApiRunner", "DirectRunner", "PrismRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"}
TERMINAL_MARK = "[input] "


class LoadOptions(PipelineOptions):
    """The pipeline's parameters (the Flex Template's ``metadata.json`` declares the same)."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--manifest", required=True, help="gs:// URI of the run's _manifest.json")
        parser.add_argument("--manifest_generation", type=int, default=0, help="manifest generation (0 = live)")
        parser.add_argument("--staging", required=True, help="folder (gs:// or local) for the staged Parquet")
        parser.add_argument("--result", required=True, help="where the result (_staged.json) is written, last")
        parser.add_argument("--objects", default="", help="comma-separated objects to stage (default: all)")
        parser.add_argument("--bucket_rows", type=int, default=250_000, help="rows per dedup bucket")


class InputError(TerminalError):
    """A lake file is missing, unreadable or not what the manifest says: a retry cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message if message.startswith(TERMINAL_MARK) else TERMINAL_MARK + message)


@dataclass(frozen=True)
class FileSpec:
    """One lake file of one object."""

    sobject: str
    uri: str
    generation: int
    index: int
    """Rank of the URI among the object's files: a later file wins a tie, as in the warehouse."""
    rows: int


def plan_files(manifest: Manifest, objects: Sequence[str]) -> list[FileSpec]:
    """Every file to read, ranked per object by URI."""
    specs = []
    for name in objects:
        ranked = sorted(manifest.objects[name].files, key=lambda f: f.uri)
        specs += [FileSpec(name, f.uri, f.generation, i, f.rows) for i, f in enumerate(ranked)]
    return specs


def bucket_count(rows: int, bucket_rows: int) -> int:
    """Dedup buckets for an object: enough that one bucket's keys stay small."""
    return max(1, min(256, math.ceil(rows / max(bucket_rows, 1))))


def _open(spec: FileSpec) -> pq.ParquetFile:
    try:
        path = files.local_copy(spec.uri, spec.generation)
    except SfpipeError as exc:
        raise InputError(f"{spec.sobject}: {exc}") from None
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{spec.sobject}: {spec.uri} is not readable Parquet: {exc}") from None


def _version_column(spec: FileSpec, names: Sequence[str]) -> str:
    try:
        return raw.version_field(names)
    except SfpipeError as exc:
        raise InputError(f"{spec.sobject}: {spec.uri}: {exc}") from None


class ReadKeys(beam.DoFn):
    """Id, version, file and row number of every row, bucketed by Id."""

    COUNTS = "counts"

    def __init__(self, buckets: dict[str, int]) -> None:
        self.buckets = buckets

    def process(self, spec: FileSpec) -> Iterator[Any]:
        """Stream the file's key columns."""
        parquet = _open(spec)
        version = _version_column(spec, parquet.schema_arrow.names)
        offset = 0
        try:
            for group in range(parquet.num_row_groups):
                batch = parquet.read_row_group(group, columns=[raw.KEY, version])
                n = batch.num_rows
                keys = pa.table(
                    {
                        raw.KEY: batch.column(0).cast(pa.string()),
                        "v": pc.cast(batch.column(1), raw.TIMESTAMP),
                        "f": pa.array(np.full(n, spec.index, dtype=np.int32)),
                        "r": pa.array(np.arange(offset, offset + n, dtype=np.int64)),
                    }
                )
                offset += n
                for bucket, part in split_by_bucket(keys, self.buckets[spec.sobject]):
                    yield (spec.sobject, bucket), part
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{spec.sobject}: {spec.uri} is not readable Parquet: {exc}") from None
        yield beam.pvalue.TaggedOutput(self.COUNTS, (spec.sobject, offset))


class PickNewest(beam.DoFn):
    """The newest version of each Id in a bucket, as winning row numbers per file."""

    def process(self, element: tuple[tuple[str, int], Iterable[pa.Table]]) -> Iterator[Any]:
        """Sort the bucket's keys once; keep the first row per Id."""
        (sobject, _bucket), parts = element
        keys = pa.concat_tables(list(parts))
        newest = raw.newest_per_id(keys, sequence=["v"], tiebreak=["f", "r"])
        file_index = newest.column("f").to_numpy()
        rows = newest.column("r").to_numpy()
        order = np.argsort(file_index, kind="stable")
        file_index, rows = file_index[order], rows[order]
        for value in np.unique(file_index):
            lo, hi = np.searchsorted(file_index, [value, value + 1])
            yield (sobject, int(value)), rows[lo:hi]


def _staging_format(staging: str) -> dict[str, Any]:
    """Staging Parquet is read once, soon: plain and fast on local disk, compressed when it crosses the network."""
    if files.is_gcs(staging):
        return {"compression": "zstd", "compression_level": 1}
    return {"compression": "none", "use_dictionary": False}


class WriteWinners(beam.DoFn):
    """A file's winning rows, taken batch by batch, normalised and written as staging Parquet."""

    def __init__(
        self, specs: dict[tuple[str, int], FileSpec], declared: dict[str, dict[str, str]], staging: str
    ) -> None:
        self.specs = specs
        self.declared = declared
        self.staging = staging

    def process(self, element: tuple[tuple[str, int], Iterable[np.ndarray]]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Stream the file once; write only rows that won."""
        key, chunks = element
        spec = self.specs[key]
        wanted = np.sort(np.concatenate(list(chunks)))
        declared = raw.declared_types(list(self.declared.get(spec.sobject, {}).items()))
        parquet = _open(spec)
        handle, local = tempfile.mkstemp(suffix=".parquet")
        os.close(handle)
        writer: pq.ParquetWriter | None = None
        offset = position = written = 0
        try:
            for group in range(parquet.num_row_groups):
                end = int(np.searchsorted(wanted, offset + parquet.metadata.row_group(group).num_rows))
                if end > position:
                    table = parquet.read_row_group(group).take(pa.array(wanted[position:end] - offset))
                    table = raw.normalise(table, declared)
                    table = table.append_column(raw.SOURCE_FILE, pa.repeat(pa.scalar(spec.uri), table.num_rows))
                    if writer is None:
                        writer = pq.ParquetWriter(local, table.schema, **_staging_format(self.staging))
                    writer.write_table(table)
                    written += table.num_rows
                position = end
                offset += parquet.metadata.row_group(group).num_rows
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{spec.sobject}: {spec.uri} is not readable Parquet: {exc}") from None
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            Path(local).unlink(missing_ok=True)
            return
        target = files.join(self.staging, spec.sobject, f"part-{spec.index:05d}.parquet")
        size = files.publish_file(local, target)
        yield spec.sobject, StagedFile(uri=target, rows=written, bytes=size).model_dump()


def write_result(
    _: Any,
    staged: list[tuple[str, dict[str, Any]]],
    counts: list[tuple[str, int]],
    *,
    manifest: Manifest,
    manifest_uri: str,
    manifest_generation: int,
    objects: Sequence[str],
    result: str,
) -> str:
    """The result file, written last: what the loader merges."""
    per_object = {name: StagedObject() for name in objects}
    for name, rows in counts:
        per_object[name].input_rows += rows
    for name, info in sorted(staged, key=lambda item: (item[0], item[1]["uri"])):
        staged_file = StagedFile.model_validate(info)
        per_object[name].files.append(staged_file)
        per_object[name].rows += staged_file.rows
    document = StagedRun(
        run_id=manifest.run_id,
        manifest_uri=manifest_uri,
        manifest_generation=manifest_generation,
        created_at=datetime.now(UTC),
        objects=per_object,
    )
    files.write_bytes(result, document.model_dump_json(indent=2).encode())
    return result


def build(pipeline: beam.Pipeline, options: LoadOptions, manifest: Manifest, objects: Sequence[str]) -> None:
    """The pipeline's graph for a manifest."""
    specs = plan_files(manifest, objects)
    buckets = {name: bucket_count(manifest.objects[name].rows, options.bucket_rows) for name in objects}
    declared = {name: {f.name: f.type for f in manifest.objects[name].fields} for name in objects}
    by_key = {(s.sobject, s.index): s for s in specs}

    read = (
        pipeline
        | "Files" >> beam.Create(specs)
        | "Spread" >> beam.Reshuffle()
        | "ReadKeys" >> beam.ParDo(ReadKeys(buckets)).with_outputs(ReadKeys.COUNTS, main="keys")
    )
    staged = (
        read.keys
        | "ByBucket" >> beam.GroupByKey()
        | "PickNewest" >> beam.ParDo(PickNewest())
        | "ByFile" >> beam.GroupByKey()
        | "WriteWinners" >> beam.ParDo(WriteWinners(by_key, declared, options.staging))
        | "AllFiles" >> beam.combiners.ToList()
    )
    counts = read[ReadKeys.COUNTS] | "AllCounts" >> beam.combiners.ToList()
    _ = (
        pipeline
        | "Once" >> beam.Create([None])
        | "Result"
        >> beam.Map(
            write_result,
            beam.pvalue.AsSingleton(staged),
            beam.pvalue.AsSingleton(counts),
            manifest=manifest,
            manifest_uri=options.manifest,
            manifest_generation=options.manifest_generation,
            objects=list(objects),
            result=options.result,
        )
    )


def _selected(manifest: Manifest, wanted: str) -> list[str]:
    names = [n.strip() for n in wanted.split(",") if n.strip()] or sorted(manifest.objects)
    unknown = [n for n in names if n not in manifest.objects]
    if unknown:
        raise InputError(f"objects {unknown} are not in manifest {manifest.run_id}")
    return names


def _is_terminal(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TerminalError) or TERMINAL_MARK in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def run(argv: Sequence[str] | None = None, started: float | None = None) -> dict[str, float]:
    """Build and run the pipeline; on a local runner, wait and return the timings."""
    started = started or time.monotonic()
    args = list(argv) if argv is not None else sys.argv[1:]
    image = os.environ.get("SFPIPE_BEAM_IMAGE")
    if image and not any(a.startswith("--sdk_container_image") for a in args):
        # the Flex Template image is the workers' SDK container too (beam/Dockerfile)
        args.append(f"--sdk_container_image={image}")
    options = PipelineOptions(args)
    load = options.view_as(LoadOptions)
    try:
        manifest = parse_manifest(files.read_bytes(load.manifest, load.manifest_generation or None), load.manifest)
    except SfpipeError as exc:
        raise InputError(str(exc)) from None
    objects = _selected(manifest, load.objects)
    runner = options.view_as(StandardOptions).runner or "FnApiRunner"
    constructed = time.monotonic()
    constructed_cpu = time.process_time()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, load, manifest, objects)
    result = pipeline.run()
    if runner not in LOCAL_RUNNERS:
        return {"startup": constructed - started}
    result.wait_until_finish()
    finished = time.monotonic()
    files.clear_cache()
    return {
        "startup": constructed - started,
        "run": finished - constructed,
        "startup_cpu": constructed_cpu,
        "run_cpu": time.process_time() - constructed_cpu,
    }


def _record(result: str, update: dict[str, Any]) -> None:
    try:
        current = json.loads(files.read_bytes(result))
    except (SfpipeError, ValueError):
        return
    current.update(update)
    files.write_bytes(result, json.dumps(current, indent=2).encode())


def main(argv: Sequence[str] | None = None, started: float | None = None) -> int:
    """Run the pipeline; a failure still writes a result that says why (exit 3 bad input, 1 otherwise)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = list(argv) if argv is not None else sys.argv[1:]
    load = PipelineOptions(args).view_as(LoadOptions)
    try:
        timings = run(args, started)
    except Exception as exc:  # noqa: BLE001 - every failure must leave a result behind
        terminal = _is_terminal(exc)
        reason = str(exc).replace(TERMINAL_MARK, "").strip().splitlines()
        text = next((line for line in reversed(reason) if line.strip()), type(exc).__name__)
        log.error("load pipeline failed (%s): %s", "bad input" if terminal else "error", text)
        files.clear_cache()
        found = re.search(r"/_runs/([^/]+)/", load.manifest or "")
        failure = StagedRun(
            run_id=found.group(1) if found else "",
            manifest_uri=load.manifest,
            manifest_generation=load.manifest_generation,
            created_at=datetime.now(UTC),
            error=text[:2000],
            terminal=terminal,
        )
        files.write_bytes(load.result, failure.model_dump_json(indent=2).encode())
        return 3 if terminal else 1
    if "run" in timings:
        _record(load.result, {"timings": {k: round(v, 4) for k, v in timings.items()}})
    return 0

