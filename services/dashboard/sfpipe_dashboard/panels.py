"""What each panel of the dashboard shows, read from the warehouse and Pub/Sub.

Every panel answers with the same envelope (:class:`Panel`): ``ok`` with data, ``empty``
with a sentence that says which step fills it, or ``error`` with what went wrong. A
missing dataset, table or column is an empty state, never an exception: the dashboard is
opened before the first run as often as after it.

All SQL is BigQuery's dialect with two-part names; the warehouse adapter transpiles it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.ops import sql_literal
from sfpipe_dashboard.backlog import BacklogSource, BacklogUnavailable

if TYPE_CHECKING:
    from sfpipe_devstack.backlog import Backlog

log = logging.getLogger(__name__)

OPS = "sfpipe_ops"
RAW = "sfpipe_raw"
MARTS = "sfpipe_marts"

STAGES = ("extract", "load", "transform", "reconcile", "quality")
"""The batch path's stages, in the order a run goes through them."""

State = Literal["ok", "empty", "error"]

_OK_WORDS = {"succeeded", "success", "successful", "completed", "complete", "done", "ok", "passed", "loaded"}
_FAILED_WORDS = {"failed", "failure", "error", "errored", "terminal", "aborted", "timeout", "timed_out"}
_RUNNING_WORDS = {
    "running",
    "started",
    "in_progress",
    "pending",
    "queued",
    "loading",
    "extracting",
    "waiting",
    "retrying",
}


def status_class(status: str | None) -> str:
    """One of ``ok``, ``failed``, ``running``, ``skipped`` for any stage status word a service writes."""
    word = (status or "").strip().lower().replace(" ", "_").replace("-", "_")
    if word in _OK_WORDS:
        return "ok"
    if word in _FAILED_WORDS:
        return "failed"
    if word in _RUNNING_WORDS:
        return "running"
    return "skipped"


def jsonable(value: Any) -> Any:
    """A warehouse value as JSON: timestamps in ISO 8601 UTC, NUMERIC as a number."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and value != value:  # NaN has no JSON form
        return None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


@dataclass
class Panel:
    """One panel's answer."""

    state: State
    data: Any = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The panel as the API returns it."""
        return {"state": self.state, "message": self.message, "data": jsonable(self.data)}


class PanelEmpty(Exception):
    """Raised inside a panel to answer with its empty state."""


@dataclass
class Catalog:
    """The tables and columns of the datasets the dashboard reads, loaded once per refresh."""

    tables: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, warehouse: Warehouse, datasets: Iterable[str]) -> Catalog:
        """One INFORMATION_SCHEMA query per dataset; a dataset that does not exist is simply empty."""
        catalog = cls()
        for dataset in datasets:
            catalog.tables[dataset] = {}
            try:
                rows = warehouse.query(
                    f"SELECT table_name, column_name FROM `{dataset}`.INFORMATION_SCHEMA.COLUMNS "
                    "ORDER BY table_name, ordinal_position"
                ).to_pylist()
            except Exception as exc:  # noqa: BLE001 - BigQuery answers NotFound for a missing dataset
                log.info("cannot list %s: %s", dataset, exc)
                catalog.errors[dataset] = str(exc).splitlines()[0][:300]
                continue
            for row in rows:
                catalog.tables[dataset].setdefault(str(row["table_name"]), []).append(str(row["column_name"]))
        return catalog

    def columns(self, dataset: str, table: str) -> list[str] | None:
        """A table's columns, or None when the table does not exist."""
        return self.tables.get(dataset, {}).get(table)

    def has(self, dataset: str, table: str) -> bool:
        """Whether the table exists."""
        return self.columns(dataset, table) is not None

    def require(self, dataset: str, table: str, empty: str, needs: Sequence[str] = ()) -> list[str]:
        """The table's columns; its absence is the panel's empty state, a missing column an error."""
        columns = self.columns(dataset, table)
        if columns is None:
            raise PanelEmpty(empty)
        lower = {c.lower() for c in columns}
        missing = [c for c in needs if c.lower() not in lower]
        if missing:
            msg = f"{dataset}.{table} has no column {', '.join(missing)}"
            raise ValueError(msg)
        return columns


EMPTY = {
    "runs": "Start one with `sfpipe demo`, or `sfpipe extract` with the devstack up; each stage of a run writes "
    "its row to sfpipe_ops.runs.",
    "freshness": "The loader creates sfpipe_raw.<object> when it loads the first extract.",
    "quality": "The quality service writes sfpipe_ops.quality_results after each transform.",
    "dead_letters": "Start the devstack with `sfpipe up` to see the dead-letter and alert backlogs.",
    "snapshot": "The transform builds sfpipe_marts.salesforce__sales_snapshot after a load.",
    "pipeline_by_stage": "The transform builds sfpipe_marts.salesforce__opportunity_enhanced after a load.",
    "bookings_by_month": "Closed-won deals appear once the transform builds "
    "sfpipe_marts.salesforce__opportunity_enhanced.",
    "win_by_owner": "The transform builds sfpipe_marts.salesforce__owner_performance after a load.",
    "cdc_lag": "Start the CDC path (cdc-publisher and the streaming pipeline) and change records in the simulator; "
    "each applied change writes its lag to sfpipe_ops.cdc_lag.",
    "reconciliation": "`sfpipe reconcile` compares every raw table with the source and writes "
    "sfpipe_ops.reconciliations.",
}


class DashboardData:
    """Reads every panel for one refresh (one catalog, one warehouse session)."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        backlog: BacklogSource | None = None,
        now: Callable[[], datetime] | None = None,
        stale_after: timedelta = timedelta(hours=24),
    ) -> None:
        self.warehouse = warehouse
        self.backlog = backlog
        self.now = (now or (lambda: datetime.now(UTC)))()
        self.stale_after = stale_after
        self._catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        """The datasets' tables, read on first use."""
        if self._catalog is None:
            self._catalog = Catalog.load(self.warehouse, (OPS, RAW, MARTS))
        return self._catalog

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        return self.warehouse.query(sql).to_pylist()

    def panel(self, name: str, read: Callable[[], Any]) -> Panel:
        """Run one panel's reader, turning absence into its empty state and failure into an error."""
        try:
            data = read()
        except PanelEmpty as empty:
            return Panel("empty", message=str(empty) or EMPTY.get(name))
        except Exception as exc:  # one failing panel must not take the page down
            log.warning("panel %s failed: %s", name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            return Panel("error", message=str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__)
        return Panel("ok", data=data)

    # ---- pipeline runs -------------------------------------------------------------------

    def runs(self, limit: int = 12) -> dict[str, Any]:
        """The latest runs, newest first, each with its stages in pipeline order."""
        self.catalog.require(OPS, "runs", EMPTY["runs"])
        rows = self._rows(
            f"""
            WITH recent AS (
              SELECT run_id, COALESCE(MIN(started_at), MIN(updated_at)) AS run_started
              FROM `{OPS}.runs`
              GROUP BY run_id
              ORDER BY run_started DESC, run_id DESC
              LIMIT {int(limit)}
            )
            SELECT r.run_id, r.stage, r.status, r.started_at, r.ended_at, r.`rows` AS row_count, r.detail,
                   r.updated_at, recent.run_started
            FROM `{OPS}.runs` AS r
            JOIN recent ON r.run_id = recent.run_id
            ORDER BY recent.run_started DESC, r.run_id DESC, r.started_at
            """
        )
        if not rows:
            raise PanelEmpty(EMPTY["runs"])
        order = {stage: i for i, stage in enumerate(STAGES)}
        runs: dict[str, dict[str, Any]] = {}
        for row in rows:
            run = runs.setdefault(row["run_id"], {"run_id": row["run_id"], "stages": []})
            started, ended = _aware(row["started_at"]), _aware(row["ended_at"])
            klass = status_class(row["status"])
            until = ended or (self.now if klass == "running" else None)
            run["stages"].append(
                {
                    "stage": row["stage"],
                    "status": row["status"],
                    "status_class": klass,
                    "started_at": started,
                    "ended_at": ended,
                    "seconds": (until - started).total_seconds() if started and until else None,
                    "rows": row["row_count"],
                    "detail": _detail(row["detail"]),
                }
            )
        out = []
        for run in runs.values():
            run["stages"].sort(key=lambda s: (order.get(s["stage"], len(order)), s["started_at"] or self.now))
            out.append(_summarise_run(run, self.now))
        return {"runs": out, "stages": list(STAGES)}

    # ---- freshness -----------------------------------------------------------------------

    def freshness(self) -> dict[str, Any]:
        """Per raw table: rows, deleted rows, newest SystemModstamp, and its last load."""
        raw = {
            name: cols
            for name, cols in self.catalog.tables.get(RAW, {}).items()
            if not name.startswith("_") and "__" not in name and "id" in {c.lower() for c in cols}
        }
        loads = self._latest_loads() if self.catalog.has(OPS, "loads") else {}
        if not raw and not loads:
            raise PanelEmpty(EMPTY["freshness"])
        stats: dict[str, dict[str, Any]] = {}
        if raw:
            parts = [_table_stats_sql(name, cols) for name, cols in sorted(raw.items())]
            for row in self._rows("\nUNION ALL\n".join(parts)):
                for key in ("row_count", "deleted", "cdc_rows"):
                    row[key] = int(row[key] or 0)
                stats[row["object"]] = row
        objects = []
        for name in sorted(set(stats) | set(loads)):
            stat = stats.get(name, {})
            load = loads.get(name)
            newest = _aware(stat.get("max_modstamp"))
            loaded_at = _aware(load["loaded_at"]) if load else _aware(stat.get("last_ingested"))
            load_class = status_class(load["status"]) if load else ("ok" if stat else "skipped")
            age = (self.now - loaded_at).total_seconds() if loaded_at else None
            if load_class == "failed":
                health = "failed"
            elif age is None or age > self.stale_after.total_seconds():
                health = "stale"
            else:
                health = "ok"
            objects.append(
                {
                    "object": name,
                    "rows": stat.get("row_count"),
                    "live_rows": (stat.get("row_count") or 0) - (stat.get("deleted") or 0) if stat else None,
                    "deleted": stat.get("deleted"),
                    "cdc_rows": stat.get("cdc_rows"),
                    "max_modstamp": newest,
                    "modstamp_age_seconds": (self.now - newest).total_seconds() if newest else None,
                    "last_load_at": loaded_at,
                    "last_load_age_seconds": age,
                    "last_load_status": load["status"] if load else None,
                    "last_load_run_id": load["run_id"] if load else stat.get("last_run_id"),
                    "last_load_error": load["error"] if load else None,
                    "health": health,
                }
            )
        return {
            "objects": objects,
            "total_rows": sum(o["rows"] or 0 for o in objects),
            "stale_after_seconds": self.stale_after.total_seconds(),
        }

    def _latest_loads(self) -> dict[str, dict[str, Any]]:
        rows = self._rows(
            f"""
            SELECT LOWER(object) AS object, run_id, status, inserted, updated, deleted, seconds, error, loaded_at
            FROM `{OPS}.loads`
            QUALIFY ROW_NUMBER() OVER (PARTITION BY LOWER(object) ORDER BY loaded_at DESC) = 1
            """
        )
        return {row["object"]: row for row in rows}

    # ---- quality -------------------------------------------------------------------------

    def quality(self) -> dict[str, Any]:
        """The latest run of each suite: what passed and each failing expectation."""
        columns = {c.lower() for c in self.catalog.require(OPS, "quality_results", EMPTY["quality"])}
        # table_name and check_name came later (additive columns): read them when the table has them
        extra = ", ".join(
            f"q.{c}" if c in columns else f"CAST(NULL AS STRING) AS {c}" for c in ("table_name", "check_name")
        )
        rows = self._rows(
            f"""
            WITH latest AS (
              SELECT suite, run_id
              FROM `{OPS}.quality_results`
              QUALIFY ROW_NUMBER() OVER (PARTITION BY suite ORDER BY checked_at DESC, run_id DESC) = 1
            )
            SELECT q.suite, q.run_id, q.expectation, q.column_name, q.success, q.severity, q.observed_value,
                   q.unexpected_count, q.checked_at, {extra}
            FROM `{OPS}.quality_results` AS q
            JOIN latest ON q.suite = latest.suite AND q.run_id = latest.run_id
            ORDER BY q.suite, q.success, q.expectation
            """
        )
        if not rows:
            raise PanelEmpty(EMPTY["quality"])
        suites: dict[str, dict[str, Any]] = {}
        for row in rows:
            suite = suites.setdefault(
                row["suite"],
                {
                    "suite": row["suite"],
                    "run_id": row["run_id"],
                    "checked_at": None,
                    "passed": 0,
                    "failed": 0,
                    "failing": [],
                },
            )
            checked = _aware(row["checked_at"])
            if checked and (suite["checked_at"] is None or checked > suite["checked_at"]):
                suite["checked_at"] = checked
            if row["success"]:
                suite["passed"] += 1
            else:
                suite["failed"] += 1
                suite["failing"].append(
                    {
                        "expectation": row["expectation"],
                        "check": row["check_name"],
                        "table": row["table_name"],
                        "column": row["column_name"],
                        "severity": (row["severity"] or "error").lower(),
                        "observed_value": row["observed_value"],
                        "unexpected_count": row["unexpected_count"],
                    }
                )
        out = []
        for suite in suites.values():
            severities = {f["severity"] for f in suite["failing"]}
            if not suite["failing"]:
                suite["status"] = "passed"
            elif severities <= {"warning", "warn", "info", "low"}:
                suite["status"] = "warning"
            else:
                suite["status"] = "failed"
            suite["total"] = suite["passed"] + suite["failed"]
            suite["failing"].sort(key=lambda f: (_severity_rank(f["severity"]), f["expectation"]))
            out.append(suite)
        out.sort(key=lambda s: ({"failed": 0, "warning": 1, "passed": 2}[s["status"]], s["suite"]))
        return {
            "suites": out,
            "passed_suites": sum(1 for s in out if s["status"] == "passed"),
            "failing_expectations": sum(s["failed"] for s in out),
        }

    # ---- dead letters --------------------------------------------------------------------

    def dead_letters(self) -> dict[str, Any]:
        """Messages waiting on the dead-letter and alert subscriptions (counted, never consumed)."""
        if self.backlog is None:
            raise PanelEmpty(EMPTY["dead_letters"])
        try:
            backlogs = self.backlog()
        except BacklogUnavailable as exc:
            raise PanelEmpty(str(exc)) from exc
        if backlogs and all(b.error for b in backlogs):
            msg = backlogs[0].error or "the backlog could not be counted"
            raise RuntimeError(msg)
        subs = [_backlog_json(b) for b in backlogs]
        return {
            "total": sum(s["messages"] or 0 for s in subs),
            "dead_letter": sum(s["messages"] or 0 for s in subs if s["kind"] == "dead-letter"),
            "alerts": sum(s["messages"] or 0 for s in subs if s["kind"] == "alerts"),
            "subscriptions": subs,
        }

    # ---- sales (Dataform marts) ----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The one row of salesforce__sales_snapshot: the headline numbers."""
        self.catalog.require(MARTS, "salesforce__sales_snapshot", EMPTY["snapshot"])
        rows = self._rows(f"SELECT * FROM `{MARTS}.salesforce__sales_snapshot` LIMIT 1")
        if not rows:
            raise PanelEmpty(EMPTY["snapshot"])
        return {k: (_number(v) if isinstance(v, int | float | Decimal) else v) for k, v in rows[0].items()}

    def pipeline_by_stage(self) -> dict[str, Any]:
        """Open opportunities by stage, in the order deals move through them (by probability)."""
        self.catalog.require(
            MARTS,
            "salesforce__opportunity_enhanced",
            EMPTY["pipeline_by_stage"],
            needs=("stage_name", "amount", "is_closed", "probability"),
        )
        rows = self._rows(
            f"""
            SELECT COALESCE(stage_name, '(none)') AS stage_name, COUNT(*) AS opportunities,
                   COALESCE(SUM(amount), 0) AS amount, AVG(probability) AS probability
            FROM `{MARTS}.salesforce__opportunity_enhanced`
            WHERE NOT COALESCE(is_closed, FALSE)
            GROUP BY 1
            ORDER BY probability, stage_name
            """
        )
        if not rows:
            raise PanelEmpty(EMPTY["pipeline_by_stage"])
        stages = [{**r, "amount": _number(r["amount"]), "probability": _number(r["probability"])} for r in rows]
        return {
            "stages": stages,
            "open_amount": sum(s["amount"] or 0 for s in stages),
            "open_count": sum(s["opportunities"] for s in stages),
        }

    def bookings_by_month(self, months: int = 24) -> dict[str, Any]:
        """Closed-won amount by close month, the last ``months`` months that have any."""
        self.catalog.require(
            MARTS,
            "salesforce__opportunity_enhanced",
            EMPTY["bookings_by_month"],
            needs=("close_date", "amount", "is_won"),
        )
        rows = self._rows(
            f"""
            SELECT DATE_TRUNC(close_date, MONTH) AS month, COALESCE(SUM(amount), 0) AS amount, COUNT(*) AS deals
            FROM `{MARTS}.salesforce__opportunity_enhanced`
            WHERE is_won AND close_date IS NOT NULL
            GROUP BY 1
            ORDER BY 1 DESC
            LIMIT {int(months)}
            """
        )
        if not rows:
            raise PanelEmpty(EMPTY["bookings_by_month"])
        series = [{"month": r["month"], "amount": _number(r["amount"]), "deals": r["deals"]} for r in reversed(rows)]
        return {"months": series, "total": sum(m["amount"] or 0 for m in series)}

    def win_by_owner(self, limit: int = 15) -> dict[str, Any]:
        """Win percentage by opportunity owner (by amount, as dbt_salesforce defines it)."""
        columns = self.catalog.require(
            MARTS,
            "salesforce__owner_performance",
            EMPTY["win_by_owner"],
            needs=("owner_id", "total_win_percent", "total_bookings_amount", "total_lost_amount"),
        )
        name = "owner_name" if "owner_name" in {c.lower() for c in columns} else "owner_id"
        rows = self._rows(
            f"""
            SELECT COALESCE({name}, owner_id) AS owner_name, total_win_percent,
                   COALESCE(total_bookings_amount, 0) AS bookings, COALESCE(total_lost_amount, 0) AS lost
            FROM `{MARTS}.salesforce__owner_performance`
            WHERE COALESCE(total_bookings_amount, 0) + COALESCE(total_lost_amount, 0) > 0
            ORDER BY total_win_percent DESC, bookings DESC
            LIMIT {int(limit)}
            """
        )
        if not rows:
            raise PanelEmpty(EMPTY["win_by_owner"])
        owners = [
            {
                "owner_name": r["owner_name"],
                "win_percent": _number(r["total_win_percent"]),
                "bookings": _number(r["bookings"]),
                "lost": _number(r["lost"]),
            }
            for r in rows
        ]
        return {"owners": owners}

    # ---- CDC lag and reconciliation ------------------------------------------------------

    def cdc_lag(self, window: timedelta = timedelta(hours=6), points: int = 90) -> dict[str, Any]:
        """p50 / p99 of commit-to-applied lag over time, in buckets sized for about ``points`` points."""
        self.catalog.require(OPS, "cdc_lag", EMPTY["cdc_lag"])
        span = self._rows(
            f"SELECT MIN(applied_at) AS first, MAX(applied_at) AS last, COUNT(*) AS n FROM `{OPS}.cdc_lag`"
        )
        last, first = _aware(span[0]["last"]), _aware(span[0]["first"])
        if not span[0]["n"] or last is None or first is None:
            raise PanelEmpty(EMPTY["cdc_lag"])
        since = max(first, last - window)
        bucket = _bucket_seconds((last - since).total_seconds(), points)
        since_sql = sql_literal(since)
        rows = self._rows(
            f"""
            SELECT TIMESTAMP_SECONDS(DIV(UNIX_SECONDS(applied_at), {bucket}) * {bucket}) AS bucket,
                   COUNT(*) AS changes,
                   APPROX_QUANTILES(lag_ms, 100)[OFFSET(50)] AS p50_ms,
                   APPROX_QUANTILES(lag_ms, 100)[OFFSET(99)] AS p99_ms,
                   MAX(lag_ms) AS max_ms
            FROM `{OPS}.cdc_lag`
            WHERE applied_at >= {since_sql}
            GROUP BY 1
            ORDER BY 1
            """
        )
        overall = self._rows(
            f"""
            SELECT COUNT(*) AS changes,
                   APPROX_QUANTILES(lag_ms, 100)[OFFSET(50)] AS p50_ms,
                   APPROX_QUANTILES(lag_ms, 100)[OFFSET(99)] AS p99_ms
            FROM `{OPS}.cdc_lag`
            WHERE applied_at >= {since_sql}
            """
        )[0]
        return {
            "bucket_seconds": bucket,
            "since": since,
            "last_applied_at": last,
            "series": [
                {
                    "at": r["bucket"],
                    "changes": r["changes"],
                    "p50_ms": _number(r["p50_ms"]),
                    "p99_ms": _number(r["p99_ms"]),
                    "max_ms": _number(r["max_ms"]),
                }
                for r in rows
            ],
            "changes": overall["changes"],
            "p50_ms": _number(overall["p50_ms"]),
            "p99_ms": _number(overall["p99_ms"]),
        }

    def reconciliation(self) -> dict[str, Any]:
        """The latest reconciliation of each object."""
        self.catalog.require(OPS, "reconciliations", EMPTY["reconciliation"])
        rows = self._rows(
            f"""
            SELECT object, run_id, source_rows, warehouse_rows, missing, extra, stale, repaired, status, checked_at
            FROM `{OPS}.reconciliations`
            QUALIFY ROW_NUMBER() OVER (PARTITION BY object ORDER BY checked_at DESC) = 1
            ORDER BY object
            """
        )
        if not rows:
            raise PanelEmpty(EMPTY["reconciliation"])
        objects = []
        for row in rows:
            differences = sum(int(row[k] or 0) for k in ("missing", "extra", "stale"))
            objects.append({**row, "differences": differences, "status_class": _reconcile_class(row, differences)})
        checked = [t for t in (_aware(o["checked_at"]) for o in objects) if t is not None]
        return {
            "objects": objects,
            "checked_at": max(checked, default=None),
            "differences": sum(o["differences"] for o in objects),
            "clean": sum(1 for o in objects if o["differences"] == 0),
        }


# ---- helpers ------------------------------------------------------------------------------


def _detail(raw: Any) -> Any:
    if raw is None or isinstance(raw, dict | list):
        return raw
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return str(raw)


def _summarise_run(run: dict[str, Any], now: datetime) -> dict[str, Any]:
    stages = run["stages"]
    classes = [s["status_class"] for s in stages]
    if "failed" in classes:
        status = "failed"
    elif "running" in classes:
        status = "running"
    elif classes and all(c == "ok" for c in classes):
        status = "ok"
    else:
        status = "skipped"
    starts = [s["started_at"] for s in stages if s["started_at"]]
    ends = [s["ended_at"] for s in stages if s["ended_at"]]
    started = min(starts) if starts else None
    ended = None if status == "running" else (max(ends) if ends else None)
    until = ended or (now if status == "running" else None)
    load = next((s for s in stages if s["stage"] == "load"), None)
    return {
        **run,
        "status_class": status,
        "started_at": started,
        "ended_at": ended,
        "seconds": (until - started).total_seconds() if started and until else None,
        "rows": load["rows"] if load and load["rows"] is not None else max((s["rows"] or 0 for s in stages), default=0),
        "failed_stage": next((s["stage"] for s in stages if s["status_class"] == "failed"), None),
    }


def _table_stats_sql(table: str, columns: Sequence[str]) -> str:
    names = {c.lower(): c for c in columns}

    def col(name: str) -> str | None:
        found = names.get(name.lower())
        return f"`{found}`" if found else None

    deleted, source, run = col("IsDeleted"), col("_source"), col("_run_id")
    modstamp = col("SystemModstamp") or col("_version")
    ingested = col("_ingested_at")
    exprs = [
        f"{sql_literal(table)} AS object",
        "COUNT(*) AS row_count",
        (f"COUNTIF(COALESCE({deleted}, FALSE))" if deleted else "0") + " AS deleted",
        (f"COUNTIF({source} = 'cdc')" if source else "0") + " AS cdc_rows",
        (f"MAX({modstamp})" if modstamp else "CAST(NULL AS TIMESTAMP)") + " AS max_modstamp",
        (f"MAX({ingested})" if ingested else "CAST(NULL AS TIMESTAMP)") + " AS last_ingested",
        (f"MAX({run})" if run else "CAST(NULL AS STRING)") + " AS last_run_id",
    ]
    return f"SELECT {', '.join(exprs)} FROM `{RAW}.{table}`"


def _severity_rank(severity: str) -> int:
    return {"critical": 0, "error": 1, "high": 1, "warning": 2, "warn": 2}.get(severity, 3)


def _bucket_seconds(span_seconds: float, points: int) -> int:
    for size in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span_seconds / size <= points:
            return size
    return 3600


def _reconcile_class(row: Mapping[str, Any], differences: int) -> str:
    klass = status_class(row.get("status"))
    if klass == "failed":
        return "failed"
    if differences == 0:
        return "ok"
    return "ok" if (row.get("repaired") or 0) >= differences else "failed"


def _backlog_json(backlog: Backlog) -> dict[str, Any]:
    return {
        "subscription": backlog.subscription,
        "kind": "alerts" if backlog.subscription.endswith("-alerts") else "dead-letter",
        "messages": backlog.messages,
        "capped": backlog.capped,
        "error": backlog.error,
        # the dead-letter attribute holds the full subscription path; people know the short name
        "by_source": {k.rsplit("/", 1)[-1]: v for k, v in sorted(backlog.by_source.items())},
    }
