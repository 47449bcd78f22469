"""``sfpipe demo``: the whole event-driven pipeline on a generated org, followed from the outside.

1. The devstack comes up through the supervisor (:class:`~sfpipe_devstack.supervisor.Devstack`),
   with the simulator generating the org of the chosen seed and scale. When the demo starts
   the stack itself it also starts from an empty local warehouse: the simulator's org is
   regenerated on every start, so rows left from an earlier session would be records the
   org no longer has.
2. The demo posts one run to the extractor (``POST /runs``) — the only call it makes to a
   pipeline service. From then on the events drive the pipeline: the manifest's finalize
   notification → loader → ``sfpipe.load.completed`` → transform →
   ``sfpipe.transform.completed`` → quality.
3. It follows the run through the ``*-ops`` subscriptions, ``sfpipe_ops`` and the extractor's
   run status (:mod:`sfpipe_devstack.demo.tracker`). When the CDC path runs, the simulator's
   live activity is switched on, so changes flow into the raw layer while the batch runs.
4. The summary comes from the warehouse (:mod:`sfpipe_devstack.demo.summary`).

See docs/adr/0100-demo-follows-the-run-through-ops-events.md.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sfpipe.config import Mode, Settings, get_settings, reset_settings
from sfpipe.errors import BadInputError
from sfpipe.topology import load_topology
from sfpipe_devstack import emulators
from sfpipe_devstack.demo import summary as summaries
from sfpipe_devstack.demo.display import DemoDisplay
from sfpipe_devstack.demo.tracker import AFTER, RECONCILE, SERVICE_OF, STAGES, RunTracker
from sfpipe_devstack.demo.watch import ExtractorClient, OpsReader, OpsWatcher, ops_subscriptions
from sfpipe_devstack.supervisor import Devstack

log = logging.getLogger(__name__)

DEFAULT_SCALE = 200_000
"""Records of the demo's org: the pipeline after set-up takes well under 90 s on 2 cores (ADR 0100)."""

DEFAULT_ACTIVITY_RATE = 2.0
"""Changes per second the simulator applies while the demo runs, when the CDC path is up."""


@dataclass
class DemoOptions:
    """What ``sfpipe demo`` was asked for."""

    scale: int | None = None
    """Records of the generated org (None: DEFAULT_SCALE, or the running simulator's)."""
    seed: int | None = None
    """Seed of the generated org (None: the configured one, or the running simulator's)."""
    keep_running: bool = True
    """Leave the devstack running after the summary (the dashboard stays up)."""
    activity_rate: float = DEFAULT_ACTIVITY_RATE
    """Live changes per second while the demo runs (0 = none); only when the CDC path runs."""
    timeout: float = 900.0
    """Longest the pipeline may take after the run is posted."""
    stall_seconds: float = 120.0
    """Longest a stage may wait for the event that starts it."""
    poll_seconds: float = 0.5
    """How often the ops tables and the extractor's status are read."""


@dataclass
class DemoResult:
    """What happened, for the summary, the exit code and ``--json``."""

    tracker: RunTracker
    setup_seconds: float = 0.0
    pipeline_seconds: float = 0.0
    summary: summaries.Summary | None = None
    dashboard_url: str | None = None
    next_steps: str = ""
    log_hint: str = ""
    org: dict[str, Any] = field(default_factory=dict)
    started_stack: bool = False
    cdc_running: bool = False
    home: str = ""

    @property
    def ok(self) -> bool:
        """Whether every stage succeeded."""
        return self.tracker.ok

    def as_json(self) -> dict[str, Any]:
        """The whole result as JSON-ready data."""
        return {
            "run_id": self.tracker.run_id,
            "ok": self.ok,
            "setup_seconds": round(self.setup_seconds, 3),
            "pipeline_seconds": round(self.pipeline_seconds, 3),
            "stages": self.tracker.as_json(),
            "failures": [{"stage": s, "reason": r} for s, r in self.tracker.failures()],
            "summary": self.summary.as_json() if self.summary else None,
            "dashboard_url": self.dashboard_url,
            "org": self.org,
            "started_stack": self.started_stack,
            "cdc_running": self.cdc_running,
            "home": self.home,
        }


@dataclass
class _Watch:
    """What following one run needs."""

    tracker: RunTracker
    watcher: OpsWatcher
    reader: OpsReader
    extractor: ExtractorClient
    subscriber: Any
    settings: Settings
    dead_before: dict[str, int]
    posted_at: datetime
    activity: Any = None
    """The simulator's admin client when live activity is to start after the extract."""
    activity_started: bool = False


class Demo:
    """One ``sfpipe demo``: bring the stack up, post a run, follow it, summarise."""

    def __init__(self, settings: Settings, options: DemoOptions, display: DemoDisplay | None = None) -> None:
        if settings.mode is not Mode.LOCAL:
            msg = "sfpipe demo runs on the local devstack; unset SFPIPE_MODE (it is gcp here)"
            raise BadInputError(msg, field="SFPIPE_MODE")
        self.settings = settings
        self.options = options
        self.display = display or DemoDisplay()
        self.stack = Devstack(settings)
        self.activity_started = False

    # ---- set-up -------------------------------------------------------------------------

    def _something_runs(self) -> bool:
        return any(
            (record := self.stack.pids.read(name)) is not None and record.is_running()
            for name in self.stack.pids.names()
        )

    def _prepare_fresh(self) -> None:
        """Environment of the processes ``up`` will start, and an empty warehouse."""
        s = self.settings
        scale = self.options.scale or DEFAULT_SCALE
        seed = self.options.seed if self.options.seed is not None else s.simulator_seed
        os.environ["SFPIPE_SIMULATOR_SCALE"] = str(scale)
        os.environ["SFPIPE_SIMULATOR_SEED"] = str(seed)
        if s.simulator_tls:
            # The cdc-publisher starts at the same time as the simulator, which writes its CA only
            # after loading the org; created first (the simulator reuses it), the CA is there for
            # the publisher's first connection instead of after its retries.
            from sfpipe_simulator.tls import ensure_certificate

            ensure_certificate((s.simulator_data_dir or self.stack.home / "simulator") / "tls", [s.host])
        removed = []
        for path in (s.warehouse_file, Path(f"{s.warehouse_file}.wal")):
            if path.exists():
                path.unlink()
                removed.append(path.name)
        if removed:
            self.display.note(
                f"starting from an empty local warehouse (removed {', '.join(removed)} of an earlier session: "
                "the simulator generates its org afresh on every start)"
            )

    def _client_settings(self) -> Settings:
        """This process's settings pointed at the running stack, as `eval "$(sfpipe env)"` would."""
        os.environ.update(self.stack.client_env())
        reset_settings()
        return get_settings()

    def _admin(self, settings: Settings) -> Any:
        from sfpipe_simulator.client import AdminClient

        data_dir = settings.simulator_data_dir or Path(self.stack.home) / "simulator"
        ca = data_dir / "tls" / "ca.pem"
        scheme = "https" if settings.simulator_tls else "http"
        return AdminClient(
            f"{scheme}://{settings.host}:{settings.simulator_port}",
            settings.simulator_admin_token.get_secret_value(),
            verify=str(ca) if ca.exists() else False,
            timeout=60,
        )

    def _check_org(self, org: dict[str, Any], started: bool) -> None:
        want_scale = self.options.scale or (DEFAULT_SCALE if started else None)
        want_seed = self.options.seed
        mismatch = (want_scale is not None and org.get("scale") != want_scale) or (
            want_seed is not None and org.get("seed") != want_seed
        )
        if mismatch:
            msg = (
                f"the running devstack's simulator serves the org of seed {org.get('seed')} at scale "
                f"{org.get('scale'):,}; stop it with `make down` (or `sfpipe down`) to generate seed "
                f"{want_seed if want_seed is not None else org.get('seed')} at scale "
                f"{want_scale or org.get('scale'):,}, or run the demo without --scale/--seed to use it"
            )
            raise BadInputError(msg, field="--scale")

    def _reconcile_by_hand(self, summary: summaries.Summary) -> None:
        """``sfpipe reconcile`` once, when the reconciler exists as a command but the devstack does not run it."""
        if "reconcile" not in {ep.name for ep in entry_points(group="sfpipe.commands")}:
            summary.reconciliation_note = "not run (`sfpipe reconcile` is not part of this build)"
            return
        started = time.monotonic()
        with self.display.starting("reconciling the raw layer with the org (sfpipe reconcile)…"):
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "sfpipe", "reconcile", "--json"],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                    env={**os.environ, "SFPIPE_LOG_FORMAT": "json"},
                )
            except subprocess.TimeoutExpired:
                summary.reconciliation_note = "`sfpipe reconcile` did not finish within 600 s"
                return
        try:
            body = json.loads(done.stdout)
        except ValueError:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            summary.reconciliation_note = f"`sfpipe reconcile` exited {done.returncode}: {last}"
            return
        summary.reconciliation = [{"object": name, **o} for name, o in sorted((body.get("objects") or {}).items())]
        summary.reconciliation_seconds = time.monotonic() - started

    def _stages(self) -> list[str]:
        """The run's stages: the reconciler's too when the devstack runs it (it reacts to the same load)."""
        reconciler = self.stack.pids.read(SERVICE_OF[RECONCILE])
        return [*STAGES, RECONCILE] if reconciler is not None and reconciler.is_running() else list(STAGES)

    @staticmethod
    def _push_subscriptions() -> dict[str, list[str]]:
        """Per stage, the push subscriptions of the topology that deliver to its service (dead letters name them)."""
        topology = load_topology()
        return {
            stage: [sub.name for t in topology.topics for sub in t.subscriptions if sub.push == service]
            for stage, service in SERVICE_OF.items()
        }

    def _cdc_running(self, s: Settings) -> bool:
        publisher = emulators.http_ok(f"http://{s.host}:{s.cdc_publisher_port}/healthz")
        stream = emulators.http_ok(f"http://{s.host}:{s.cdc_stream_port}/healthz")
        return publisher and stream

    # ---- the run ------------------------------------------------------------------------

    def run(self) -> DemoResult:
        """Everything; raises only for a set-up problem (the run's own failures are in the result)."""
        began = time.monotonic()
        started_stack = not self._something_runs()
        simulator = self.stack.pids.read("simulator")
        if not started_stack and (simulator is None or not simulator.is_running()):
            msg = (
                f"the devstack in {self.stack.home} runs without its simulator; stop it with `make down` "
                "(or `sfpipe down`) and run the demo again"
            )
            raise BadInputError(msg, field="SFPIPE_HOME")
        if started_stack:
            self._prepare_fresh()
        what = (
            f"starting the devstack (the simulator generates {self.options.scale or DEFAULT_SCALE:,} records)…"
            if started_stack
            else "the devstack is running: checking it…"
        )
        with self.display.starting(what):
            report = self.stack.up()
        self.display.stack(report, str(self.stack.home))
        settings = self._client_settings()
        admin = self._admin(settings)
        status = admin.status()
        org = {
            "seed": status.get("seed"),
            "scale": status.get("scale"),
            "org_id": status.get("org_id"),
            "records": sum(int(v) for v in (status.get("counts") or {}).values()),
        }
        self._check_org(org, started_stack)
        cdc = self._cdc_running(settings)
        self.display.note(
            f"org {org['org_id']}: seed {org['seed']}, {org['records']:,} records in "
            f"{len(status.get('counts') or {})} objects; CDC path {'running' if cdc else 'not running'}"
        )
        from sfpipe.adapters.factory import subscriber_client, warehouse

        subscriber = subscriber_client(settings)
        topology = load_topology()
        watcher = OpsWatcher(subscriber, settings.project, ops_subscriptions(topology))
        watcher.start()
        wh = warehouse(settings)
        reader = OpsReader(wh)
        dead_before = self._dead_letters(subscriber, settings, topology)
        token = settings.extractor_token.get_secret_value() if settings.extractor_token else None
        extractor = ExtractorClient(f"http://{settings.host}:{settings.extractor_port}", token)
        result = DemoResult(RunTracker(""), org=org, started_stack=started_stack, home=str(self.stack.home))
        try:
            setup_seconds = time.monotonic() - began
            posted_at = datetime.now(UTC)
            posted = time.monotonic()
            answer = extractor.start_run()
            tracker = RunTracker(str(answer["run_id"]), self._stages())
            tracker["extract"].started_at = posted_at
            tracker["extract"].status = "running"
            result.tracker = tracker
            result.setup_seconds = setup_seconds
            result.cdc_running = cdc
            activity = admin if cdc and self.options.activity_rate > 0 else None
            self.display.note(
                f"POST /runs → run {tracker.run_id}; the events take it from here"
                + (
                    f" (once the batch is loaded, live activity at {self.options.activity_rate:g} "
                    "changes/s flows in through CDC)"
                    if activity is not None
                    else ""
                )
            )
            watch = _Watch(tracker, watcher, reader, extractor, subscriber, settings, dead_before, posted_at, activity)
            cdc_stats = self._follow(watch, cdc)
            result.pipeline_seconds = time.monotonic() - posted
            tracker.ops_rows(reader.run_rows(tracker.run_id))
            reconciled = tracker[RECONCILE].detail if RECONCILE in tracker.stages else None
            result.summary = summaries.gather(
                wh,
                tracker.run_id,
                since=posted_at,
                load_detail=tracker["load"].detail,
                cdc=cdc_stats,
                reconcile_detail=reconciled,
            )
            if not cdc:
                result.summary.cdc_note = (
                    "not running (the devstack runs the cdc-publisher and the CDC stream when both are built; "
                    "`sfpipe status` lists them)"
                )
            elif not cdc_stats:
                result.summary.cdc_note = "running, but no change was applied while the demo ran"
            if result.summary.reconciliation is None and not result.summary.reconciliation_note:
                self._reconcile_by_hand(result.summary)
        finally:
            watcher.close()
            wh.close()
        result.log_hint = self._log_hint(result.tracker)
        dashboard = self.stack.pids.read("dashboard")
        if dashboard is not None and dashboard.is_running():
            result.dashboard_url = f"http://{settings.host}:{settings.dashboard_port}/"
        if self.options.keep_running:
            live = (
                f" with the simulator's live activity ({self.options.activity_rate:g} changes/s through CDC)"
                if self.activity_started
                else ""
            )
            result.next_steps = (
                f"The devstack keeps running{live} so the dashboard stays up (`sfpipe status` shows it; logs in "
                f"{self.stack.home}/logs). Stop everything with `make down` (or `sfpipe down`)."
            )
        else:
            with self.display.starting("stopping the devstack…"):
                down = self.stack.down()
            result.dashboard_url = None
            result.next_steps = f"The devstack was stopped (--down) in {down.seconds:.1f} s."
            if down.leftovers:
                result.next_steps += f" Still running: {'; '.join(down.leftovers)}"
        return result

    def _follow(self, w: _Watch, cdc: bool) -> dict[str, Any] | None:
        """Update the tracker until every stage has an outcome; the CDC figures seen meanwhile."""
        tracker, reader = w.tracker, w.reader
        o = self.options
        start = time.monotonic()
        seen_done: dict[str, float] = {}
        last: dict[str, float] = {}
        cdc_stats: dict[str, Any] | None = None
        last_answer = start

        def due(key: str, every: float) -> bool:
            now = time.monotonic()
            if now - last.get(key, 0.0) >= every:
                last[key] = now
                return True
            return False

        with self.display.following(tracker):
            while not tracker.finished:
                for event in w.watcher.drain(timeout=0.2):
                    try:
                        tracker.event(event)
                    except BadInputError as exc:
                        log.warning("ignored an ops event: %s", exc)
                now = time.monotonic()
                if not tracker["extract"].final and due("extract", o.poll_seconds):
                    answer = w.extractor.status(tracker.run_id)
                    if answer is not None:
                        last_answer = now
                        tracker.extractor_status(answer)
                    elif now - last_answer > o.stall_seconds:
                        tracker.fail("extract", f"the extractor has not answered GET /runs/{tracker.run_id} "
                                                f"for {o.stall_seconds:.0f} s")  # fmt: skip
                if due("ops", o.poll_seconds * 2):
                    tracker.ops_rows(reader.run_rows(tracker.run_id))
                    if tracker["load"].status in ("running", "retrying"):
                        tracker.loads(reader.loaded_objects(tracker.run_id), tracker.objects_extracted)
                if w.activity is not None and tracker["load"].status == "succeeded" and not w.activity_started:
                    # only once the batch is in the raw layer: a change that reaches CDC first
                    # leaves a partial row that the older batch row does not fill (see the ADR)
                    w.activity.start_activity(self.options.activity_rate)
                    w.activity_started = self.activity_started = True
                if cdc and due("cdc", 2.0):
                    cdc_stats = reader.cdc_lag(w.posted_at)
                if self._may_dead_letter(tracker, seen_done, now) and due("dead", 5.0):
                    now_dead = self._dead_letters(w.subscriber, w.settings, load_topology())
                    fresh = {k: v - w.dead_before.get(k, 0) for k, v in now_dead.items()}
                    for name in tracker.dead_lettered(fresh, self._push_subscriptions()):
                        if (error := self._last_error(SERVICE_OF[name])) and error not in (tracker[name].reason or ""):
                            tracker[name].reason = f"{tracker[name].reason}; its log says: {error}"
                if due("procs", 3.0):
                    self._check_processes(tracker)
                self._check_stalls(tracker, seen_done, now)
                if now - start > o.timeout and (current := tracker.current()):
                    tracker.fail(current, f"the pipeline did not finish within {o.timeout:.0f} s")
                self.display.update(tracker, _cdc_text(cdc_stats) if cdc else None)
            tracker.ops_rows(reader.run_rows(tracker.run_id))
            self.display.update(tracker, _cdc_text(cdc_stats) if cdc else None, last=True)
        return reader.cdc_lag(w.posted_at) if cdc else None

    @staticmethod
    def _may_dead_letter(tracker: RunTracker, seen_done: dict[str, float], now: float) -> bool:
        """Whether a stage may be having its event refused: retrying, or still waiting a while after its input."""
        for name in tracker.pending():
            if name not in AFTER:
                continue
            if tracker[name].status == "retrying":
                return True
            if tracker[name].status == "waiting" and now - seen_done.get(AFTER[name], now) > 3.0:
                return True
        return False

    def _last_error(self, service: str) -> str | None:
        """The message of the last ERROR line in a service's log (JSON lines), for a failure's reason."""
        path = self.stack.logs / f"{service}.log"
        try:
            with path.open("rb") as handle:
                handle.seek(max(path.stat().st_size - 65_536, 0))
                lines = handle.read().decode(errors="replace").splitlines()
        except OSError:
            return None
        for line in reversed(lines):
            if '"ERROR"' not in line and '"CRITICAL"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("severity") in ("ERROR", "CRITICAL") and record.get("message"):
                return str(record["message"]).splitlines()[0][:500]
        return None

    def _check_stalls(self, tracker: RunTracker, seen_done: dict[str, float], now: float) -> None:
        """A stage whose input event never comes fails after ``stall_seconds`` instead of hanging the demo."""
        for name, stage in tracker.stages.items():
            if stage.done and name not in seen_done:
                seen_done[name] = now
        for name in tracker.pending():
            before = AFTER.get(name)
            if before is None or tracker[name].status != "waiting":
                continue
            if now - seen_done.get(before, now) > self.options.stall_seconds:
                service = SERVICE_OF[name]
                tracker.fail(
                    name,
                    f"{service} got no event within {self.options.stall_seconds:.0f} s after {before} finished "
                    f"(see {self.stack.logs / (service + '.log')} and `sfpipe status` for dead letters)",
                )

    def _check_processes(self, tracker: RunTracker) -> None:
        for name in tracker.pending():
            service = SERVICE_OF[name]
            record = self.stack.pids.read(service)
            if record is not None and not record.is_running():
                tracker.fail(name, f"the {service} process is no longer running; see {record.log}")

    def _dead_letters(self, subscriber: Any, settings: Settings, topology: Any) -> dict[str, int]:
        from sfpipe_devstack.backlog import count_backlog, dead_letter_subscriptions

        total: dict[str, int] = {}
        for name in dead_letter_subscriptions(topology):
            backlog = count_backlog(subscriber, settings.project, name, limit=2000, timeout=5.0)
            for source, count in backlog.by_source.items():
                total[source] = total.get(source, 0) + count
        return total

    def _log_hint(self, tracker: RunTracker) -> str:
        failed = [SERVICE_OF[name] for name, _ in tracker.failures()]
        if not failed:
            return ""
        logs = ", ".join(str(self.stack.logs / f"{service}.log") for service in failed)
        return f"logs: {logs}"


def _cdc_text(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "waiting for the first change to be applied"
    return (
        f"{int(stats['changes']):,} changes applied · lag p50 {float(stats['p50_ms']) / 1000:.2f} s, "
        f"p99 {float(stats['p99_ms']) / 1000:.2f} s"
    )
