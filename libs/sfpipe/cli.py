"""`sfpipe`: one command line for the whole platform.

Each part adds its own subcommands through the ``sfpipe.commands`` entry-point group, so
this root knows no service by name. A failure prints one line and exits non-zero.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sfpipe import __version__
from sfpipe.config import describe_settings, get_settings
from sfpipe.errors import SfpipeError
from sfpipe.logging import setup_logging

ENTRY_POINT_GROUP = "sfpipe.commands"


class PluginGroup(click.Group):
    """A click group that loads subcommands from entry points when first asked."""

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in and plugin commands, sorted."""
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, or the plugin registered under that name."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        plugin = self._plugins().get(cmd_name)
        if plugin is None:
            return None
        loaded = plugin.load()
        if not isinstance(loaded, click.Command):
            msg = f"entry point {plugin.value} is not a click command"
            raise click.ClickException(msg)
        return loaded

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; sfpipe's own errors become one line and exit code 1."""
        try:
            return super().invoke(ctx)
        except SfpipeError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(1)


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sfpipe")
def main() -> None:
    """Sfpipe — Salesforce into BigQuery, complete, fresh and proven.

    Runs locally on emulators and DuckDB (SFPIPE_MODE=local, the default) or on Google
    Cloud (SFPIPE_MODE=gcp). Every setting is an SFPIPE_* environment variable: see
    `sfpipe config`.
    """
    try:
        settings = get_settings()
    except SfpipeError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
    setup_logging("cli", settings)


def settings_markdown() -> str:
    """The configuration reference as a Markdown table (the README embeds it)."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for variable, default, description in describe_settings():
        shown = f"`{default}`" if default else ""
        lines.append(f"| `{variable}` | {shown} | {description.replace('|', '/')} |")
    return "\n".join(lines)


@main.command("config")
@click.option("--values", is_flag=True, help="Show this process's values instead of the defaults.")
@click.option("--markdown", is_flag=True, help="Print the reference as a Markdown table.")
def config_command(values: bool, markdown: bool) -> None:
    """List every SFPIPE_* setting with its default and meaning."""
    if markdown:
        click.echo(settings_markdown())
        return
    console = Console()
    table = Table("variable", "value" if values else "default", "meaning", show_lines=False)
    current = get_settings()
    for variable, default, description in describe_settings():
        shown = default
        if values:
            raw = getattr(current, variable.removeprefix("SFPIPE_").lower())
            shown = "(secret)" if "secret" in variable.lower() else str(getattr(raw, "value", raw))
        table.add_row(variable, shown, description)
    console.print(table)
