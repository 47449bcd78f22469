"""The per-action report of a run, as a table on the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sfpipe_transform.result import TransformResult

_STYLE = {"succeeded": "green", "failed": "bold red", "skipped": "yellow"}


def render(result: TransformResult, console: Console | None = None, *, only_problems: bool = False) -> None:
    """Print one row per action (status, rows, seconds), then the run's verdict."""
    console = console or Console()
    title = f"transform {result.run_id} as of {result.as_of.isoformat()}"
    table = Table("action", "kind", "status", "rows", "seconds", "error", title=title, title_justify="left")
    for action in result.actions:
        if only_problems and action.status == "succeeded":
            continue
        table.add_row(
            action.name,
            action.kind,
            f"[{_STYLE[action.status]}]{action.status}[/]",
            "" if action.rows is None else f"{action.rows:,}",
            f"{action.seconds:.2f}",
            action.error or "",
        )
    console.print(table)
    counts = {s: sum(1 for a in result.actions if a.status == s) for s in ("succeeded", "failed", "skipped")}
    verdict = "[green]succeeded[/]" if result.succeeded else "[bold red]failed[/]"
    console.print(
        f"{verdict}: {counts['succeeded']} succeeded, {counts['failed']} failed, {counts['skipped']} skipped; "
        f"compile {result.compile_seconds:.1f} s, total {result.seconds:.1f} s"
        + (f"; invocation {result.invocation}" if result.invocation else "")
    )
    if not result.succeeded:
        console.print(f"[red]{result.reason}[/]")
