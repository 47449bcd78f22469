"""The dashboard's Flask app: a JSON API over the panels and one page that draws them.

The page (``/``) fetches ``/api/dashboard`` and redraws itself every few seconds; each
panel is also its own endpoint for scripts. Nothing here answers 500 because a stage has
not run: a missing table is a panel's empty state (see :mod:`sfpipe_dashboard.panels`).

The warehouse is opened per refresh and closed after it, unless a warehouse object is
handed in: locally that keeps the DuckDB file free for the warehouse server whenever the
dashboard is idle. Refreshes are serialised and cached for a few seconds, so several open
browsers cost the warehouse one set of queries.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import flask
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sfpipe import __version__
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings, get_settings
from sfpipe.topology import load_topology
from sfpipe_dashboard.backlog import BacklogSource, DevstackBacklog, unavailable
from sfpipe_dashboard.panels import DashboardData, Panel, jsonable

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).parent
WarehouseSource = Warehouse | Callable[[], Warehouse]

GCP_BACKLOG = (
    "On Google Cloud the dead-letter and alert backlogs are Pub/Sub's num_undelivered_messages metric, "
    "watched by the Cloud Monitoring alert policies; this page counts them on the local emulator."
)

PANELS = (
    "runs",
    "freshness",
    "quality",
    "dead_letters",
    "snapshot",
    "pipeline_by_stage",
    "bookings_by_month",
    "win_by_owner",
    "cdc_lag",
    "reconciliation",
)


def plotly_js() -> Path:
    """The plotly.min.js bundled in the ``plotly`` Python package (no CDN, works offline)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


class RunsQuery(BaseModel):
    """Query parameters of ``/api/runs``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(12, ge=1, le=200)
    """How many of the latest runs to return."""


class SalesQuery(BaseModel):
    """Query parameters of ``/api/sales``."""

    model_config = ConfigDict(extra="forbid")

    months: int = Field(24, ge=1, le=120)
    """How many months of bookings to return."""

    owners: int = Field(15, ge=1, le=500)
    """How many owners to rank by win percentage."""


class Dashboard:
    """Reads panels through a warehouse session per refresh, with a short cache."""

    def __init__(
        self,
        warehouse: WarehouseSource | None,
        backlog: BacklogSource | Literal["auto"] | None,
        settings: Settings,
        *,
        cache_seconds: float,
        now: Callable[[], datetime] | None,
        stale_after: timedelta,
    ) -> None:
        self.settings = settings
        self._warehouse = warehouse
        self._backlog: BacklogSource | None = None if backlog == "auto" else backlog
        self._backlog_ready = backlog != "auto"
        self.cache_seconds = cache_seconds
        self.now = now
        self.stale_after = stale_after
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Any]] = {}

    @property
    def backlog(self) -> BacklogSource | None:
        """How the dead-letter panel counts, decided on first use."""
        if not self._backlog_ready:
            self._backlog_ready = True
            from sfpipe.adapters.factory import is_local

            if is_local(self.settings):
                self._backlog = DevstackBacklog(self.settings, load_topology())
            else:
                self._backlog = unavailable(GCP_BACKLOG)
        return self._backlog

    @contextlib.contextmanager
    def session(self) -> Iterator[DashboardData]:
        """A warehouse for one refresh; one opened here is closed after it."""
        source = self._warehouse
        owned = False
        if isinstance(source, Warehouse):
            warehouse = source
        else:
            if source is None:
                from sfpipe.adapters.factory import warehouse as make_warehouse

                warehouse = make_warehouse(self.settings)
            else:
                warehouse = source()
            owned = True
        try:
            yield DashboardData(warehouse, backlog=self.backlog, now=self.now, stale_after=self.stale_after)
        finally:
            if owned:
                warehouse.close()

    def cached(self, key: str, build: Callable[[DashboardData], Any]) -> Any:
        """Build an answer at most once per ``cache_seconds``; one refresh at a time."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
                return hit[1]
            try:
                with self.session() as data:
                    value = build(data)
            except Exception as exc:  # noqa: BLE001 - the warehouse itself could not be opened: say so, do not 500
                log.warning("warehouse unavailable: %s", exc)
                value = build(_Unavailable(exc))
            self._cache[key] = (time.monotonic(), value)
            return value

    def everything(self, data: DashboardData) -> dict[str, Any]:
        """Every panel and the health summary derived from them."""
        panels = {name: data.panel(name, getattr(data, name)) for name in PANELS}
        return {
            "generated_at": jsonable(data.now),
            "environment": self.environment(),
            "health": jsonable(health(panels)),
            "panels": {name: panel.to_json() for name, panel in panels.items()},
        }

    def environment(self) -> dict[str, Any]:
        """Where this dashboard looks: mode and project."""
        return {"mode": self.settings.mode.value, "project": self.settings.project, "version": __version__}


class _Unavailable(DashboardData):
    """Stands in for a refresh whose warehouse could not be opened: every panel says why."""

    def __init__(self, exc: Exception) -> None:
        self.error = f"the warehouse is unavailable: {str(exc).splitlines()[0][:300] if str(exc) else exc!r}"
        self.now = datetime.now(UTC)

    def panel(self, name: str, read: Callable[[], Any]) -> Panel:
        """The same error for each panel."""
        return Panel("error", message=self.error)


def health(panels: dict[str, Panel]) -> dict[str, Any]:
    """One line of truth for the header: is the pipeline healthy, and what needs a look."""
    issues: list[str] = []
    runs = panels["runs"]
    last_run = runs.data["runs"][0] if runs.state == "ok" else None
    if last_run is not None and last_run["status_class"] == "failed":
        issues.append(f"run {last_run['run_id']} failed at {last_run['failed_stage'] or 'a stage'}")
    quality = panels["quality"]
    failed_suites = (
        [s["suite"] for s in quality.data["suites"] if s["status"] == "failed"] if quality.state == "ok" else []
    )
    if failed_suites:
        issues.append(f"quality failing in {', '.join(failed_suites)}")
    dead = panels["dead_letters"]
    waiting = dead.data["total"] if dead.state == "ok" else None
    if waiting:
        issues.append(f"{waiting} message{'s' if waiting != 1 else ''} waiting in dead-letter / alert subscriptions")
    fresh = panels["freshness"]
    objects = fresh.data["objects"] if fresh.state == "ok" else []
    failed_loads = [o["object"] for o in objects if o["health"] == "failed"]
    stale = [o["object"] for o in objects if o["health"] == "stale"]
    if failed_loads:
        issues.append(f"last load failed for {', '.join(failed_loads)}")
    if stale:
        issues.append(f"{len(stale)} object{'s' if len(stale) != 1 else ''} not loaded in the last day")
    errors = [name for name, p in panels.items() if p.state == "error"]
    if (last_run and last_run["status_class"] == "failed") or failed_suites or failed_loads:
        overall = "failing"
    elif last_run is None and not objects and quality.state != "ok" and not issues:
        overall = "no-data"
    elif issues or errors:
        overall = "attention"
    elif last_run and last_run["status_class"] == "running":
        overall = "running"
    else:
        overall = "healthy"
    return {
        "status": overall,
        "issues": issues,
        "panel_errors": errors,
        "last_run": (
            {k: last_run[k] for k in ("run_id", "status_class", "started_at", "ended_at", "seconds", "rows")}
            if last_run
            else None
        ),
        "quality": (
            {
                "suites": len(quality.data["suites"]),
                "passed": quality.data["passed_suites"],
                "failing_expectations": quality.data["failing_expectations"],
            }
            if quality.state == "ok"
            else None
        ),
        "dead_letters": waiting,
        "objects": len(objects),
        "rows": sum(o["rows"] or 0 for o in objects),
        "stale_objects": len(stale),
    }


def _bad_query(exc: ValidationError) -> flask.Response:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    response = flask.jsonify({"error": f"{field}: {first['msg']}", "field": field})
    response.status_code = 400
    return response


def create_app(
    warehouse: WarehouseSource | None = None,
    *,
    backlog: BacklogSource | Literal["auto"] | None = "auto",
    settings: Settings | None = None,
    refresh_seconds: float = 10.0,
    cache_seconds: float | None = None,
    now: Callable[[], datetime] | None = None,
    stale_after: timedelta = timedelta(hours=24),
) -> flask.Flask:
    """The dashboard app.

    Args:
        warehouse: a warehouse to read (kept open), a callable that opens one per refresh,
            or None for the mode's warehouse from the adapter factory.
        backlog: how dead-letter and alert backlogs are counted; ``"auto"`` uses the devstack's
            counter on the local emulator, None leaves that panel in its empty state.
        settings: the settings to use (the process's by default).
        refresh_seconds: how often the page redraws itself.
        cache_seconds: how long an answer is reused (default: half the refresh interval, at most 5 s).
        now: the clock (tests pin it).
        stale_after: an object not loaded for this long is flagged stale.
    """
    settings = settings or get_settings()
    dashboard = Dashboard(
        warehouse,
        backlog,
        settings,
        cache_seconds=min(5.0, refresh_seconds / 2) if cache_seconds is None else cache_seconds,
        now=now,
        stale_after=stale_after,
    )
    app = flask.Flask(
        "sfpipe_dashboard", static_folder=str(PACKAGE / "static"), template_folder=str(PACKAGE / "templates")
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["sfpipe_dashboard"] = dashboard

    @app.get("/healthz")
    def healthz() -> flask.Response:
        return flask.jsonify({"service": "dashboard", "status": "ok"})

    @app.get("/")
    def index() -> str:
        return flask.render_template("index.html", refresh_seconds=refresh_seconds, environment=dashboard.environment())

    @app.get("/vendor/plotly.min.js")
    def plotly() -> flask.Response:
        return flask.send_file(plotly_js(), mimetype="text/javascript", max_age=86_400)

    @app.get("/api/dashboard")
    def api_dashboard() -> flask.Response:
        return flask.jsonify(dashboard.cached("dashboard", dashboard.everything))

    @app.get("/api/summary")
    def api_summary() -> flask.Response:
        full = dashboard.cached("dashboard", dashboard.everything)
        snapshot = full["panels"]["snapshot"]
        return flask.jsonify(
            {
                "generated_at": full["generated_at"],
                "environment": full["environment"],
                "health": full["health"],
                "sales": snapshot["data"] if snapshot["state"] == "ok" else None,
            }
        )

    def one(name: str, read: Callable[[DashboardData], Any]) -> flask.Response:
        def build(data: DashboardData) -> dict[str, Any]:
            return {"generated_at": jsonable(data.now), **data.panel(name, lambda: read(data)).to_json()}

        return flask.jsonify(dashboard.cached(f"{name}?{flask.request.query_string.decode()}", build))

    @app.get("/api/runs")
    def api_runs() -> flask.Response:
        try:
            query = RunsQuery.model_validate(flask.request.args.to_dict())
        except ValidationError as exc:
            return _bad_query(exc)
        return one("runs", lambda d: d.runs(query.limit))

    @app.get("/api/freshness")
    def api_freshness() -> flask.Response:
        return one("freshness", DashboardData.freshness)

    @app.get("/api/quality")
    def api_quality() -> flask.Response:
        return one("quality", DashboardData.quality)

    @app.get("/api/dead-letters")
    def api_dead_letters() -> flask.Response:
        return one("dead_letters", DashboardData.dead_letters)

    @app.get("/api/sales")
    def api_sales() -> flask.Response:
        try:
            query = SalesQuery.model_validate(flask.request.args.to_dict())
        except ValidationError as exc:
            return _bad_query(exc)

        def build(data: DashboardData) -> dict[str, Any]:
            return {
                "generated_at": jsonable(data.now),
                "snapshot": data.panel("snapshot", data.snapshot).to_json(),
                "pipeline_by_stage": data.panel("pipeline_by_stage", data.pipeline_by_stage).to_json(),
                "bookings_by_month": data.panel(
                    "bookings_by_month", lambda: data.bookings_by_month(query.months)
                ).to_json(),
                "win_by_owner": data.panel("win_by_owner", lambda: data.win_by_owner(query.owners)).to_json(),
            }

        return flask.jsonify(dashboard.cached(f"sales?{flask.request.query_string.decode()}", build))

    @app.get("/api/cdc-lag")
    def api_cdc_lag() -> flask.Response:
        return one("cdc_lag", DashboardData.cdc_lag)

    @app.get("/api/reconciliation")
    def api_reconciliation() -> flask.Response:
        return one("reconciliation", DashboardData.reconciliation)

    @app.errorhandler(404)
    def not_found(exc: Exception) -> flask.Response | tuple[str, int]:
        if flask.request.path.startswith("/api/"):
            response = flask.jsonify({"error": f"no endpoint {flask.request.path}", "field": "path"})
            response.status_code = 404
            return response
        return "not found", 404

    return app
