"""Where one pipeline run is, stage by stage, from what the pipeline itself publishes.

The demo calls nothing but the extractor. Everything it knows about the later stages comes
from three places the services write anyway, and :class:`RunTracker` merges them:

- the events on the ``*-ops`` pull subscriptions (``sfpipe.load.completed`` …): the
  authoritative end of a stage, with its outcome;
- the run's rows in ``sfpipe_ops.runs``: when a stage started and ended, its rows, and the
  ``error`` / ``retrying`` rows a failing attempt leaves before Pub/Sub redelivers;
- the extractor's own ``GET /runs/<id>`` answer, for the extract stage's live progress.

A stage that keeps failing is retried by Pub/Sub until it is dead-lettered; a dead letter
from the stage's push subscription ends it as failed with the reason its last attempt wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sfpipe.events import (
    CloudEvent,
    ExtractCompleted,
    LoadCompleted,
    LoadFailed,
    QualityAlert,
    QualityCompleted,
    TransformCompleted,
    TransformFailed,
)

STAGES = ("extract", "load", "transform", "quality")
"""The stages of every run, in the order events drive them."""

RECONCILE = "reconcile"
"""The reconciler's stage: next to transform, after the load, when the devstack runs the reconciler."""

AFTER = {"load": "extract", "transform": "load", "quality": "transform", RECONCILE: "load"}
"""The stage whose outcome starts each event-driven stage."""

SERVICE_OF = {
    "extract": "extractor",
    "load": "loader",
    "transform": "transform",
    "quality": "quality",
    RECONCILE: "reconciler",
}
"""The local service that does each stage's work (and the push target of its input event)."""

Status = Literal["waiting", "running", "retrying", "succeeded", "failed", "skipped"]

_OK = {"succeeded", "completed", "loaded", "done", "ok", "passed", "success"}
_FAILED = {"failed", "failure"}
_RETRYING = {"error", "retrying"}


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _detail(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str) and raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {"text": raw}
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    return {}


@dataclass
class StageState:
    """One stage of the run as far as the demo knows."""

    name: str
    status: Status = "waiting"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    rows: int | None = None
    progress: str = ""
    """A short live note: objects done, suites passed, the error being retried."""
    reason: str | None = None
    """Why the stage failed (or what its last attempt reported)."""
    detail: dict[str, Any] = field(default_factory=dict)
    final: bool = False
    """Set by the stage's event (or its dead letter): ops rows no longer change the outcome."""
    recorded: bool = False
    """Whether the stage's finished row in ``sfpipe_ops.runs`` has been read."""

    @property
    def seconds(self) -> float | None:
        """How long the stage took (so far, while it runs)."""
        if self.started_at is None:
            return None
        end = self.ended_at or datetime.now(UTC)
        return max((end - self.started_at).total_seconds(), 0.0)

    @property
    def done(self) -> bool:
        """Whether the stage has an outcome."""
        return self.status in ("succeeded", "failed", "skipped")

    def as_json(self) -> dict[str, Any]:
        """The stage for the demo's JSON result."""
        return {
            "status": self.status,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "seconds": round(self.seconds, 3) if self.seconds is not None and self.done else None,
            "rows": self.rows,
            "reason": self.reason,
        }


class RunTracker:
    """The stages of one run, updated from events, ops rows and the extractor's status."""

    def __init__(self, run_id: str, stages: Iterable[str] = STAGES) -> None:
        self.run_id = run_id
        self.order = tuple(stages)
        self.stages: dict[str, StageState] = {name: StageState(name) for name in self.order}
        self.events: list[CloudEvent] = []
        self.quality_failing: list[dict[str, Any]] = []
        self.manifest_uri: str | None = None
        self.objects_extracted: int | None = None
        """Objects the run's manifest holds (the load stage's total)."""

    def __getitem__(self, name: str) -> StageState:
        return self.stages[name]

    # ---- inputs --------------------------------------------------------------------------

    def extractor_status(self, summary: Mapping[str, Any]) -> None:
        """The extractor's ``GET /runs/<id>`` (or ``POST /runs?wait=true``) answer."""
        stage = self.stages["extract"]
        if stage.final:
            return
        status = str(summary.get("status") or "")
        # the demo sets the start from its own clock when it posts the run (the run id has seconds only)
        stage.started_at = stage.started_at or _aware(summary.get("started_at"))
        objects: Mapping[str, Mapping[str, Any]] = summary.get("objects") or summary.get("progress") or {}
        progress = summary.get("progress") or {}
        merged = {**objects, **progress}
        done = sum(1 for o in merged.values() if o.get("status") in ("done", "failed"))
        stage.rows = sum(int(o.get("rows") or 0) for o in merged.values()) if merged else stage.rows
        if merged:
            stage.progress = f"{done}/{len(merged)} objects"
            self.objects_extracted = sum(1 for o in merged.values() if o.get("status") == "done")
        if summary.get("manifest_uri"):
            self.manifest_uri = str(summary["manifest_uri"])
        if status in ("queued", "running"):
            stage.status = "running"
            return
        stage.ended_at = _aware(summary.get("ended_at")) or stage.ended_at or datetime.now(UTC)
        failed: Mapping[str, str] = summary.get("failed") or {}
        if status == "completed" and not failed:
            stage.status = "succeeded"
        else:
            stage.status = "failed"
            reasons = [f"{name}: {why}" for name, why in sorted(failed.items())]
            if summary.get("error"):
                reasons.insert(0, str(summary["error"]))
            stage.reason = "; ".join(reasons) or f"the extractor reports the run as {status or 'unknown'}"
            if status == "partial":
                stage.reason = f"{len(failed)} of {len(merged)} objects failed: {stage.reason}"
        stage.final = True

    def ops_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """This run's rows of ``sfpipe_ops.runs``."""
        for row in rows:
            name = str(row.get("stage") or "")
            if name not in self.stages:
                continue
            stage = self.stages[name]
            stage.started_at = _aware(row.get("started_at")) or stage.started_at
            detail = _detail(row.get("detail"))
            if row.get("rows") is not None:
                stage.rows = int(row["rows"])
            if detail:
                stage.detail = detail
            word = str(row.get("status") or "").lower()
            stage.recorded = word in _OK or word in _FAILED
            if stage.final:
                stage.ended_at = _aware(row.get("ended_at")) or stage.ended_at
                continue
            if word in _OK:
                stage.status = "succeeded"
                stage.ended_at = _aware(row.get("ended_at")) or stage.ended_at
            elif word in _FAILED:
                stage.status = "failed"
                stage.ended_at = _aware(row.get("ended_at")) or stage.ended_at
                stage.reason = _reason(detail) or stage.reason
            elif word in _RETRYING:
                stage.status = "retrying"
                stage.reason = _reason(detail) or stage.reason
                stage.progress = "attempt failed; Pub/Sub redelivers"
            else:
                stage.status = "running"
                stage.ended_at = None

    def loads(self, loaded: int, total: int | None) -> None:
        """Objects of this run already in the raw layer (``sfpipe_ops.loads``)."""
        stage = self.stages["load"]
        if stage.status in ("running", "retrying") and loaded:
            stage.progress = f"{loaded}/{total} objects" if total else f"{loaded} objects"

    def event(self, event: CloudEvent) -> bool:
        """An event from an ops subscription; False when it belongs to another run."""
        data = event.data if isinstance(event.data, Mapping) else {}
        if data.get("run_id") != self.run_id:
            return False
        self.events.append(event)
        model = event.model_data()
        when = _aware(event.time) or datetime.now(UTC)
        if isinstance(model, ExtractCompleted):
            self._extract_completed(model, when)
        elif isinstance(model, LoadCompleted):
            self._finish("load", "succeeded", when)
            self.stages["load"].progress = f"{len(model.objects)} objects"
        elif isinstance(model, LoadFailed):
            self._finish("load", "failed", when, model.reason)
            self._skip_after("load")
        elif isinstance(model, TransformCompleted):
            self._finish("transform", "succeeded", when)
            self.stages["transform"].progress = f"{len(model.actions)} actions"
        elif isinstance(model, TransformFailed):
            self._finish("transform", "failed", when, model.reason)
            self._skip_after("transform")
        elif isinstance(model, QualityCompleted):
            failed = sum(s.failed for s in model.suites)
            passed = sum(s.passed for s in model.suites)
            self.stages["quality"].detail.setdefault("suites", [s.model_dump() for s in model.suites])
            self.stages["quality"].progress = f"{passed}/{passed + failed} checks passed"
            if not failed:
                self._finish("quality", "succeeded", when)
            # with failures, the stage's row says whether any had error severity: it is
            # committed before the event is published, so the next look at the row decides
        elif isinstance(model, QualityAlert):
            self.quality_failing = [f.model_dump() for f in model.failing]
            self._finish("quality", "failed", when, _failing_reason(self.quality_failing))
        return True

    def dead_lettered(
        self, new_by_source: Mapping[str, int], subscriptions: Mapping[str, Iterable[str]] | None = None
    ) -> list[str]:
        """Dead letters that arrived since the run started, by the subscription they came from.

        ``subscriptions`` names the push subscriptions that deliver each stage's input (by
        default the one named after its service). A stage still waiting counts too once the
        stage before it has finished: a handler that refuses the event before writing its first
        row never shows as running. Returns the stages this ended.
        """
        ended = []
        for name in self.order:
            if name not in AFTER:
                continue
            subs = set(subscriptions.get(name, ()) if subscriptions is not None else (SERVICE_OF[name],))
            count = sum(n for source, n in new_by_source.items() if source.rsplit("/", 1)[-1] in subs)
            stage = self.stages[name]
            before = self.stages[AFTER[name]]
            if count and not stage.done and (stage.status in ("running", "retrying") or before.done):
                why = stage.reason or "every delivery attempt was refused"
                self._finish(name, "failed", datetime.now(UTC), f"its event was dead-lettered after the retries: {why}")
                self._skip_after(name)
                ended.append(name)
        return ended

    def fail(self, name: str, reason: str) -> None:
        """End a stage as failed from the demo's own observation (a timeout, a process that died)."""
        self._finish(name, "failed", datetime.now(UTC), reason)
        self._skip_after(name)

    # ---- what it adds up to -------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether every stage has an outcome."""
        return all(s.done for s in self.stages.values())

    @property
    def ok(self) -> bool:
        """Whether every stage succeeded."""
        return all(s.status == "succeeded" for s in self.stages.values())

    def failures(self) -> list[tuple[str, str]]:
        """(stage, reason) of each failed stage, in pipeline order."""
        return [(s.name, s.reason or "failed") for s in self.stages.values() if s.status == "failed"]

    def current(self) -> str | None:
        """The first stage without an outcome."""
        return next((s.name for s in self.stages.values() if not s.done), None)

    def pending(self) -> list[str]:
        """Stages without an outcome whose input stage has one (they run, or wait for their event)."""
        return [
            name
            for name, stage in self.stages.items()
            if not stage.done and (name not in AFTER or self.stages[AFTER[name]].done)
        ]

    def as_json(self) -> dict[str, Any]:
        """Every stage for the demo's JSON result."""
        return {name: s.as_json() for name, s in self.stages.items()}

    # ---- internals ----------------------------------------------------------------------

    def _extract_completed(self, model: ExtractCompleted, when: datetime) -> None:
        stage = self.stages["extract"]
        self.manifest_uri = model.manifest_uri
        stage.rows = sum(o.rows for o in model.objects.values())
        self.objects_extracted = len(model.objects)
        stage.progress = f"{len(model.objects)}/{len(model.objects) + len(model.failed)} objects"
        if model.failed:
            reasons = "; ".join(f"{n}: {why}" for n, why in sorted(model.failed.items()))
            self._finish("extract", "failed", stage.ended_at or when, f"{len(model.failed)} objects failed: {reasons}")
        else:
            self._finish("extract", "succeeded", stage.ended_at or when)

    def _finish(self, name: str, status: Status, when: datetime, reason: str | None = None) -> None:
        stage = self.stages[name]
        stage.status = status
        stage.ended_at = stage.ended_at if stage.final and stage.ended_at else when
        if stage.started_at is None and status == "succeeded":
            stage.started_at = stage.ended_at  # until the stage's row says when it began
        if stage.started_at is None:
            stage.ended_at = None  # a stage that never started has no duration to show
        if reason:
            stage.reason = reason
        elif status == "succeeded":
            stage.reason = None
        stage.final = True

    def _skip_after(self, name: str) -> None:
        """A failed event-driven stage publishes no completion: the stages after it will not run."""
        for other, stage in self.stages.items():
            ancestor = AFTER.get(other)
            while ancestor is not None and ancestor != name:
                ancestor = AFTER.get(ancestor)
            if ancestor == name and not stage.done:
                stage.status = "skipped"
                stage.reason = f"not run: {name} failed"
                stage.final = True


def _reason(detail: Mapping[str, Any]) -> str | None:
    for key in ("reason", "error"):
        if detail.get(key):
            return str(detail[key])
    if detail.get("failing_errors"):
        return f"{detail['failing_errors']} error-severity expectations failed"
    failed = detail.get("failed")
    if isinstance(failed, list) and failed:
        return "failed: " + ", ".join(map(str, failed))
    return None


def _failing_reason(failing: list[dict[str, Any]]) -> str:
    errors = [f for f in failing if f.get("severity") == "error"] or failing
    names = [
        f"{f.get('suite')}: {f.get('expectation')}" + (f" on {f['table']}" if f.get("table") else "") for f in errors
    ]
    shown = "; ".join(names[:5]) + (f"; … {len(names) - 5} more" if len(names) > 5 else "")
    return f"{len(errors)} error-severity expectations failed: {shown}"
