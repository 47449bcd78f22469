"""`sfpipe extract`: the same run as ``POST /runs``, with a progress bar per object."""

from __future__ import annotations

import threading
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from sfpipe.config import get_settings
from sfpipe.errors import SfpipeError
from sfpipe_extractor.engine import RunReport, parse_objects


class RichProgress:
    """One rich progress bar per object (thread-safe: rich locks its own state)."""

    def __init__(self, progress: Progress, objects: list[str]) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        for name in objects:
            self.tasks[name] = progress.add_task(name, total=None, api="", start=False)

    def started(self, sobject: str, total: int | None, api: str) -> None:
        """Size the bar from COUNT()."""
        task = self.tasks[sobject]
        self.progress.start_task(task)
        self.progress.update(task, total=max(total or 0, 0), api=api)

    def advanced(self, sobject: str, rows: int) -> None:
        """Move the bar."""
        task = self.tasks[sobject]
        self.progress.update(task, advance=rows)
        with self._lock:
            current = self.progress.tasks[task]
            if current.total is not None and current.completed > current.total:
                self.progress.update(task, total=current.completed)

    def finished(self, sobject: str, status: str, detail: str) -> None:
        """Fill or mark the bar."""
        task = self.tasks[sobject]
        current = self.progress.tasks[task]
        if status == "done":
            self.progress.update(task, total=current.completed, api=f"{current.fields.get('api', '')} ✓")
        else:
            self.progress.update(task, api="[red]failed[/red]")


def _table(report: RunReport) -> Table:
    table = Table("object", "status", "rows", "api", "seconds", "error", title=f"run {report.run_id}")
    for name, result in report.objects.items():
        status = "[green]done[/green]" if result.status == "done" else "[red]failed[/red]"
        table.add_row(name, status, f"{result.rows:,}", result.api, f"{result.seconds:.1f}", result.error or "")
    return table


@click.command("extract")
@click.option(
    "--objects",
    "-o",
    "objects",
    multiple=True,
    help="Objects to extract (repeat or comma-separate); default SFPIPE_EXTRACT_OBJECTS.",
)
@click.option("--full", is_flag=True, help="Ignore the watermarks and extract every row.")
@click.option("--run-id", default=None, help="Re-run this run id (same windows, same files, one manifest).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def extract(objects: tuple[str, ...], full: bool, run_id: str | None, quiet: bool) -> None:
    """Extract Salesforce objects into the Parquet lake and write the run's manifest."""
    from sfpipe_extractor.app import build_extractor

    settings = get_settings()
    names = parse_objects(list(objects), settings.extract_objects)
    extractor = build_extractor(settings)
    mode: Any = "full" if full else "incremental"
    console = Console(stderr=True)
    if quiet:
        report = extractor.run(names, mode=mode, run_id=run_id)
    else:
        columns = (
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[api]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            report = extractor.run(names, mode=mode, run_id=run_id, progress=RichProgress(progress, names))
    console.print(_table(report))
    if report.manifest_uri:
        click.echo(report.manifest_uri)
    if report.status == "failed":
        raise SfpipeError(f"run {report.run_id} failed: {report.error}")
    if report.failed:
        raise SfpipeError(f"run {report.run_id}: {len(report.failed)} object(s) failed: {', '.join(report.failed)}")
