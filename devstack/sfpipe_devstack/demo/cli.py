"""The ``sfpipe demo`` command (registered through the ``sfpipe.commands`` entry points)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from sfpipe.config import get_settings
from sfpipe_devstack.demo.run import DEFAULT_ACTIVITY_RATE, DEFAULT_SCALE, Demo, DemoOptions


@click.command("demo")
@click.option(
    "--scale",
    type=click.IntRange(1_000, 10_000_000),
    default=None,
    help=f"Records of the generated org (default {DEFAULT_SCALE:,}; a running devstack keeps its own).",
)
@click.option(
    "--seed", type=click.IntRange(0), default=None, help="Seed of the generated org (default SFPIPE_SIMULATOR_SEED)."
)
@click.option(
    "--keep-running/--down",
    default=True,
    show_default=True,
    help="Leave the devstack (and the dashboard) running after the summary, or stop it.",
)
@click.option(
    "--activity",
    "activity_rate",
    type=click.FloatRange(0, 1000),
    default=DEFAULT_ACTIVITY_RATE,
    show_default=True,
    help="Live changes per second the simulator makes while the CDC path runs (0 = none).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(10),
    default=900.0,
    show_default=True,
    help="Seconds the pipeline may take after the run is posted.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the result (stages, durations, rows, summary) to this JSON file.",
)
def demo(
    scale: int | None,
    seed: int | None,
    keep_running: bool,
    activity_rate: float,
    timeout: float,
    json_path: Path | None,
) -> None:
    """Run the whole pipeline locally on a generated Salesforce org and print a summary.

    Starts the devstack (emulators, warehouse, simulator, services), posts one run to the
    extractor (POST /runs) and follows the events that drive the rest: manifest → loader →
    transform → quality. Exits 1 if any stage failed, naming the stage and the reason.
    """
    # the demo's own output is the summary; library chatter (sqlglot's notes on transpiling) is not
    logging.getLogger("sqlglot").setLevel(logging.WARNING)
    options = DemoOptions(
        scale=scale, seed=seed, keep_running=keep_running, activity_rate=activity_rate, timeout=timeout
    )
    runner = Demo(get_settings(), options)
    try:
        result = runner.run()
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the devstack keeps running; `make down` (or `sfpipe down`) stops it", err=True)
        sys.exit(130)
    runner.display.summary(result)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.as_json(), indent=2, default=str) + "\n")
    sys.exit(0 if result.ok else 1)
