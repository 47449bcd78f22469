"""The admin API (``/admin/...``), protected by the admin token: activity, faults, sessions, clock,
the change log, and the truth export.

Not part of Salesforce's API: it is how tests, benchmarks and reconciliation steer the
simulated org and read what really is in it. Errors keep the REST shape.
"""

from __future__ import annotations

import hmac
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sfpipe.errors import describe_validation
from sfpipe_simulator.app import json_response, read_json, runtime
from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.truth import FORMATS, export_truth, resolve_objects

admin = Blueprint("admin", __name__, url_prefix="/admin")
CHUNK = 1 << 20
MAX_CHANGES = 10_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartActivity(_Body):
    """``POST /admin/activity/start``."""

    rate: float = Field(gt=0, le=10_000)


class ApplyActivity(_Body):
    """``POST /admin/activity/apply``."""

    count: int = Field(ge=1, le=1_000_000)


class AdvanceClock(_Body):
    """``POST /admin/clock``."""

    advance_seconds: float = Field(ge=0, le=365 * 86_400)


def _body(model: type[_Body]) -> Any:
    raw = read_json() if request.get_data().strip() else {}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(400, "INVALID_ADMIN_REQUEST", describe_validation(exc, "admin request")) from None


@admin.before_request
def _authorize() -> None:
    rt = runtime()
    if not rt.admin_token:
        raise ApiError(403, "ADMIN_DISABLED", "The admin API is disabled: set SFPIPE_SIMULATOR_ADMIN_TOKEN")
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("X-Admin-Token", "")
    if not token or not hmac.compare_digest(token, rt.admin_token):
        raise ApiError(401, "INVALID_ADMIN_TOKEN", "The admin API needs 'Authorization: Bearer <admin token>'")


def _activity() -> Any:
    rt = runtime()
    if rt.activity is None:
        raise ApiError(404, "NOT_FOUND", "Live activity is not available")
    return rt.activity


@admin.get("/status")
def status() -> Response:
    """The org, its counts, activity, faults, change-log positions and open cursors."""
    rt = runtime()
    changes = rt.store.changes
    return json_response({
        "org_id": rt.org_id, "seed": rt.plan.seed, "scale": rt.plan.scale, "as_of": rt.plan.as_of.isoformat(),
        "now": rt.clock.now().isoformat(), "clock_offset_seconds": rt.clock.offset.total_seconds(),
        "counts": {name: rt.store.count(name) for name in rt.store.objects},
        "activity": rt.activity.status() if rt.activity else None,
        "faults": rt.faults.config.model_dump(), "faults_injected": dict(rt.faults.injected),
        "changes": {"earliest": changes.earliest(), "latest": changes.latest(),
                    "commit_number": changes.last_commit_number},
        "api_requests_used": rt.limits.used(), "open_cursors": rt.cursors.open_count(),
    })  # fmt: skip


@admin.post("/activity/start")
def start_activity() -> Response:
    """Start (or re-rate) the background activity."""
    body: StartActivity = _body(StartActivity)
    engine = _activity()
    engine.start(body.rate)
    return json_response(engine.status())


@admin.post("/activity/stop")
def stop_activity() -> Response:
    """Stop the background activity."""
    engine = _activity()
    engine.stop()
    return json_response(engine.status())


@admin.post("/activity/apply")
def apply_activity() -> Response:
    """Apply N changes now (synchronously); answers with what was applied and the new log position."""
    body: ApplyActivity = _body(ApplyActivity)
    engine = _activity()
    applied = engine.apply(body.count)
    return json_response({**engine.status(), "applied_now": applied, "latest": runtime().store.changes.latest()})


@admin.get("/changes")
def changes() -> Response:
    """The change log from a position: ``?after=<replay id>&limit=<n>&entities=Account,Contact``."""
    rt = runtime()
    try:
        after = int(request.args.get("after", "0"))
        limit = int(request.args.get("limit", "1000"))
    except ValueError:
        raise ApiError(400, "INVALID_ADMIN_REQUEST", "after and limit must be integers") from None
    if after < 0 or not 1 <= limit <= MAX_CHANGES:
        raise ApiError(400, "INVALID_ADMIN_REQUEST", f"after must be >= 0 and limit between 1 and {MAX_CHANGES}")
    entities = {e.strip() for e in request.args.get("entities", "").split(",") if e.strip()} or None
    if entities:
        try:
            entities = {o.name for o in resolve_objects(sorted(entities))}
        except KeyError as exc:
            raise ApiError(400, "INVALID_TYPE", f"unknown object: {exc.args[0]}") from None
    log = rt.store.changes
    events = log.read(after, limit, entities)
    return json_response({"events": [e.as_dict() for e in events], "earliest": log.earliest(),
                          "latest": log.latest()})  # fmt: skip


class InjectFault(_Body):
    """``POST /admin/faults/inject``."""

    kind: str = Field(pattern="^(late_commit|formula_drift|hard_delete)$")
    count: int = Field(1, ge=1, le=10_000)
    objects: list[str] | None = None
    age_seconds: float | None = Field(None, gt=0, le=14 * 86_400)


@admin.get("/faults")
def get_faults() -> Response:
    """The current fault configuration and how many faults were injected."""
    rt = runtime()
    org = rt.org_faults.status() if rt.org_faults else {}
    return json_response({"config": rt.faults.config.model_dump(), "injected": {**rt.faults.injected, **org}})


@admin.post("/faults/inject")
def inject_fault() -> Response:
    """Make the org misbehave now: late commits, formula drift, hard deletes (see ``orgfaults``)."""
    body: InjectFault = _body(InjectFault)
    rt = runtime()
    if rt.org_faults is None:
        raise ApiError(404, "NOT_FOUND", "Org faults are not available")
    records = rt.org_faults.inject(body.kind, body.count, objects=body.objects, age_seconds=body.age_seconds)
    return json_response({"kind": body.kind, "records": records, "latest": rt.store.changes.latest()})


@admin.route("/faults", methods=["PUT", "PATCH"])
def set_faults() -> Response:
    """Replace (PUT) or change (PATCH) the fault configuration."""
    body = read_json()
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_FAULT_CONFIG", "the fault configuration must be a JSON object")
    config = runtime().faults.configure(body, replace=request.method == "PUT")
    return json_response({"config": config.model_dump()})


@admin.delete("/faults")
def clear_faults() -> Response:
    """No more faults."""
    config = runtime().faults.configure({}, replace=True)
    return json_response({"config": config.model_dump()})


@admin.post("/sessions/expire")
def expire_sessions() -> Response:
    """Forced session expiry: every issued token stops working now."""
    return json_response({"expired": runtime().auth.expire_all()})


@admin.post("/clock")
def advance_clock() -> Response:
    """Move simulated time forward (change-log retention, date literals, replication windows)."""
    body: AdvanceClock = _body(AdvanceClock)
    rt = runtime()
    rt.clock.advance(body.advance_seconds)
    purged = rt.store.changes.purge(rt.clock.now())
    return json_response({"now": rt.clock.now().isoformat(), "purged_changes": purged})


@admin.post("/limits/reset")
def reset_limits() -> Response:
    """Forget API usage."""
    runtime().limits.reset()
    return json_response({"api_requests_used": 0})


def _format() -> str:
    fmt = request.args.get("format", "parquet")
    if fmt not in FORMATS:
        raise ApiError(400, "INVALID_ADMIN_REQUEST", f"format must be one of {', '.join(FORMATS)}")
    return fmt


def _stream_then_remove(path: Path, folder: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _export_folder() -> Path:
    base = runtime().extra.get("data_dir")
    root = Path(base) / "truth" if base else None
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="truth-", dir=root))


@admin.get("/truth/<name>")
def truth_object(name: str) -> Response:
    """One object's current rows (soft-deleted included) as Parquet or CSV."""
    fmt = _format()
    try:
        resolve_objects([name], runtime().store)
    except KeyError:
        raise ApiError(404, "NOT_FOUND", f"unknown object: {name}") from None
    folder = _export_folder()
    export = export_truth(runtime().store, folder, [name], fmt)
    obj_name = next(iter(export.files))
    path = export.files[obj_name]
    headers = {"X-Sfpipe-Replay-Id": str(export.replay_id), "X-Sfpipe-Commit-Number": str(export.commit_number),
               "X-Sfpipe-Rows": str(export.rows[obj_name]), "Content-Length": str(path.stat().st_size),
               "Content-Disposition": f'attachment; filename="{path.name}"'}  # fmt: skip
    mime = "application/vnd.apache.parquet" if fmt == "parquet" else "text/csv"
    return Response(_stream_then_remove(path, folder), 200, content_type=mime, headers=headers)


@admin.get("/truth")
def truth_all() -> Response:
    """Every object from one snapshot, as a tar of ``<Object>.<fmt>`` files plus ``_truth.json``."""
    fmt = _format()
    names = [n for n in request.args.get("objects", "").split(",") if n.strip()] or None
    try:
        resolve_objects(names, runtime().store)
    except KeyError as exc:
        raise ApiError(404, "NOT_FOUND", f"unknown object: {exc.args[0]}") from None
    folder = _export_folder()
    export = export_truth(runtime().store, folder / "files", names, fmt)
    archive = folder / "truth.tar"
    with tarfile.open(archive, "w") as tar:
        for path in sorted((folder / "files").iterdir()):
            tar.add(path, arcname=path.name)
    headers = {"X-Sfpipe-Replay-Id": str(export.replay_id), "X-Sfpipe-Commit-Number": str(export.commit_number),
               "Content-Length": str(archive.stat().st_size)}  # fmt: skip
    return Response(_stream_then_remove(archive, folder), 200, content_type="application/x-tar", headers=headers)
