"""`sfpipe load <manifest-uri>`: load a run by hand, the same way the service does.

The manifest is recorded as processed under the same key its finalize event has
(bucket, object, generation): an event that arrives later for it changes nothing, and
loading it twice by hand loads it once.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from sfpipe import ops
from sfpipe.adapters.storage import split_uri
from sfpipe.config import LoadPath, get_settings
from sfpipe.errors import NotFoundError, TerminalError
from sfpipe.events import GCS_FINALIZED, StorageObject
from sfpipe.lake import is_manifest_name
from sfpipe_loader.loader import SERVICE
from sfpipe_loader.service import build_loader


@click.command("load")
@click.argument("manifest_uri")
@click.option(
    "--path",
    "forced",
    type=click.Choice([p.value for p in LoadPath]),
    default=None,
    help="Force a load path (default: SFPIPE_LOAD_PATH, `auto` picks by size).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def load(manifest_uri: str, forced: str | None, as_json: bool) -> None:
    """Load the run whose manifest is MANIFEST_URI (gs://<lake>/salesforce/_runs/<run_id>/_manifest.json)."""
    settings = get_settings()
    bucket, name = split_uri(manifest_uri)
    if not is_manifest_name(name):
        msg = f"{manifest_uri} is not a run manifest (salesforce/_runs/<run_id>/_manifest.json)"
        raise click.BadParameter(msg, param_hint="MANIFEST_URI")
    loader = build_loader(settings, shared=False)
    try:
        stat = loader.store.stat(manifest_uri)
        if stat is None:
            msg = f"{manifest_uri} does not exist"
            raise NotFoundError(msg)
        obj = StorageObject(bucket=bucket, name=name, generation=stat.generation)
        ops.ensure_ops_tables(loader.warehouse)
        if ops.processed_outcome(loader.warehouse, obj.key, SERVICE) == "done":
            click.echo(f"{manifest_uri} (generation {obj.generation}) is already loaded")
            return
        result = loader.load_object_event(obj, obj.key, forced=LoadPath(forced) if forced else None)
        if result.ok and not result.ignored:
            loader.warehouse.execute(
                ops.processed_event_sql(obj.key, SERVICE, GCS_FINALIZED, obj.key, result.run_id, "done")
            )
    finally:
        loader.warehouse.close()
    if as_json:
        click.echo(json.dumps(result.body(), indent=2, default=str))
    else:
        table = Table("object", "status", "path", "inserted", "updated", "deleted", "seconds", "error")
        for sobject, r in sorted(result.objects.items()):
            table.add_row(
                sobject, r.status, r.path, str(r.inserted), str(r.updated), str(r.deleted), f"{r.seconds:.2f}",
                (r.error or "")[:80],
            )
        Console().print(table)
    if result.ignored:
        click.echo(result.ignored, err=True)
    if not result.ok and not result.ignored:
        raise TerminalError(result.summary())
