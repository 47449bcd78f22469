"""What a quality run leaves behind: result rows, Data Docs in the lake, and events.

Each is idempotent for a run: results replace the run's earlier rows of the same suites
in one transaction, Data Docs replace the run's earlier pages, and events carry ids
derived from the triggering event so that a redelivery publishes the same ids again
(consumers drop a repeated id).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from sfpipe import lake, ops
from sfpipe.adapters.storage import ObjectStore, split_uri
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.events import CloudEvent, EventType, QualityAlert, QualityCompleted, make_event
from sfpipe.ops import QUALITY_RESULTS, sql_literal
from sfpipe_quality.runner import QualityRun
from sfpipe_quality.spec import Severity

log = logging.getLogger(__name__)

SERVICE = "quality"
ROWS_PER_INSERT = 500
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css", ".ico": "image/x-icon"}
# GX's site ships 4 MB of images and fonts; the pages load their scripts and styles from
# CDNs, so only the pages, the style sheets and the icon are published.
PUBLISHED_SUFFIXES = (".html", ".css", ".ico")


def ensure_results_table(warehouse: Warehouse) -> None:
    """Create the ops tables, and add columns that a newer sfpipe gave ``quality_results``."""
    ops.ensure_ops_tables(warehouse)
    existing = warehouse.table_schema(QUALITY_RESULTS)
    wanted = ops.SCHEMAS[QUALITY_RESULTS]
    if existing is not None:
        missing = [f for f in wanted if f.name not in existing.names]
        if missing:
            warehouse.add_columns(QUALITY_RESULTS, missing)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=str, sort_keys=True)


def result_rows(run: QualityRun, checked_at: datetime) -> list[dict[str, Any]]:
    """The run's results as ``sfpipe_ops.quality_results`` rows."""
    return [
        {
            "run_id": run.run_id,
            "suite": r.suite,
            "expectation": r.expectation,
            "column_name": r.column,
            "success": r.success,
            "severity": r.severity.value,
            "observed_value": _json(r.observed),
            "unexpected_count": r.unexpected_count,
            "checked_at": checked_at,
            "table_name": r.table or None,
            "check_name": r.check,
            "details": _json(r.details) if r.details else None,
        }
        for r in run.results
    ]


def results_statements(run: QualityRun, checked_at: datetime) -> list[str]:
    """Statements that replace the run's results of these suites (one transaction)."""
    suites = ", ".join(sql_literal(s) for s in run.suites)
    statements = [f"DELETE FROM {QUALITY_RESULTS.sql} WHERE run_id = {sql_literal(run.run_id)} AND suite IN ({suites})"]
    rows = result_rows(run, checked_at)
    columns = list(ops.SCHEMAS[QUALITY_RESULTS].names)
    head = f"INSERT INTO {QUALITY_RESULTS.sql} ({', '.join(f'`{c}`' for c in columns)}) VALUES "
    for start in range(0, len(rows), ROWS_PER_INSERT):
        values = ", ".join(
            "(" + ", ".join(sql_literal(row[c]) for c in columns) + ")" for row in rows[start : start + ROWS_PER_INSERT]
        )
        statements.append(head + values)
    return statements


def write_results(
    warehouse: Warehouse, run: QualityRun, *, checked_at: datetime | None = None, extra: Sequence[str] = ()
) -> int:
    """Replace the run's results; ``extra`` statements commit in the same transaction."""
    ensure_results_table(warehouse)
    warehouse.execute([*results_statements(run, checked_at or ops.now()), *extra])
    return len(run.results)


def docs_prefix(bucket: str, run_id: str) -> str:
    """`gs://…/quality/<run_id>/docs/`: the folder of the run's Data Docs."""
    return lake.quality_docs_uri(bucket, run_id).rsplit("/", 1)[0] + "/"


def upload_docs(store: ObjectStore, bucket: str, run_id: str, docs_dir: Path) -> str:
    """Publish the built Data Docs under the run's docs folder; the index's URI.

    Pages left from an earlier check of the same run are deleted, so the folder always
    shows one check.
    """
    prefix = docs_prefix(bucket, run_id)
    files = sorted(p for p in docs_dir.rglob("*") if p.is_file() and p.suffix in PUBLISHED_SUFFIXES)
    if not (docs_dir / "index.html").exists():
        msg = f"Data Docs in {docs_dir} have no index.html"
        raise FileNotFoundError(msg)
    targets = {f"{prefix}{p.relative_to(docs_dir).as_posix()}": p for p in files}

    def put(item: tuple[str, Path]) -> None:
        uri, path = item
        store.put_bytes(uri, path.read_bytes(), content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, targets.items()))
    bucket_name, name_prefix = split_uri(prefix)
    for stored in store.list(bucket_name, name_prefix):
        uri = f"gs://{stored.bucket}/{stored.name}"
        if uri not in targets:
            store.delete(uri)
    index = lake.quality_docs_uri(bucket, run_id)
    log.info("Data Docs of run %s: %s (%d files)", run_id, index, len(targets))
    return index


def event_id(kind: str, run_id: str, seed: str) -> str:
    """A deterministic event id: the same trigger always yields the same id."""
    digest = hashlib.sha256(f"{kind}|{run_id}|{seed}".encode()).hexdigest()[:24]
    return f"quality-{kind}-{digest}"


def events(run: QualityRun, docs_uri: str | None, seed: str) -> list[CloudEvent]:
    """``sfpipe.quality.completed``, and ``sfpipe.quality.alert`` when an error-severity check failed."""
    completed = make_event(
        EventType.QUALITY_COMPLETED,
        QualityCompleted(run_id=run.run_id, suites=run.summary(), docs_uri=docs_uri),
        service=SERVICE,
        subject=f"runs/{run.run_id}",
        event_id=event_id("completed", run.run_id, seed),
    )
    out = [completed]
    failing = run.failing_expectations(Severity.ERROR)
    if failing:
        out.append(
            make_event(
                EventType.QUALITY_ALERT,
                QualityAlert(run_id=run.run_id, failing=failing),
                service=SERVICE,
                subject=f"runs/{run.run_id}",
                event_id=event_id("alert", run.run_id, seed),
            )
        )
    return out
