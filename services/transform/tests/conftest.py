"""Fixtures of the transform service's tests: a warehouse holding the golden org's raw layer."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe_transform.rawschema import RawContract
from sfpipe_transform.seed import load_folder

REPO = Path(__file__).resolve().parents[3]
PROJECT = REPO / "dataform"
GOLDEN_RAW = PROJECT / "tests" / "golden" / "raw"


@pytest.fixture
def golden_warehouse_file(tmp_path: Path) -> Path:
    """A DuckDB file with the golden org loaded into sfpipe_raw (closed again, ready to open)."""
    path = tmp_path / "home" / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    wh = DuckDBWarehouse(EmbeddedSession(path))
    load_folder(wh, RawContract.load(PROJECT), GOLDEN_RAW, ingested_at=dt.datetime(2024, 5, 15, 23, tzinfo=dt.UTC))
    wh.close()
    return path


@pytest.fixture
def broken_warehouse_file(tmp_path: Path) -> Path:
    """The golden org with one opportunity at 150 % probability."""
    raw = tmp_path / "raw"
    shutil.copytree(GOLDEN_RAW, raw)
    opportunities = (
        (raw / "opportunity.csv")
        .read_text()
        .replace("O3,Acme expansion,U2,A1,2000.00,50,", "O3,Acme expansion,U2,A1,2000.00,150,")
    )
    (raw / "opportunity.csv").write_text(opportunities)
    path = tmp_path / "home" / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    wh = DuckDBWarehouse(EmbeddedSession(path))
    load_folder(wh, RawContract.load(PROJECT), raw, ingested_at=dt.datetime(2024, 5, 15, 23, tzinfo=dt.UTC))
    wh.close()
    return path


@pytest.fixture
def golden_warehouse(golden_warehouse_file: Path) -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(EmbeddedSession(golden_warehouse_file))
    yield wh
    wh.close()


@pytest.fixture
def transform_env(monkeypatch: pytest.MonkeyPatch, sfpipe_env: dict[str, str]) -> dict[str, str]:
    """Settings that point at the repository's Dataform project and a fixed as_of."""
    from sfpipe.config import reset_settings

    monkeypatch.setenv("SFPIPE_DATAFORM_DIR", str(PROJECT))
    monkeypatch.setenv("SFPIPE_AS_OF", "2024-05-15")
    reset_settings()
    return {**sfpipe_env, "SFPIPE_DATAFORM_DIR": str(PROJECT), "SFPIPE_AS_OF": "2024-05-15"}


@pytest.fixture
def transform_settings(local_settings: Any, transform_env: dict[str, str]) -> Any:
    """Settings on the session's emulators, with the transform's variables applied."""
    from sfpipe.config import load_settings

    return load_settings()
