"""`sfpipe reconcile`: compare the raw layer with Salesforce (or the simulator's truth), and repair.

    sfpipe reconcile                         # every object: recent pass, or a full one when due
    sfpipe reconcile --full -o Account       # every record of Account
    sfpipe reconcile --repair --wait 300     # repair, wait for the loader, verify
    sfpipe reconcile --formula               # refresh formula fields as well
    sfpipe reconcile --against truth         # the raw layer against the simulator's truth export

Exit code 0 when nothing differs (or every repair was verified), 1 when differences remain,
and the usual one-line error for a failure.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sfpipe.config import Settings, get_settings
from sfpipe.errors import SfpipeError
from sfpipe_reconciler.run import Outcome, ReconcileRun, Verification
from sfpipe_reconciler.truth import TruthDiff


def _n(value: int) -> str:
    return f"{value:,}" if value else "[dim]0[/dim]"


def report_table(outcome: Outcome) -> Table:
    """Per object: the pass, both sides' rows, buckets, what differs, and what it cost."""
    checks = outcome.checks
    table = Table(
        "object", "pass", "Salesforce", "raw", "buckets", "differ", "missing", "extra", "stale", "calls", "s",
        "status", title=f"reconciliation {checks.run_id}: {checks.api_calls} API calls, {checks.seconds:.1f} s",
    )  # fmt: skip
    repaired = outcome.repair.objects if outcome.repair else {}
    for name, c in checks.objects.items():
        if c.error:
            status = f"[red]failed[/red] {c.error[:60]}"
        elif c.clean:
            status = "[green]clean[/green]"
        elif name in repaired and not repaired[name].error:
            status = f"[yellow]repairing[/yellow] {repaired[name].repaired:,}"
        else:
            status = "[red]differs[/red]"
        table.add_row(name, c.mode, f"{c.source_rows:,}", f"{c.warehouse_rows:,}", f"{c.buckets:,}",
                      _n(c.buckets_differing), _n(len(c.missing)), _n(len(c.extra)), _n(len(c.stale)),
                      f"{c.api_calls:.1f}", f"{c.seconds:.2f}", status)  # fmt: skip
    return table


def truth_table(diffs: dict[str, TruthDiff]) -> Table:
    """Per object: the org's rows, the raw table's, and what differs."""
    table = Table("object", "org", "raw", "missing", "extra", "different", "columns", "status",
                  title="raw layer against the simulator's truth export")  # fmt: skip
    for name, d in diffs.items():
        columns = ", ".join(f"{c} ({n})" for c, n in list(d.columns.items())[:4])
        status = "[green]equal[/green]" if d.clean else (f"[red]{d.error}[/red]" if d.error else "[red]differs[/red]")
        table.add_row(name, f"{d.org_rows:,}", f"{d.raw_rows:,}", _n(len(d.missing)), _n(len(d.extra)),
                      _n(len(d.different)), columns, status)  # fmt: skip
    return table


def _wait_for_load(engine: ReconcileRun, run_id: str, seconds: float) -> bool:
    """Whether the loader loaded a run within ``seconds`` (its ``load`` stage in ``sfpipe_ops.runs``)."""
    from sfpipe import ops

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = engine.warehouse.scalar(
            f"SELECT status FROM {ops.RUNS.sql} WHERE run_id = {ops.sql_literal(run_id)} AND stage = 'load' "
            f"ORDER BY updated_at DESC LIMIT 1"
        )
        if status in ("succeeded", "failed", "partial"):
            return True
        time.sleep(1.0)
    return False


def build(settings: Settings) -> ReconcileRun:
    """The engine on this mode's adapters (the CLI's own warehouse connection)."""
    from sfpipe.adapters import factory
    from sfpipe.salesforce.client import SalesforceClient

    return ReconcileRun(SalesforceClient.from_settings(settings), factory.warehouse(settings),
                        factory.object_store(settings), settings, factory.event_publisher(settings),
                        scratch=settings.home / "tmp")  # fmt: skip


@click.command("reconcile")
@click.option("--objects", "-o", "objects", multiple=True,
              help="Objects to compare (repeat or comma-separate); default SFPIPE_RECONCILE_OBJECTS.")  # fmt: skip
@click.option("--against", type=click.Choice(["source", "truth"]), default="source", show_default=True,
              help="Salesforce itself, or the simulator's truth export (every field of every record).")  # fmt: skip
@click.option("--repair", is_flag=True, help="Write a repair run for what differs (the loader loads it).")
@click.option("--full", is_flag=True, help="Compare every record, not only what changed since the last clean pass.")
@click.option("--formula/--no-formula", default=None,
              help="Refresh formula fields (default: when SFPIPE_RECONCILE_FORMULA_SECONDS says so).")  # fmt: skip
@click.option("--wait", "wait", type=float, default=0.0,
              help="With --repair: wait up to this many seconds for the loader, then verify the repair.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
def reconcile(objects: tuple[str, ...], against: str, repair: bool, full: bool, formula: bool | None, wait: float,
              as_json: bool) -> None:  # fmt: skip
    """Prove the raw layer equals Salesforce: missing, extra and stale records per object, and repair them."""
    settings = get_settings()
    console = Console()
    if against == "truth":
        from sfpipe.adapters import factory
        from sfpipe_reconciler.truth import admin_client, against_truth

        names = [n for o in objects for n in o.split(",") if n.strip()] or None
        diffs = against_truth(factory.warehouse(settings), admin_client(settings), names, settings.home / "tmp")
        if as_json:
            click.echo(json.dumps({n: d.summary() for n, d in diffs.items()}, indent=2))
        else:
            console.print(truth_table(diffs))
        unequal = [n for n, d in diffs.items() if not d.clean]
        if unequal:
            raise click.exceptions.Exit(1)
        return
    engine = build(settings)
    outcome = engine.run(list(objects) or None, mode="full" if full else "auto", repair=repair, formula=formula)
    verification: Verification | None = None
    if outcome.repair and outcome.repair.manifest_uri and wait > 0:
        if _wait_for_load(engine, outcome.repair.run_id, wait):
            verification = engine.verify(outcome.repair.run_id)
        else:
            console.print(f"[yellow]the loader did not load {outcome.repair.run_id} within {wait:.0f} s[/yellow]")
    if as_json:
        body: dict[str, Any] = outcome.summary()
        body["verified"] = None if verification is None else verification.objects
        click.echo(json.dumps(body, indent=2, default=str))
    else:
        console.print(report_table(outcome))
        if outcome.repair and outcome.repair.manifest_uri:
            console.print(f"repair run {outcome.repair.run_id}: {outcome.repair.manifest_uri}")
        if outcome.formula and outcome.formula.manifest_uri:
            console.print(f"formula run {outcome.formula.run_id}: {outcome.formula.manifest_uri}")
        if verification is not None:
            state = "[green]closed[/green]" if not verification.unclosed else f"[red]{verification.unclosed}[/red]"
            console.print(f"repair verified after its load: {state}")
    failed = outcome.checks.failed
    if failed and len(failed) == len(outcome.checks.objects):
        raise SfpipeError(f"reconciliation {outcome.checks.run_id} failed: {next(iter(failed.values()))}")
    remaining = outcome.checks.differences and (verification is None or verification.unclosed)
    if remaining or failed:
        raise click.exceptions.Exit(1)
