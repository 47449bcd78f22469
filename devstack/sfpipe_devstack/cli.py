"""The devstack's commands: ``sfpipe up``, ``status``, ``down``, ``env`` and ``devstack …``.

They are plugged into the ``sfpipe`` root through the ``sfpipe.commands`` entry points.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sfpipe.config import get_settings
from sfpipe.topology import load_topology
from sfpipe_devstack.registry import SERVICES, ServiceSpec, service
from sfpipe_devstack.supervisor import Devstack, ProcessState

STATE_STYLE = {
    "started": "green",
    "running": "green",
    "unhealthy": "red",
    "stale": "red",
    "stopped": "yellow",
    "not built": "dim",
}


def _ports(state: ProcessState) -> str:
    return ", ".join(str(p) for p in state.ports.values())


def _uptime(started_at: str) -> str:
    if not started_at:
        return ""
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(started_at)).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _short_log(stack: Devstack, log: str) -> str:
    if not log:
        return ""
    path = Path(log)
    return str(path.relative_to(stack.home)) if path.is_relative_to(stack.home) else log


def _chosen_services(names: str | None) -> tuple[ServiceSpec, ...]:
    if names is None:
        return SERVICES
    wanted = [n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"]
    try:
        return tuple(service(n) for n in wanted)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--services") from None


@click.command("up")
@click.option(
    "--services",
    metavar="NAMES",
    help="Comma-separated services to start (default: every built one; `none`: emulators and warehouse only).",
)
def up(services: str | None) -> None:
    """Start the local devstack: emulators, warehouse server, every built service.

    Returns once every health check is green. Running it again starts only what is not
    running. Logs are under <home>/logs, pid files under <home>/run.
    """
    console = Console()
    stack = Devstack(get_settings(), _chosen_services(services))
    with console.status("starting the devstack…"):
        report = stack.up()
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    table = Table("process", "pid", "port", "state", "ready in", "log", title=f"sfpipe devstack ({stack.home})")
    for p in report.processes:
        style = STATE_STYLE.get(p.state, "")
        ready = f"{p.seconds:.1f}s" if p.seconds is not None else ""
        state = "already running" if p.state == "running" else p.state
        table.add_row(p.name, str(p.pid or ""), _ports(p), f"[{style}]{state}[/]", ready, _short_log(stack, p.log))
    console.print(table)
    console.print(f"topology: {report.topology}")
    console.print(f"buckets: {', '.join(report.buckets)}")
    console.print(f'[green]up in {report.seconds:.1f}s[/] — for a client shell: eval "$(sfpipe env)"')


@click.command("down")
def down() -> None:
    """Stop exactly the processes `sfpipe up` started (by pid, with their children)."""
    console = Console()
    report = Devstack(get_settings()).down()
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    if report.stopped:
        console.print(f"stopped: {', '.join(report.stopped)}")
    if report.killed:
        console.print(f"[yellow]killed after the grace period:[/] {', '.join(report.killed)}")
    if report.leftovers:
        console.print(f"[red]still running:[/] {'; '.join(report.leftovers)}")
        sys.exit(1)
    if not report.stopped and not report.killed:
        console.print("nothing was running")
    else:
        console.print(f"[green]down in {report.seconds:.1f}s[/]")


def _recent_runs(stack: Devstack, limit: int = 5) -> list[dict[str, Any]]:
    """The last runs of ``sfpipe_ops.runs`` with each stage's status (empty before the first run)."""
    from sfpipe import ops
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import FlightSession
    from sfpipe.errors import SfpipeError

    warehouse = DuckDBWarehouse(FlightSession(stack.warehouse_url, timeout=10))
    try:
        if not warehouse.table_exists(ops.RUNS):
            return []
        table = warehouse.query(
            f"SELECT run_id, stage, status, `rows` FROM {ops.RUNS.sql} WHERE run_id IN ("
            f"SELECT run_id FROM {ops.RUNS.sql} GROUP BY run_id ORDER BY MAX(updated_at) DESC LIMIT {limit}) "
            "ORDER BY run_id DESC, started_at"
        )
    except SfpipeError:
        return []
    finally:
        warehouse.close()
    runs: dict[str, dict[str, Any]] = {}
    for row in table.to_pylist():
        run = runs.setdefault(row["run_id"], {"run_id": row["run_id"], "stages": {}})
        run["stages"][row["stage"]] = {"status": row["status"], "rows": row["rows"]}
    return list(runs.values())


def _status_data(stack: Devstack, with_backlog: bool) -> dict[str, Any]:
    from sfpipe_devstack.backlog import Backlog

    processes = stack.process_states()
    data: dict[str, Any] = {
        "home": str(stack.home),
        "processes": [asdict(p) for p in processes],
        "subscriptions": [],
        "runs": [],
    }
    if next(p for p in processes if p.name == "warehouse").state == "running":
        data["runs"] = _recent_runs(stack)
    pubsub = next(p for p in processes if p.name == "pubsub")
    if with_backlog and pubsub.state == "running":
        from sfpipe.adapters.factory import subscriber_client
        from sfpipe_devstack.backlog import count_backlog, watched_subscriptions

        subscriber = subscriber_client(stack.settings)
        backlogs: list[Backlog] = [
            count_backlog(subscriber, stack.settings.project, name) for name in watched_subscriptions(load_topology())
        ]
        data["subscriptions"] = [asdict(b) for b in backlogs]
    return data


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@click.option("--no-backlog", is_flag=True, help="Skip counting the subscriptions' backlog.")
def status(as_json: bool, no_backlog: bool) -> None:
    """Show each process, its pid, port and health, and the subscriptions' backlog.

    The backlog of the ops, alerts and dead-letter subscriptions is counted without
    consuming it. Exit code: 0 when everything recorded is healthy, 1 when something is
    unhealthy or gone, 3 when the devstack is not running.
    """
    stack = Devstack(get_settings())
    data = _status_data(stack, not no_backlog)
    processes = [ProcessState(**p) for p in data["processes"]]
    recorded = [p for p in processes if p.state not in ("stopped", "not built")]
    code = 3 if not recorded else (0 if all(p.state == "running" for p in recorded) else 1)
    if as_json:
        click.echo(json.dumps({**data, "exit_code": code}, indent=2, default=str))
        sys.exit(code)
    console = Console()
    table = Table("process", "pid", "port", "health", "up for", "log", title=f"sfpipe devstack ({stack.home})")
    for p in processes:
        style = STATE_STYLE.get(p.state, "")
        health = {"running": "healthy"}.get(p.state, p.state)
        table.add_row(
            p.name,
            str(p.pid or ""),
            _ports(p),
            f"[{style}]{health}[/]",
            _uptime(p.started_at),
            _short_log(stack, p.log),
        )
    console.print(table)
    if data["subscriptions"]:
        subs = Table(
            "subscription", "backlog", "dead-lettered from", title="pull subscriptions (counted, not consumed)"
        )
        for b in data["subscriptions"]:
            count = "?" if b["error"] else (f"≥{b['messages']}" if b["capped"] else str(b["messages"]))
            style = "red" if b["error"] or (b["subscription"] == "dead-letter" and b["messages"]) else ""
            sources = ", ".join(f"{k}: {v}" for k, v in sorted(b["by_source"].items()))
            subs.add_row(b["subscription"], f"[{style}]{count}[/]" if style else count, sources or b["error"] or "")
        console.print(subs)
    if data["runs"]:
        runs = Table("run", "stages", title="recent runs (sfpipe_ops.runs)")
        for run in data["runs"]:
            stages = ", ".join(
                f"{name} {info['status']}" + (f" ({info['rows']:,} rows)" if info["rows"] is not None else "")
                for name, info in run["stages"].items()
            )
            runs.add_row(run["run_id"], stages)
        console.print(runs)
    if code == 3:
        console.print("the devstack is not running: `sfpipe up` starts it")
    sys.exit(code)


@click.command("env")
def env() -> None:
    """Print the `export` lines a client shell needs: eval "$(sfpipe env)"."""
    for line in Devstack(get_settings()).export_lines():
        click.echo(line)


@click.group("devstack")
def devstack() -> None:
    """The local devstack's own tools (set-up check, topology)."""


@devstack.command("check")
@click.option("--no-install", is_flag=True, help="Only report; do not install a missing emulator.")
def check(no_install: bool) -> None:
    """Check Java, Google's Pub/Sub emulator and fake-gcs-server; install the emulator if missing."""
    from sfpipe_devstack.check import run_checks

    console = Console()
    results = run_checks(install=not no_install)
    for r in results:
        mark = "[green]ok[/]  " if r.ok else "[red]MISSING[/]"
        console.print(f"{mark} {r.name}: {r.detail}", soft_wrap=True)
    if not all(r.ok for r in results):
        sys.exit(1)


def _topology_clients() -> tuple[Any, Any]:
    from sfpipe.adapters.factory import publisher_client, subscriber_client

    settings = get_settings()
    return publisher_client(settings, ordering=False), subscriber_client(settings)


@devstack.command("apply")
def apply() -> None:
    """Apply the topology file to the running Pub/Sub emulator (create, converge)."""
    from sfpipe_devstack.registry import push_endpoint
    from sfpipe_devstack.supervisor import TOPOLOGY_STATE
    from sfpipe_devstack.topology_apply import apply_topology

    settings = get_settings()
    stack = Devstack(settings)
    publisher, subscriber = _topology_clients()
    report = apply_topology(
        load_topology(),
        settings.project,
        lambda target: push_endpoint(settings, target),
        publisher=publisher,
        subscriber=subscriber,
        state_file=stack.pids.path / TOPOLOGY_STATE,
        retry_scale=settings.retry_scale,
    )
    click.echo(json.dumps(asdict(report), indent=2))


@devstack.command("diff")
def diff() -> None:
    """List where the running emulator disagrees with the topology file (exit 1 if anywhere)."""
    from sfpipe_devstack.registry import push_endpoint
    from sfpipe_devstack.topology_apply import live_differences

    settings = get_settings()
    publisher, subscriber = _topology_clients()
    problems = live_differences(
        load_topology(),
        settings.project,
        publisher=publisher,
        subscriber=subscriber,
        push_endpoint=lambda target: push_endpoint(settings, target),
        retry_scale=settings.retry_scale,
    )
    for problem in problems:
        click.echo(problem)
    if problems:
        sys.exit(1)
    click.echo("the live topology matches the file")
