"""The extractor's HTTP API (Cloud Run): ``POST /runs``, ``GET /runs/<id>``, ``GET /healthz``.

``POST /runs`` answers 202 with the run id and extracts in a background thread, or runs
to the end first with ``?wait=true`` (what Cloud Scheduler should call, since Cloud Run
throttles the CPU of an instance that has no request in flight). One run at a time per
instance; across instances, the watermarks' generation preconditions stop two runs from
both moving an object's watermark.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import flask
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sfpipe.config import Settings, get_settings
from sfpipe.errors import BadInputError, NotFoundError, SfpipeError, describe_validation
from sfpipe.ids import is_run_id, new_run_id
from sfpipe.lake import manifest_uri, parse_manifest
from sfpipe.logging import log_context, trace_from_headers
from sfpipe_extractor.callers import CallerAuth, CallerRejected
from sfpipe_extractor.engine import SERVICE, Extractor, RunReport, parse_objects, run_started_at

log = logging.getLogger(__name__)

KEEP_RUNS = 100


class RunRequest(BaseModel):
    """The body of ``POST /runs``."""

    model_config = ConfigDict(extra="forbid")

    objects: list[str] = Field(default_factory=list)
    mode: Literal["incremental", "full"] = "incremental"
    run_id: str | None = None


@dataclass
class Response:
    """An HTTP answer, independent of the web framework."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class LiveProgress:
    """Rows written per object of a running run, for ``GET /runs/<id>``."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def started(self, sobject: str, total: int | None, api: str) -> None:
        """Record an object's expected rows."""
        with self._lock:
            self.objects[sobject] = {"status": "running", "rows": 0, "expected": total, "api": api}

    def advanced(self, sobject: str, rows: int) -> None:
        """Count rows written."""
        with self._lock:
            self.objects.setdefault(sobject, {"status": "running", "rows": 0})["rows"] += rows

    def finished(self, sobject: str, status: str, detail: str) -> None:
        """Record an object's end."""
        with self._lock:
            entry = self.objects.setdefault(sobject, {"rows": 0})
            entry["status"] = status
            if status == "failed":
                entry["error"] = detail

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A copy that is safe to serialise."""
        with self._lock:
            return {k: dict(v) for k, v in self.objects.items()}


class ExtractorService:
    """Starts runs, remembers them, and answers about them; no HTTP in here."""

    def __init__(
        self,
        settings: Settings,
        extractor: Callable[[], Extractor],
        auth: CallerAuth | None = None,
    ) -> None:
        self.settings = settings
        self._extractor_factory = extractor
        self._extractor: Extractor | None = None
        self.auth = auth or CallerAuth.from_settings(settings)
        self.runs: OrderedDict[str, tuple[RunReport, LiveProgress]] = OrderedDict()
        self._lock = threading.Lock()
        self._active: str | None = None
        self._threads: dict[str, threading.Thread] = {}

    @property
    def extractor(self) -> Extractor:
        """The engine, built on first use (so that the service starts without reaching Salesforce)."""
        if self._extractor is None:
            self._extractor = self._extractor_factory()
        return self._extractor

    def post_runs(self, headers: Mapping[str, str], body: bytes, wait: bool) -> Response:
        """``POST /runs``."""
        try:
            caller = self.auth.check(headers)
        except CallerRejected as exc:
            extra = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            return Response(exc.status, {"error": str(exc)}, extra)
        try:
            request = self._parse(body)
            names = parse_objects(request.objects, self.settings.extract_objects)
            run_id = Extractor.validate_run_id(request.run_id) if request.run_id else new_run_id()
        except BadInputError as exc:
            return Response(400, {"error": str(exc), "field": exc.field})
        with self._lock:
            if self._active is not None:
                return Response(409, {"error": f"run {self._active} is still running", "run_id": self._active})
            self._active = run_id
            report = RunReport(run_id, request.mode, "queued", run_started_at(run_id))
            progress = LiveProgress()
            self.runs[run_id] = (report, progress)
            while len(self.runs) > KEEP_RUNS:
                self.runs.popitem(last=False)
        log.info("run %s (%s, %d objects) requested by %s", run_id, request.mode, len(names), caller)
        if wait:
            self._execute(report, progress, names)
            status = 200 if report.status in ("completed", "partial") else 500
            return Response(status, report.summary())
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(self._execute, report, progress, names), name=f"run-{run_id}", daemon=True
        )
        self._threads[run_id] = thread
        thread.start()
        return Response(
            202,
            {"run_id": run_id, "status": "queued", "status_url": f"/runs/{run_id}"},
            {"Location": f"/runs/{run_id}"},
        )

    def _parse(self, body: bytes) -> RunRequest:
        if not body.strip():
            return RunRequest()
        try:
            raw = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"body is not valid JSON ({exc}); expected {{'objects': [...], 'mode': 'incremental'|'full'}}"
            raise BadInputError(msg, field="body") from None
        try:
            return RunRequest.model_validate(raw)
        except ValidationError as exc:
            raise BadInputError(describe_validation(exc, "run request"), field="body") from None

    def _execute(self, report: RunReport, progress: LiveProgress, names: list[str]) -> None:
        try:
            with log_context(run_id=report.run_id, service=SERVICE):
                self.extractor.run(names, mode=report.mode, run_id=report.run_id, progress=progress, report=report)
        except SfpipeError as exc:
            report.status, report.error = "failed", str(exc)
            report.ended_at = datetime.now(UTC)
        except Exception as exc:
            log.exception("run %s crashed", report.run_id)
            report.status, report.error = "failed", f"{type(exc).__name__}: {exc}"
            report.ended_at = datetime.now(UTC)
        finally:
            with self._lock:
                if self._active == report.run_id:
                    self._active = None
                self._threads.pop(report.run_id, None)

    def get_run(self, headers: Mapping[str, str], run_id: str) -> Response:
        """``GET /runs/<id>``: this instance's memory first, then the run's manifest in the lake."""
        try:
            self.auth.check(headers)
        except CallerRejected as exc:
            return Response(exc.status, {"error": str(exc)})
        if not is_run_id(run_id):
            return Response(400, {"error": f"{run_id!r} is not a run id", "field": "run_id"})
        with self._lock:
            known = self.runs.get(run_id)
        if known is not None:
            report, progress = known
            summary = report.summary()
            if report.status in ("queued", "running"):
                summary["progress"] = progress.snapshot()
            return Response(200, summary)
        uri = manifest_uri(self.settings.lake_bucket, run_id)
        try:
            raw, _ = self.extractor.store.get_bytes(uri)
        except NotFoundError:
            return Response(404, {"error": f"no run {run_id} on this instance and no manifest at {uri}"})
        manifest = parse_manifest(raw, uri)
        return Response(
            200,
            {
                "run_id": run_id,
                "status": "partial" if manifest.failed else "completed",
                "manifest_uri": uri,
                "started_at": manifest.created_at.isoformat(),
                "ended_at": manifest.completed_at.isoformat() if manifest.completed_at else None,
                "objects": {
                    n: {"status": "done", "rows": o.rows, "files": len(o.files)} for n, o in manifest.objects.items()
                },
                "failed": manifest.failed,
            },
        )

    def wait_idle(self, timeout: float = 600.0) -> None:
        """Wait for background runs to end (tests, shutdown)."""
        for thread in list(self._threads.values()):
            thread.join(timeout)


def create_app(service: ExtractorService) -> flask.Flask:
    """The Flask app over an :class:`ExtractorService`."""
    app = flask.Flask(SERVICE)

    def reply(response: Response) -> flask.Response:
        answer = flask.Response(json.dumps(response.body, default=str), mimetype="application/json")
        answer.status_code = response.status
        for key, value in response.headers.items():
            answer.headers[key] = value
        return answer

    def trace() -> str | None:
        return trace_from_headers(dict(flask.request.headers), service.settings.project)

    @app.get("/healthz")
    def healthz() -> flask.Response:
        return flask.jsonify({"service": SERVICE, "status": "ok"})

    @app.post("/runs")
    def post_runs() -> flask.Response:
        wait = flask.request.args.get("wait", "false").lower() in ("1", "true", "yes")
        with log_context(trace=trace(), service=SERVICE):
            return reply(service.post_runs(dict(flask.request.headers), flask.request.get_data(), wait))

    @app.get("/runs/<run_id>")
    def get_run(run_id: str) -> flask.Response:
        with log_context(trace=trace(), service=SERVICE):
            return reply(service.get_run(dict(flask.request.headers), run_id))

    @app.get("/runs")
    def list_runs() -> flask.Response:
        try:
            service.auth.check(dict(flask.request.headers))
        except CallerRejected as exc:
            return reply(Response(exc.status, {"error": str(exc)}))
        with service._lock:
            runs = [r.summary() for r, _ in service.runs.values()]
        return reply(Response(200, {"runs": runs}))

    return app


def build_extractor(settings: Settings | None = None) -> Extractor:
    """The engine wired to this mode's Salesforce org, object store and event bus."""
    from sfpipe.adapters.factory import is_local, object_store
    from sfpipe.salesforce.client import SalesforceClient

    settings = settings or get_settings()
    store = object_store(settings)
    if is_local(settings):
        store.ensure_bucket(settings.lake_bucket)
        store.ensure_bucket(settings.state_bucket, versioned=True)
    return Extractor(SalesforceClient.from_settings(settings), store, settings)


def build_service(settings: Settings | None = None) -> ExtractorService:
    """The service with the configured caller checks."""
    settings = settings or get_settings()
    return ExtractorService(settings, lambda: build_extractor(settings))
