"""``sfpipe cdc status`` and the stream service's health endpoint."""

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from click.testing import CliRunner

from sfpipe.cli import main
from sfpipe.ops import CDC_LAG, ensure_ops_tables
from sfpipe_beam.cdc.service import prometheus, serve_health
from sfpipe_beam.cdc.stream import StreamMetrics
from sfpipe_cdc_publisher.checkpoint import Checkpoints, Position


@pytest.mark.integration
def test_status_reports_the_checkpoint_and_recent_lag(local_settings, object_store):
    from sfpipe.adapters.factory import warehouse

    Checkpoints(object_store, local_settings.state_bucket).save(
        "/data/ChangeEvents", Position(b"\x00" * 7 + b"\x2a", commit_timestamp=datetime(2026, 3, 1, tzinfo=UTC))
    )
    wh = warehouse(local_settings)
    ensure_ops_tables(wh)
    now = datetime.now(UTC)
    wh.load_arrow(CDC_LAG, pa.table({
        "entity": ["Account", "Account", "Contact"], "record_id": ["001A", "001B", "003A"],
        "commit_timestamp": pa.array([now - timedelta(seconds=2)] * 3, pa.timestamp("us", tz="UTC")),
        "applied_at": pa.array([now] * 3, pa.timestamp("us", tz="UTC")), "lag_ms": [400.0, 800.0, 1200.0],
    }))  # fmt: skip
    wh.close()
    result = CliRunner().invoke(main, ["cdc", "status", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["checkpoint"]["channels"]["/data/ChangeEvents"]["replay_id"] == "000000000000002a"
    by_entity = {row["entity"]: row for row in body["lag"]}
    assert by_entity["Account"]["changes"] == 2 and by_entity["Contact"]["p99_ms"] == 1200.0
    table = CliRunner().invoke(main, ["cdc", "status"])
    assert table.exit_code == 0 and "replay id 000000000000002a" in table.output


class FakeStream:
    subscription = "projects/p/subscriptions/cdc-stream"

    def __init__(self):
        self.metrics = StreamMetrics(state="streaming", received=5, applied=4, batches=2, last_lag_ms=750.0)


def test_stream_health_and_metrics():
    stream = FakeStream()
    server = serve_health(stream, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
            body = json.loads(r.read())
        assert body["status"] == "ok" and body["applied"] == 4 and body["service"] == "cdc-stream"
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert "sfpipe_cdc_stream_applied_total 4" in text and "sfpipe_cdc_stream_lag_seconds 0.75" in text
        stream.metrics.state = "stopped"
        with pytest.raises(urllib.error.HTTPError, match="503"):
            urllib.request.urlopen(f"{url}/healthz", timeout=5)
    finally:
        server.shutdown()
    assert sum(line.startswith("sfpipe_cdc_stream_") and "_total " in line for line in prometheus(stream).split("\n")) == 5
