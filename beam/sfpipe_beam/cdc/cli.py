"""``sfpipe cdc``: run the change-data-capture path by hand and see how far behind it is.

- ``sfpipe cdc publish``: the cdc-publisher in the foreground (what the service runs);
- ``sfpipe cdc stream``: the local stream from ``cdc-stream`` into the raw layer;
- ``sfpipe cdc status``: the checkpoint and the commit-to-queryable lag of recent changes;
- ``sfpipe cdc pipeline -- <Beam options>``: build (and on Dataflow, launch) the streaming pipeline.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from sfpipe.config import get_settings


@click.group("cdc")
def cdc() -> None:
    """Change data capture: Salesforce change events → Pub/Sub → the raw layer, in seconds."""


@cdc.command("publish")
def publish() -> None:
    """Subscribe to the org's change events and publish them to sfpipe-cdc until interrupted."""
    import signal

    from sfpipe_cdc_publisher.health import serve_health
    from sfpipe_cdc_publisher.publisher import build

    settings = get_settings()
    publisher = build(settings)
    server = serve_health(publisher, settings.host, settings.cdc_publisher_port)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: publisher.stop())
    click.echo(f"publishing {settings.cdc_topic} → {publisher.topic_path} (Ctrl-C stops, checkpoint kept)", err=True)
    try:
        publisher.run()
    finally:
        server.shutdown()
    m = publisher.metrics
    click.echo(f"published {m.messages_published} changes from {m.events_received} events; "
               f"{m.records_repaired} repaired", err=True)  # fmt: skip


@cdc.command("stream")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: until Ctrl-C).")
def stream(duration: float | None) -> None:
    """Apply sfpipe-cdc to the raw layer in micro-batches until interrupted."""
    from sfpipe_beam.cdc.service import run_service

    settings = get_settings()
    click.echo(f"streaming {settings.cdc_stream_subscription} into sfpipe_raw (Ctrl-C stops)", err=True)
    done = run_service(settings, duration=duration)
    m = done.metrics
    click.echo(f"applied {m.applied} changes in {m.batches} batches; {m.rejected} refused", err=True)


@cdc.command("status")
@click.option("--minutes", type=float, default=15.0, show_default=True, help="Window of recent changes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(minutes: float, as_json: bool) -> None:
    """The replay checkpoint and the lag of changes applied in the last minutes."""
    from sfpipe.adapters.factory import object_store, warehouse
    from sfpipe.errors import NotFoundError
    from sfpipe.lake import cdc_checkpoint_uri
    from sfpipe.ops import CDC_LAG

    settings = get_settings()
    try:
        checkpoint, _ = object_store(settings).get_json(cdc_checkpoint_uri(settings.state_bucket))
    except NotFoundError:
        checkpoint = None
    wh = warehouse(settings)
    seconds = int(minutes * 60)
    lag = wh.query(
        f"SELECT entity, COUNT(*) AS changes, APPROX_QUANTILES(lag_ms, 100)[OFFSET(50)] AS p50_ms, "
        f"APPROX_QUANTILES(lag_ms, 100)[OFFSET(99)] AS p99_ms, MAX(applied_at) AS last_applied "
        f"FROM {CDC_LAG.sql} WHERE applied_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {seconds} SECOND) "
        f"GROUP BY entity ORDER BY entity"
    ).to_pylist() if wh.table_exists(CDC_LAG) else []  # fmt: skip
    if as_json:
        click.echo(json.dumps({"checkpoint": checkpoint, "lag": lag}, default=str, indent=2))
        return
    console = Console()
    channels = (checkpoint or {}).get("channels", {})
    for channel, entry in channels.items():
        console.print(f"[bold]{channel}[/]: replay id {entry['replay_id']}, last commit {entry['commit_timestamp']}, "
                      f"checkpointed {entry['updated_at']}")  # fmt: skip
    if not channels:
        console.print("no CDC checkpoint yet")
    table = Table("object", "changes", "p50 lag (ms)", "p99 lag (ms)", "last applied")
    for row in lag:
        table.add_row(row["entity"], str(row["changes"]), f"{row['p50_ms']:.0f}", f"{row['p99_ms']:.0f}",
                      str(row["last_applied"]))  # fmt: skip
    console.print(table)


@cdc.command("pipeline", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def pipeline(ctx: click.Context) -> None:
    """Build the streaming pipeline with Beam options (``--runner=DataflowRunner --project=…`` launches it)."""
    from sfpipe_beam.cdc.pipeline import run

    run(list(ctx.args))
