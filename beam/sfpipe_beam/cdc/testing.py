"""A CDC rig for tests and benchmarks: an org with its Pub/Sub API, settings, a batch-loaded raw layer,
and the comparison with the org's truth export.

Used by the cdc-publisher's and the stream's integration tests and by ``bench/bench_cdc.py``: the
simulator runs in this process (its change log is the truth), the emulators are the session's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings, load_settings, reset_settings
from sfpipe.raw import RawLayer, raw_ref

BATCH_RUN = "20260101T000000Z-00000000"


@dataclass
class CdcRig:
    """What a CDC test needs, running."""

    sim: Any
    api: Any
    settings: Settings
    env: dict[str, str]
    root: Path
    loaded_at: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    def publisher_client(self) -> Any:
        """A Google Pub/Sub publisher on the emulator."""
        from sfpipe.adapters.factory import publisher_client

        return publisher_client(self.settings)

    def subscriber_client(self) -> Any:
        """A Google Pub/Sub subscriber on the emulator."""
        from sfpipe.adapters.factory import subscriber_client

        return subscriber_client(self.settings)

    def batch_load(self, warehouse: Warehouse, folder: Path | None = None) -> int:
        """The org's current state into the raw layer as a batch load would; returns the log position it reflects."""
        from sfpipe_simulator.truth import export_truth

        export = export_truth(self.sim.store, folder or self.root / "truth-batch")
        layer = RawLayer(warehouse)
        for name, path in export.files.items():
            table = pq.read_table(path)
            if table.num_rows:  # an object without rows needs no table (and a load of none proves nothing)
                layer.apply_arrow(name, table, source="batch", run_id=BATCH_RUN)
        self.loaded_at = export.replay_id
        return export.replay_id

    def start_at(self, position: int) -> None:
        """Make the cdc-publisher resume after a log position (as if it had checkpointed it)."""
        from sfpipe.adapters.factory import object_store
        from sfpipe_cdc_publisher.checkpoint import Checkpoints, Position
        from sfpipe_simulator.pubsub_api import replay

        events = self.sim.store.changes.read(position - 1, 1) if position > 0 else []
        commit = events[0].commit_timestamp if events else None
        Checkpoints(object_store(self.settings), self.settings.state_bucket).save(
            self.settings.cdc_topic, Position(replay.to_bytes(position), commit_timestamp=commit)
        )


@contextmanager
def cdc_rig(
    root: Path,
    emulators: Any,
    *,
    scale: int = 1_000,
    seed: int = 21,
    keepalive: float = 0.5,
    gap_every: int = 0,
    overflow_every: int = 0,
    extra_env: dict[str, str | None] | None = None,
) -> Iterator[CdcRig]:
    """An org (in this process) with its Pub/Sub API over TLS, ``SFPIPE_*`` pointing at it, the topology applied.

    ``extra_env`` adds or replaces variables; a None value leaves the variable unset.
    """
    from sfpipe.adapters.factory import object_store, publisher_client, subscriber_client
    from sfpipe.topology import load_topology
    from sfpipe_devstack.topology_apply import apply_topology
    from sfpipe_simulator.pubsub_api.server import start_pubsub_api
    from sfpipe_simulator.pubsub_api.service import PubSubConfig
    from sfpipe_simulator.server import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(seed=seed, scale=scale, data_dir=root / "sim")).start()
    assert sim.runtime is not None and sim.ca_file is not None
    config = PubSubConfig(keepalive_seconds=keepalive, gap_every=gap_every, overflow_every=overflow_every)
    api = start_pubsub_api(sim.runtime, security="tls", tls_folder=sim.ca_file.parent, config=config)
    host, port = emulators.pubsub_host.split(":")
    suffix = os.urandom(4).hex()
    env = {
        "SFPIPE_MODE": "local", "SFPIPE_HOME": str(root / "home"), "SFPIPE_PROJECT": f"sfpipe-cdc-{suffix}",
        "SFPIPE_HOST": host, "SFPIPE_PUBSUB_PORT": port, "SFPIPE_GCS_PORT": str(emulators.gcs_port),
        "SFPIPE_STATE_BUCKET": f"state-{suffix}", "SFPIPE_LAKE_BUCKET": f"lake-{suffix}",
        "SFPIPE_SF_LOGIN_URL": sim.url, "SFPIPE_SF_VERIFY_TLS": str(sim.ca_file),
        "SFPIPE_SF_PUBSUB_ENDPOINT": api.endpoint, "SFPIPE_CDC_CHECKPOINT_SECONDS": "0.2",
        "SFPIPE_CDC_STREAM_MAX_WAIT_SECONDS": "0.1", "SFPIPE_LOG_FORMAT": "text",
        "SFPIPE_SF_CLIENT_ID": sim.config.client_id, "SFPIPE_SF_CLIENT_SECRET": sim.config.client_secret,
    }  # fmt: skip
    env.update({k: v for k, v in (extra_env or {}).items() if v is not None})
    unset = [k for k, v in (extra_env or {}).items() if v is None]
    for key in unset:
        env.pop(key, None)
    saved = {k: os.environ.get(k) for k in [*env, *unset]}
    os.environ.update(env)
    for key in unset:
        os.environ.pop(key, None)
    reset_settings()
    try:
        settings = load_settings()
        pub, sub = publisher_client(settings), subscriber_client(settings)
        apply_topology(load_topology(), settings.project, lambda _: f"http://{host}:9/", publisher=pub, subscriber=sub)
        object_store(settings).ensure_bucket(settings.state_bucket, versioned=True)
        yield CdcRig(sim, api, settings, env, root)
    finally:
        api.stop()
        sim.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()


def truth_differences(sim: Any, warehouse: Warehouse, folder: Path, limit: int = 5) -> dict[str, list[Any]]:
    """Per object, rows where the raw table differs from the org's truth export (empty when they agree).

    Every Salesforce column of the truth is compared, soft-deleted rows included; the raw layer's
    own metadata columns are not part of the truth.
    """
    from sfpipe_simulator.truth import export_truth

    export = export_truth(sim.store, folder)
    out: dict[str, list[Any]] = {}
    for name, path in export.files.items():
        truth = pq.read_table(path).sort_by("Id")
        if not warehouse.table_exists(raw_ref(name)):
            if truth.num_rows:
                out[name] = [f"no raw table, {truth.num_rows} rows in the org"]
            continue
        columns = ", ".join(f"`{c}`" for c in truth.column_names)
        raw = warehouse.query(f"SELECT {columns} FROM {raw_ref(name).sql} ORDER BY `Id`")
        raw = pa.table({c: raw[c].cast(truth.schema.field(c).type) for c in truth.column_names})
        if raw.equals(truth):
            continue
        have = {r["Id"]: r for r in raw.to_pylist()}
        diffs: list[Any] = []
        for row in truth.to_pylist():
            other = have.pop(row["Id"], None)
            if other != row:
                mine = other or {}
                changed = {k: (v, mine.get(k)) for k, v in row.items() if not other or other[k] != v}
                diffs.append({"Id": row["Id"], "columns": changed})
        diffs += [{"Id": k, "extra": True} for k in have]
        out[name] = diffs[:limit] + ([f"... {len(diffs) - limit} more"] if len(diffs) > limit else [])
    return out
