"""The quality service: ``sfpipe.transform.completed`` in, results, Data Docs and events out.

For each transform of a run it runs the configured suites in the warehouse, writes the
results to ``sfpipe_ops.quality_results`` (replacing the run's earlier ones) and the
run's stage to ``sfpipe_ops.runs``, publishes Data Docs to the lake, and publishes
``sfpipe.quality.completed`` plus, when an error-severity check failed,
``sfpipe.quality.alert``. Failed checks are an outcome, not an error: the event is
acknowledged. A warehouse, lake or bus failure is transient (503, redelivered), and a
redelivery redoes the same work with the same event ids.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfpipe import ops
from sfpipe.adapters import factory
from sfpipe.adapters.bus import EventPublisher
from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings, get_settings
from sfpipe.errors import SfpipeError, TransientError
from sfpipe.events import CloudEvent, EventType, TransformCompleted
from sfpipe.service import EventService, HandlerContext, Outcome
from sfpipe_quality import publish
from sfpipe_quality import suites as suite_registry
from sfpipe_quality.runner import QualityChecker, QualityRun, SourceFactory
from sfpipe_quality.source import salesforce_source
from sfpipe_quality.spec import Severity

log = logging.getLogger(__name__)

SERVICE = "quality"
STAGE = "quality"


@dataclass
class Published:
    """Where a run's outcome went."""

    run: QualityRun
    docs_uri: str | None
    events: list[CloudEvent]


class QualityStage:
    """Check a run and publish what was found; used by the handler and the CLI."""

    def __init__(
        self,
        settings: Settings,
        warehouse: Callable[[], Warehouse],
        store: Callable[[], ObjectStore] | None,
        publisher: Callable[[], EventPublisher] | None,
        source: SourceFactory | None,
    ) -> None:
        self.settings = settings
        self._warehouse = warehouse
        self._store = store
        self._publisher = publisher
        self.source = source
        self._lock = threading.Lock()

    @property
    def warehouse(self) -> Warehouse:
        """The warehouse the checks run in."""
        return self._warehouse()

    def checker(self) -> QualityChecker:
        """A checker on this stage's warehouse, lake and source."""
        return QualityChecker(
            self.warehouse,
            self.settings,
            store=self._store() if self._store is not None else None,
            source=self.source,
        )

    def run(
        self,
        run_id: str,
        suites: Sequence[str] | None = None,
        *,
        seed: str,
        docs: bool = True,
        events: bool = True,
    ) -> Published:
        """Check, write results and stage, publish Data Docs and events (one run at a time).

        The event is marked processed by the event service only after this returns, so a
        failed publish leaves it unprocessed and its redelivery publishes again.
        """
        chosen = suite_registry.names(suites)
        with self._lock:
            started = ops.now()
            publish.ensure_results_table(self.warehouse)
            ops.record_stage(self.warehouse, run_id, STAGE, "running", started_at=started, detail={"suites": chosen})
            try:
                with tempfile.TemporaryDirectory(prefix="sfpipe-docs-") as tmp:
                    docs_dir = Path(tmp) / "docs" if docs and self._store is not None else None
                    run = self.checker().run(run_id, chosen, docs_dir=docs_dir)
                    docs_uri = (
                        publish.upload_docs(self._store(), self.settings.lake_bucket, run_id, docs_dir)
                        if docs_dir is not None and self._store is not None
                        else None
                    )
            except Exception as exc:
                status = "retrying" if isinstance(exc, TransientError) else "error"
                with contextlib.suppress(SfpipeError):  # the warehouse may be what failed
                    ops.record_stage(
                        self.warehouse, run_id, STAGE, status, started_at=started, ended_at=ops.now(),
                        detail={"suites": chosen, "error": f"{type(exc).__name__}: {exc}"[:2000]},
                    )  # fmt: skip
                raise
            status = "failed" if run.failing(Severity.ERROR) else "succeeded"
            detail: dict[str, Any] = {
                "suites": [s.model_dump() for s in run.summary()],
                "failing_errors": len(run.failing(Severity.ERROR)),
                "failing_warnings": len(run.failing(Severity.WARNING)),
                "docs_uri": docs_uri,
                "seconds": run.seconds,
            }
            publish.write_results(
                self.warehouse,
                run,
                extra=ops.stage_sql(
                    run_id, STAGE, status, started_at=started, ended_at=ops.now(), rows=len(run.results), detail=detail
                ),
            )
            out = publish.events(run, docs_uri, seed) if events else []
            if out and self._publisher is not None:
                publisher = self._publisher()
                publisher.wait([publisher.publish_async(event) for event in out])
            log.info(
                "quality of run %s: %d checks, %d failed (%d errors) in %.1f s",
                run_id,
                len(run.results),
                len(run.failing()),
                len(run.failing(Severity.ERROR)),
                run.seconds,
            )
            return Published(run, docs_uri, out)


def handler(stage: Callable[[], QualityStage]) -> Callable[[CloudEvent, HandlerContext], Outcome]:
    """The ``sfpipe.transform.completed`` handler."""

    def handle(event: CloudEvent, ctx: HandlerContext) -> Outcome:
        data = event.model_data()
        assert isinstance(data, TransformCompleted)
        quality = stage()
        suites = [s for s in quality.settings.quality_suites.split(",") if s.strip()]
        published = quality.run(data.run_id, suites, seed=event.id)
        run = published.run
        return Outcome(
            200,
            {
                "run_id": run.run_id,
                "suites": [s.model_dump() for s in run.summary()],
                "failing_errors": [r.check for r in run.failing(Severity.ERROR)],
                "failing_warnings": [r.check for r in run.failing(Severity.WARNING)],
                "docs_uri": published.docs_uri,
                "events": [e.type for e in published.events],
            },
        )

    return handle


def build_stage(settings: Settings | None = None) -> QualityStage:
    """The stage on the process's shared warehouse, lake, bus and the configured org."""
    settings = settings or get_settings()
    return QualityStage(
        settings,
        factory.shared_warehouse,
        factory.shared_object_store,
        factory.shared_publisher,
        functools.partial(salesforce_source, settings),
    )


def warm_up() -> None:
    """Import Great Expectations ahead of the first event (it takes seconds)."""
    from sfpipe_quality import gx_runner

    gx_runner.import_gx()


def build_service(settings: Settings | None = None, stage: Callable[[], QualityStage] | None = None) -> EventService:
    """The quality service (idempotent through ``sfpipe_ops.processed_events``)."""
    settings = settings or get_settings()
    lazy = stage or functools.cache(lambda: build_stage(settings))
    return EventService(
        SERVICE,
        handler(lazy),
        accepts={EventType.TRANSFORM_COMPLETED},
        warehouse=factory.shared_warehouse if stage is None else (lambda: lazy().warehouse),
        settings=settings,
    )
