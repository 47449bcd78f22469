"""The terminal report of a quality run (``sfpipe quality``)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sfpipe_quality.gx_runner import CheckResult
from sfpipe_quality.runner import QualityRun
from sfpipe_quality.spec import Severity


def _observed(result: CheckResult) -> str:
    value: Any = result.observed
    if result.details.get("error"):
        return "error: " + str(result.details["error"]).splitlines()[0][:80]
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _mark(result: CheckResult) -> Text:
    if result.success:
        return Text("pass", style="green")
    if result.severity is Severity.ERROR:
        return Text("FAIL", style="bold red")
    return Text("warn", style="yellow")


def render(run: QualityRun, console: Console, *, docs_uri: str | None = None, verbose: bool = False) -> None:
    """Print the per-suite totals, then the failing checks (every check with ``verbose``)."""
    totals = Table(title=f"quality of run {run.run_id}", title_justify="left")
    totals.add_column("suite")
    totals.add_column("passed", justify="right")
    totals.add_column("failed", justify="right")
    totals.add_column("errors", justify="right")
    totals.add_column("warnings", justify="right")
    for summary in run.summary():
        mine = [r for r in run.results if r.suite == summary.suite]
        errors = sum(r.failed_error for r in mine)
        warnings = sum(not r.success and r.severity is Severity.WARNING for r in mine)
        totals.add_row(
            summary.suite,
            str(summary.passed),
            str(summary.failed),
            Text(str(errors), style="bold red" if errors else ""),
            Text(str(warnings), style="yellow" if warnings else ""),
        )
    console.print(totals)
    shown = run.results if verbose else run.failing()
    if shown:
        checks = Table(title="checks" if verbose else "failing checks", title_justify="left")
        checks.add_column("")
        checks.add_column("suite")
        checks.add_column("check", no_wrap=True)
        checks.add_column("severity")
        checks.add_column("observed", overflow="ellipsis", max_width=40)
        checks.add_column("unexpected", justify="right")
        for result in sorted(shown, key=lambda r: (r.success, r.severity is not Severity.ERROR, r.suite, r.check)):
            checks.add_row(
                _mark(result),
                result.suite,
                result.check,
                result.severity.value,
                _observed(result),
                "" if result.unexpected_count is None else f"{result.unexpected_count:,}",
            )
        console.print(checks)
    for note in run.notes:
        console.print(f"[dim]note: {note}[/dim]")
    failed_errors = len(run.failing(Severity.ERROR))
    verdict = (
        Text(f"{failed_errors} error-severity check(s) failed", style="bold red")
        if failed_errors
        else Text("no error-severity check failed", style="green")
    )
    console.print(verdict, f"— {len(run.results)} checks in {run.seconds:.1f} s")
    if docs_uri:
        console.print(f"Data Docs: {docs_uri}")
