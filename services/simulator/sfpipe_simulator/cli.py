"""`sfpipe simulator …`: generate an org as Parquet, or serve one over HTTPS."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sfpipe_simulator.generator import MAX_SCALE, MIN_SCALE, OrgPlan, parse_as_of, write_parquet


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


def generate_with_progress(plan: OrgPlan, out: Path) -> dict[str, object]:
    """Write the org's Parquet files with a progress bar on the terminal."""
    columns = (TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("generating", total=plan.scale)

        def advance(name: str, rows: int) -> None:
            progress.update(task, advance=rows, description=name)

        manifest = write_parquet(plan, out, advance)
        progress.update(task, description="done")
    return manifest


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
def generate_command(seed: int, scale: int, out: Path, as_of: datetime | None) -> None:
    """Write a synthetic org as Parquet: the same seed and scale give byte-identical files."""
    plan = OrgPlan.build(seed, scale, as_of)
    manifest = generate_with_progress(plan, out)
    counts = manifest["counts"]
    assert isinstance(counts, dict)
    click.echo(f"wrote {sum(counts.values()):,} records of {len(counts)} objects to {out} (org {plan.org_id})")
