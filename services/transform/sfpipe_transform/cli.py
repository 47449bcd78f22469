"""`sfpipe transform`: compile the Dataform project and build every model and assertion."""

from __future__ import annotations

import datetime as dt
import json
import sys

import click
from rich.console import Console

from sfpipe.adapters import factory as adapters
from sfpipe.config import get_settings
from sfpipe.ids import is_run_id, new_run_id
from sfpipe_transform.factory import transformer as make_transformer
from sfpipe_transform.report import render
from sfpipe_transform.result import TransformRequest
from sfpipe_transform.service import TransformStage, default_as_of


def _as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; expected YYYY-MM-DD") from None


def _run_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not is_run_id(value):
        raise click.BadParameter(f"{value!r} is not a run id like 20260101T000000Z-0a1b2c3d")
    return value


def _vars(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE")
        pairs.append((key, value))
    return tuple(pairs)


@click.command("transform")
@click.option("--as-of", callback=_as_of, help="Date 'this month / quarter' refers to (default SFPIPE_AS_OF or today).")
@click.option("--run-id", callback=_run_id, help="Run to record the stage under (default: a new run id).")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental tables from scratch.")
@click.option("--action", "actions", multiple=True, help="Only this action (dataset.name or name); repeatable.")
@click.option("--with-deps", is_flag=True, help="With --action: build what the actions depend on too.")
@click.option("--var", "variables", multiple=True, callback=_vars, help="Extra compile var KEY=VALUE; repeatable.")
@click.option("--publish/--no-publish", default=True, show_default=True, help="Publish sfpipe.transform.* events.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
def transform(
    as_of: dt.date | None,
    run_id: str | None,
    full_refresh: bool,
    actions: tuple[str, ...],
    with_deps: bool,
    variables: tuple[tuple[str, str], ...],
    publish: bool,
    as_json: bool,
) -> None:
    """Build the staging models, marts and history, and check every assertion.

    Locally the Dataform CLI compiles the project and sfpipe runs it on the DuckDB
    warehouse; in gcp mode the Dataform API compiles and runs it. Exits 1 when an action
    or an assertion fails.
    """
    settings = get_settings()
    request = TransformRequest(
        run_id=run_id or new_run_id(),
        as_of=as_of or default_as_of(settings),
        full_refresh=full_refresh,
        actions=actions,
        include_dependencies=with_deps,
        extra_vars=variables,
    )
    warehouse = adapters.warehouse(settings)
    try:
        stage = TransformStage(
            make_transformer(settings, warehouse),
            warehouse,
            adapters.event_publisher(settings) if publish else None,
            publish_timeout=15.0,
        )
        result = stage.run(request)
    finally:
        warehouse.close()
    if as_json:
        payload = {
            "run_id": result.run_id,
            "as_of": result.as_of.isoformat(),
            "succeeded": result.succeeded,
            "reason": result.reason or None,
            "invocation": result.invocation,
            "seconds": result.seconds,
            "actions": [a.model_dump() for a in result.actions],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        render(result, Console(), only_problems=False)
    if not result.succeeded:
        sys.exit(1)
