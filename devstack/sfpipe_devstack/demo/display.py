"""The demo's terminal output: set-up, a live stage table, the summary.

On a terminal the stage table redraws in place (rich ``Live``); anywhere else (a pipe, a CI
log, a test) each change of a stage is printed once as a line, so the output reads the same
in a log file as it looked on the screen.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sfpipe_devstack.demo.summary import headline, money
from sfpipe_devstack.demo.tracker import RunTracker, StageState

if TYPE_CHECKING:
    from sfpipe_devstack.demo.run import DemoResult
    from sfpipe_devstack.supervisor import UpReport

MARK = {
    "waiting": ("·", "dim"),
    "running": ("●", "cyan"),
    "retrying": ("↻", "yellow"),
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("–", "dim"),
}

UNIT = {"extract": "rows", "load": "rows", "transform": "rows", "quality": "checks", "reconcile": "records"}


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _rows(stage: StageState) -> str:
    return "" if stage.rows is None else f"{stage.rows:,} {UNIT[stage.name]}"


class DemoDisplay:
    """Everything the demo shows, on one rich console."""

    def __init__(self, console: Console | None = None) -> None:
        wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120
        self.console = console or Console(highlight=False, width=wide)
        self._live: Live | None = None
        self._printed: dict[str, tuple[str, str]] = {}
        self._started = time.monotonic()

    @property
    def interactive(self) -> bool:
        """Whether the stage table redraws in place."""
        return self.console.is_terminal and not self.console.is_dumb_terminal

    # ---- set-up -------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """A line of context (what the demo is about to do, or did)."""
        self.console.print(text)

    @contextmanager
    def starting(self, what: str) -> Iterator[None]:
        """A spinner on a terminal, one line elsewhere."""
        if self.interactive:
            with self.console.status(what):
                yield
        else:
            self.console.print(what)
            yield

    def stack(self, report: UpReport, home: str) -> None:
        """What ``sfpipe up`` did, in one compact table."""
        started = [p for p in report.processes if p.state == "started"]
        kept = [p for p in report.processes if p.state == "running"]
        parts = []
        if started:
            parts.append(f"started {len(started)} processes")
        if kept:
            parts.append(f"{len(kept)} already running")
        self.console.print(
            f"[green]devstack up[/] in {report.seconds:.1f} s ({', '.join(parts)}; state in {home}): "
            + ", ".join(p.name for p in report.processes)
        )
        for note in report.notes:
            self.console.print(f"[yellow]note:[/] {note}")

    # ---- the live run -------------------------------------------------------------------

    def table(self, tracker: RunTracker, cdc: str | None, elapsed: float) -> Table:
        """The stage table as it stands."""
        table = Table(
            "stage",
            "status",
            "took",
            "rows",
            "progress",
            title=f"run {tracker.run_id} · {elapsed:.0f} s",
            title_justify="left",
        )
        for name in tracker.order:
            stage = tracker[name]
            mark, style = MARK[stage.status]
            note = stage.progress
            if stage.status in ("failed", "retrying") and stage.reason:
                note = f"{note} — {stage.reason}" if note else stage.reason
            table.add_row(
                name,
                Text(f"{mark} {stage.status}", style=style),
                _seconds(stage.seconds) if stage.status != "waiting" else "",
                _rows(stage),
                Text(note[:160], overflow="fold"),
            )
        if cdc:
            table.add_row("cdc", Text("● live", style="magenta"), "", "", cdc)
        return table

    @contextmanager
    def following(self, tracker: RunTracker) -> Iterator[None]:
        """The live table for the length of the run."""
        self._started = time.monotonic()
        if self.interactive:
            with Live(self.table(tracker, None, 0.0), console=self.console, refresh_per_second=4) as live:
                self._live = live
                try:
                    yield
                finally:
                    self._live = None
        else:
            yield

    def update(self, tracker: RunTracker, cdc: str | None = None, *, last: bool = False) -> None:
        """Redraw (terminal) or print the stages whose status changed (anything else).

        A finished stage's line waits for its row in ``sfpipe_ops.runs`` (its rows and times),
        which the event that ended it may have overtaken; the last update prints what is left.
        """
        elapsed = time.monotonic() - self._started
        if self._live is not None:
            self._live.update(self.table(tracker, cdc, elapsed))
            return
        for name in tracker.order:
            stage = tracker[name]
            key = (stage.status, stage.progress if stage.status == "retrying" else "")
            if stage.status == "waiting" or self._printed.get(name) == key:
                continue
            if stage.status == "succeeded" and not (stage.recorded or name == "extract" or last):
                continue
            self._printed[name] = key
            line = f"[{elapsed:6.1f} s] {name:<9} {stage.status}"
            if stage.done and stage.seconds is not None:
                line += f" in {stage.seconds:.1f} s"
            if stage.rows is not None and stage.done:
                line += f", {_rows(stage)}"
            if stage.reason and stage.status in ("failed", "retrying", "skipped"):
                line += f": {stage.reason}"
            self.console.print(line, soft_wrap=True)

    # ---- the summary --------------------------------------------------------------------

    def summary(self, result: DemoResult) -> None:
        """Stages, quality, sales headline, CDC, reconciliation, the dashboard and how to stop."""
        c = self.console
        tracker = result.tracker
        c.print()
        verdict = "[green]succeeded[/]" if result.ok else "[red]FAILED[/]"
        c.print(
            f"[bold]Pipeline run {tracker.run_id}[/] {verdict} in {result.pipeline_seconds:.1f} s "
            f"({' → '.join(n for n in tracker.order if n != 'reconcile')}"
            f"{', reconcile after the load' if 'reconcile' in tracker.order else ''}, driven by events; "
            f"set-up took {result.setup_seconds:.1f} s)"
        )
        c.print(self._stage_table(result))
        s = result.summary
        if s is None:
            return
        self._quality(s)
        if s.raw_rows:
            c.print(f"[bold]Raw layer[/]: {s.raw_rows:,} rows in {s.raw_tables} tables (sfpipe_raw)")
        if s.snapshot:
            as_of = s.snapshot.get("as_of_date")
            shown = " · ".join(f"{label} {value}" for label, value in headline(s.snapshot))
            c.print(f"[bold]Sales snapshot[/] (sfpipe_marts.salesforce__sales_snapshot, as of {as_of}): {shown}")
        elif s.snapshot_note:
            c.print(f"[bold]Sales snapshot[/]: {s.snapshot_note}")
        if s.cdc:
            c.print(
                f"[bold]CDC[/]: {int(s.cdc['changes']):,} changes applied while the demo ran · lag "
                f"p50 {float(s.cdc['p50_ms']) / 1000:.2f} s, p99 {float(s.cdc['p99_ms']) / 1000:.2f} s "
                "(Salesforce commit → queryable in sfpipe_raw)"
            )
        elif s.cdc_note:
            c.print(f"[bold]CDC[/]: {s.cdc_note}")
        self._reconciliation(s)
        for stage, reason in tracker.failures():
            c.print(f"[red]✗ {stage} failed:[/] {reason}", soft_wrap=True)
        if result.log_hint:
            c.print(result.log_hint)
        if result.dashboard_url:
            c.print(f"[bold]Dashboard[/]: {result.dashboard_url}")
        c.print(result.next_steps)

    def _stage_table(self, result: DemoResult) -> Table:
        tracker = result.tracker
        origin: datetime | None = tracker["extract"].started_at
        table = Table("stage", "status", "started", "took", "rows", "detail")
        for name in tracker.order:
            stage = tracker[name]
            mark, style = MARK[stage.status]
            offset = ""
            if origin is not None and stage.started_at is not None and stage.status != "skipped":
                offset = f"+{(stage.started_at - origin).total_seconds():.1f} s"
            table.add_row(
                name,
                Text(f"{mark} {stage.status}", style=style),
                offset,
                _seconds(stage.seconds) if stage.done and stage.status != "skipped" else "",
                _rows(stage),
                _stage_detail(stage),
            )
        return table

    def _quality(self, s: Any) -> None:
        if not s.suites:
            return
        parts = []
        for suite in s.suites:
            total = suite.passed + suite.failed
            style = "green" if not suite.failed else "red"
            parts.append(f"[{style}]{suite.suite} {suite.passed}/{total}[/]")
        failed = sum(x.failed for x in s.suites)
        tail = "all expectations met" if not failed else f"{failed} checks failed"
        self.console.print(f"[bold]Quality[/]: {' · '.join(parts)} — {tail}")
        for row in s.failing[:8]:
            where = ".".join(x for x in (row.get("table_name"), row.get("column_name")) if x)
            self.console.print(
                f"  [red]✗[/] {row.get('severity')} {row.get('suite')}: "
                + str(row.get("check_name") or row.get("expectation"))
                + (f" on {where}" if where else "")
                + (f" (observed {row.get('observed_value')})" if row.get("observed_value") else ""),
                soft_wrap=True,
            )

    def _reconciliation(self, s: Any) -> None:
        if s.reconciliation:
            rows = s.reconciliation
            differing = [r for r in rows if (r.get("missing") or 0) + (r.get("extra") or 0) + (r.get("stale") or 0)]
            source = sum(int(r.get("source_rows") or 0) for r in rows)
            counted = f", {source:,} source records" if source else ""
            if s.reconciliation_seconds is not None:
                counted += f" (sfpipe reconcile, {s.reconciliation_seconds:.1f} s)"
            if not differing:
                self.console.print(
                    f"[bold]Reconciliation[/]: [green]no difference[/] — {len(rows)} objects compared{counted}"
                )
            else:
                names = ", ".join(
                    f"{r['object']} (missing {r.get('missing') or 0}, extra {r.get('extra') or 0}, "
                    f"stale {r.get('stale') or 0})"
                    for r in differing
                )
                self.console.print(f"[bold]Reconciliation[/]: [red]{len(differing)} objects differ[/]: {names}")
        elif s.reconciliation_note:
            self.console.print(f"[bold]Reconciliation[/]: {s.reconciliation_note}")


def _stage_detail(stage: StageState) -> str:
    d = stage.detail
    if stage.status == "skipped":
        return stage.reason or ""
    if stage.name == "extract":
        return stage.progress
    if stage.name == "load" and isinstance(d.get("objects"), dict):
        objs = d["objects"].values()
        ins = sum(int(o.get("inserted") or 0) for o in objs)
        upd = sum(int(o.get("updated") or 0) for o in objs)
        dele = sum(int(o.get("deleted") or 0) for o in objs)
        path = d.get("path") or "warehouse"
        return f"{len(d['objects'])} objects via {path}: {ins:,} inserted, {upd:,} updated, {dele:,} deleted"
    if stage.name == "transform" and d.get("actions") is not None:
        text = f"{d['actions']} Dataform actions"
        if d.get("failed"):
            text += f", failed: {', '.join(map(str, d['failed']))}"
        return text
    if stage.name == "reconcile" and d.get("differences") is not None:
        objects = d.get("objects") or {}
        text = f"{d['differences']:,} differences over {len(objects)} objects"
        if d.get("repair_run_id"):
            text += f", repair run {d['repair_run_id']}"
        return text
    if stage.name == "quality" and isinstance(d.get("suites"), list):
        return f"{len(d['suites'])} suites" + (f", Data Docs {d['docs_uri']}" if d.get("docs_uri") else "")
    return stage.progress


__all__ = ["DemoDisplay", "money"]
