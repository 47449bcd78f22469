"""The reconciler's integration rig: a simulated org, the extractor, the loader, the raw layer, the truth.

Everything is real: the simulator serves HTTPS, the extractor and the repair write to
fake-gcs-server, the loader merges manifests into an embedded DuckDB warehouse through the same
code as its service, and the truth export comes from the simulator's admin API.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sfpipe.config import Settings, load_settings, reset_settings
from sfpipe.lake import manifest_uri
from sfpipe.salesforce.client import SalesforceClient


@dataclass
class Rig:
    """One org and one pipeline, driven step by step."""

    sim: Any
    settings: Settings
    store: Any
    warehouse: Any
    root: Path
    loaded: list[str] = field(default_factory=list)

    def client(self) -> SalesforceClient:
        return SalesforceClient.from_settings(self.settings)

    def extract(self, objects: list[str], mode: str = "incremental") -> Any:
        """Extract and load; changes of the last two seconds are left to the next run (its window ends
        a second before it starts), so the run waits until what was just changed is inside its window."""
        import time

        from sfpipe_extractor.engine import Extractor

        time.sleep(2.0)

        report = Extractor(self.client(), self.store, self.settings, publisher=lambda: _NullPublisher()).run(
            objects, mode=mode  # type: ignore[arg-type]
        )
        assert report.status == "completed", report.summary()
        self.load(report.run_id)
        return report

    def load(self, run_id: str) -> Any:
        from sfpipe.config import LoadPath
        from sfpipe_loader.loader import Loader

        uri = manifest_uri(self.settings.lake_bucket, run_id)
        data, generation = self.store.get_bytes(uri)
        result = Loader(self.settings, self.warehouse, self.store, None).load_manifest_bytes(
            data, uri, generation, f"{uri}#{generation}", forced=LoadPath.WAREHOUSE
        )
        assert not result.failed, result.failed
        self.loaded.append(run_id)
        return result

    def engine(self, **overrides: str) -> Any:
        from sfpipe_reconciler.run import ReconcileRun

        return ReconcileRun(self.client(), self.warehouse, self.store, self.settings, None,
                            scratch=self.root / "scratch")  # fmt: skip

    def truth(self, objects: list[str] | None = None) -> dict[str, Any]:
        from sfpipe_reconciler.truth import against_truth

        diffs = against_truth(self.warehouse, self.sim.admin, objects, self.root / "scratch")
        return {n: d.summary() for n, d in diffs.items() if not d.clean}


class _NullPublisher:
    def publish(self, event: Any, **kwargs: Any) -> str:
        return "0"


def configure(monkeypatch: pytest.MonkeyPatch, sim: Any, **extra: str) -> Settings:
    """Settings that point the extractor and the reconciler at the simulator, with fast retries."""
    values = {
        "SFPIPE_SF_LOGIN_URL": sim.url,
        "SFPIPE_SF_VERIFY_TLS": str(sim.verify),
        "SFPIPE_SF_BACKOFF_SECONDS": "0.01",
        "SFPIPE_SIMULATOR_ADMIN_TOKEN": sim.config.admin_token,
        "SFPIPE_EXTRACT_CONCURRENCY": "4",
        "SFPIPE_RECONCILE_FORMULA_SECONDS": "0",
        **extra,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    return load_settings()


def start_simulator(root: Path, **config: Any) -> Any:
    from sfpipe_simulator.server import Simulator, SimulatorConfig

    options = {"seed": 17, "scale": 6_000, "data_dir": root / f"sim-{uuid.uuid4().hex[:6]}", **config}
    return Simulator(SimulatorConfig(**options)).start()


@pytest.fixture
def lake_warehouse(object_store: Any, tmp_path: Path) -> Iterator[Any]:
    """An embedded DuckDB warehouse that reads lake files from fake-gcs-server (as the loader's does)."""
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession

    wh = DuckDBWarehouse(EmbeddedSession(tmp_path / "warehouse.duckdb"), store=object_store,
                         scratch=tmp_path / "wh-scratch")  # fmt: skip
    yield wh
    wh.close()


@pytest.fixture
def rig_factory(local_settings: Settings, object_store: Any, lake_warehouse: Any, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # fmt: skip
    """``rig_factory(**simulator config, env=…)`` → a Rig on a fresh simulated org."""
    duckdb_warehouse = lake_warehouse
    started: list[Any] = []

    def make(env: dict[str, str] | None = None, **config: Any) -> Rig:
        sim = start_simulator(tmp_path, **config)
        started.append(sim)
        # `sfpipe reconcile` in the same process opens the same warehouse file
        extra = {"SFPIPE_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"), **(env or {})}
        settings = configure(monkeypatch, sim, **extra)
        return Rig(sim, settings, object_store, duckdb_warehouse, tmp_path)

    try:
        yield make
    finally:
        for sim in started:
            sim.stop()
