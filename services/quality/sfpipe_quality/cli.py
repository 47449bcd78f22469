"""`sfpipe quality`: run the quality suites now and print a report."""

from __future__ import annotations

import json
import sys
import uuid

import click
from rich.console import Console

from sfpipe import ops
from sfpipe.adapters import factory
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import get_settings
from sfpipe.errors import BadInputError
from sfpipe.ids import is_run_id
from sfpipe_quality import suites as suite_registry
from sfpipe_quality.report import render
from sfpipe_quality.service import QualityStage
from sfpipe_quality.source import salesforce_source
from sfpipe_quality.spec import Severity


def latest_run_id(warehouse: Warehouse) -> str | None:
    """The newest run that reached the load or transform stage (run ids sort by time)."""
    ops.ensure_ops_tables(warehouse)
    value = warehouse.scalar(f"SELECT MAX(run_id) FROM {ops.RUNS.sql} WHERE stage IN ('load', 'transform')")
    return None if value is None else str(value)


@click.command("quality")
@click.option("--run-id", help="Run to check (default: the newest loaded run).")
@click.option(
    "--suite",
    "suites",
    multiple=True,
    type=click.Choice(list(suite_registry.ORDER)),
    help="Suite to run; repeat for several (default: all).",
)
@click.option("--docs/--no-docs", default=True, show_default=True, help="Publish Data Docs to the lake.")
@click.option(
    "--publish/--no-publish",
    default=False,
    show_default=True,
    help="Publish sfpipe.quality.completed (and .alert) as the service would.",
)
@click.option("--source/--no-source", default=True, show_default=True, help="Ask Salesforce for counts and stages.")
@click.option("--verbose", "-v", is_flag=True, help="List every check, not only the failing ones.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a report.")
def quality(
    run_id: str | None,
    suites: tuple[str, ...],
    docs: bool,
    publish: bool,
    source: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Run the quality suites in the warehouse; exit 1 when an error-severity check fails.

    Results replace the run's earlier results in sfpipe_ops.quality_results.
    """
    settings = get_settings()
    warehouse = factory.warehouse(settings)
    if run_id is None:
        run_id = latest_run_id(warehouse)
        if run_id is None:
            msg = "no loaded run in sfpipe_ops.runs yet; pass --run-id"
            raise BadInputError(msg, field="run-id")
    elif not is_run_id(run_id):
        msg = f"--run-id {run_id!r} is not a run id; expected one like 20260101T000000Z-0a1b2c3d"
        raise BadInputError(msg, field="run-id")
    stage = QualityStage(
        settings,
        lambda: warehouse,
        (lambda: factory.object_store(settings)),
        (lambda: factory.event_publisher(settings)) if publish else None,
        (lambda: salesforce_source(settings)) if source else None,
    )
    published = stage.run(run_id, list(suites) or None, seed=uuid.uuid4().hex, docs=docs, events=publish)
    run = published.run
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": run.run_id,
                    "suites": [s.model_dump() for s in run.summary()],
                    "docs_uri": published.docs_uri,
                    "notes": run.notes,
                    "results": [
                        {
                            "suite": r.suite,
                            "table": r.table,
                            "check": r.check,
                            "expectation": r.expectation,
                            "column": r.column,
                            "severity": r.severity.value,
                            "success": r.success,
                            "observed": r.observed,
                            "unexpected_count": r.unexpected_count,
                        }
                        for r in run.results
                    ],
                },
                default=str,
                indent=2,
            )
        )
    else:
        render(run, Console(), docs_uri=published.docs_uri, verbose=verbose)
    if run.failing(Severity.ERROR):
        sys.exit(1)
