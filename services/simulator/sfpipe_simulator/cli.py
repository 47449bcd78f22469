"""`sfpipe simulator …`: generate an org as Parquet, or serve one over HTTPS."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from sfpipe_simulator.generator import (
    MAX_SCALE,
    MIN_SCALE,
    OrgPlan,
    Progress,
    parse_as_of,
    parse_counts,
    write_parquet,
)


class _AsOf(click.ParamType):
    name = "date"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_as_of(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


AS_OF = _AsOf()
SCALE = click.IntRange(MIN_SCALE, MAX_SCALE)


def _counts(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, int]:
    try:
        return parse_counts(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


COUNTS = click.option(
    "--counts", "counts", multiple=True, callback=_counts,
    help="Records of named objects instead of their share of the scale: Opportunity=1000000 (repeat, or "
         "comma-separate; Wide__c=N adds the 800-field custom object).",
)  # fmt: skip


@contextlib.contextmanager
def progress_bar(plan: OrgPlan) -> Iterator[Progress]:
    """A terminal progress bar over the plan's records; yields the generator's progress callback."""
    columns = (TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with RichProgress(*columns, transient=False) as bar:
        task = bar.add_task("generating", total=plan.scale)

        def advance(name: str, rows: int) -> None:
            bar.update(task, advance=rows, description=name)

        yield advance
        bar.update(task, description="done")


def generate_with_progress(plan: OrgPlan, out: Path) -> dict[str, object]:
    """Write the org's Parquet files with a progress bar on the terminal."""
    with progress_bar(plan) as advance:
        return write_parquet(plan, out, advance)


@click.group("simulator")
def simulator() -> None:
    """The Salesforce org simulator: a synthetic org behind REST, Bulk 2.0 and OAuth."""


@simulator.command("generate")
@click.option("--seed", type=click.IntRange(0), default=42, show_default=True, help="Random seed of the org.")
@click.option("--scale", type=SCALE, default=10_000, show_default=True, help="Total number of records.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for <Object>/part-*.parquet and _org.json.")  # fmt: skip
@click.option("--as-of", "as_of", type=AS_OF, default=None,
              help="Date the org's history ends (YYYY-MM-DD or 'today'); default 2026-01-01, fixed so that "
                   "seed and scale alone determine the bytes.")  # fmt: skip
@COUNTS
def generate_command(seed: int, scale: int, out: Path, as_of: datetime | None, counts: dict[str, int]) -> None:
    """Write a synthetic org as Parquet: the same seed, scale and counts give byte-identical files."""
    plan = OrgPlan.build(seed, scale, as_of, counts)
    manifest = generate_with_progress(plan, out)
    written = manifest["counts"]
    assert isinstance(written, dict)
    objects = sum(1 for n in written if n in plan.objects)
    click.echo(f"wrote {sum(written.values()):,} records of {objects} objects to {out} (org {plan.org_id})")


@simulator.command("serve")
@click.option("--seed", type=click.IntRange(0), default=None, help="Random seed (default SFPIPE_SIMULATOR_SEED).")
@click.option("--scale", type=SCALE, default=None, help="Total records (default SFPIPE_SIMULATOR_SCALE).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default SFPIPE_SIMULATOR_PORT; 0 picks a free one).")  # fmt: skip
@click.option("--host", default=None, help="Interface to listen on (default SFPIPE_HOST).")
@click.option("--tls/--no-tls", default=None, help="Serve HTTPS with a generated certificate (default on).")
@click.option("--as-of", "as_of", type=AS_OF, default=None, help="Date the org's history ends (default today).")
@click.option("--activity-rate", type=click.FloatRange(0), default=None,
              help="Live changes per second (default SFPIPE_SIMULATOR_ACTIVITY_RATE; 0 = off).")  # fmt: skip
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for generated orgs, the store and the certificate.")  # fmt: skip
@COUNTS
def serve_command(seed: int | None, scale: int | None, port: int | None, host: str | None, tls: bool | None,
                  as_of: datetime | None, activity_rate: float | None, data_dir: Path | None,
                  counts: dict[str, int]) -> None:  # fmt: skip
    """Generate (or reuse) an org and serve it until interrupted."""
    from sfpipe_simulator.server import SimulatorConfig, serve_forever

    config = SimulatorConfig.from_settings(
        seed=seed, scale=scale, port=port, host=host, tls=tls, as_of=as_of,
        activity_rate=activity_rate, data_dir=data_dir, counts=counts or None,
    )  # fmt: skip
    serve_forever(config, progress=True)
