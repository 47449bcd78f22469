"""Fixtures for the Dataform project's tests: the golden org, a compiled graph, a runner."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe_transform.compiler import CompiledGraph, DataformCli
from sfpipe_transform.local import LocalRunner
from sfpipe_transform.rawschema import RawContract
from sfpipe_transform.result import TransformRequest, TransformResult
from sfpipe_transform.seed import load_folder

PROJECT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
AS_OF = dt.date(2024, 5, 15)
LOADED_AT = dt.datetime(2024, 5, 15, 23, 0, tzinfo=dt.UTC)
RUN_ID = "20240515T230000Z-0a1b2c3d"


@pytest.fixture(scope="session")
def project_dir() -> Path:
    """The Dataform project, with its CLI installed (`make npm`)."""
    cli = DataformCli(PROJECT)
    assert cli.binary.exists(), "the Dataform CLI is not installed: run `make npm`"
    return PROJECT


@pytest.fixture(scope="session")
def contract(project_dir: Path) -> RawContract:
    return RawContract.load(project_dir)


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    return yaml.safe_load((GOLDEN / "expected.yaml").read_text())


@pytest.fixture(scope="session")
def compiled(project_dir: Path) -> CompiledGraph:
    """The project compiled as of the golden date (one compile for the session)."""
    return DataformCli(project_dir).compile({"as_of": AS_OF.isoformat()})


@pytest.fixture
def make_warehouse(tmp_path: Path) -> Iterator[Callable[[str], DuckDBWarehouse]]:
    opened: list[DuckDBWarehouse] = []

    def make(name: str = "warehouse") -> DuckDBWarehouse:
        wh = DuckDBWarehouse(EmbeddedSession(tmp_path / f"{name}.duckdb"), scratch=tmp_path / "scratch")
        opened.append(wh)
        return wh

    yield make
    for wh in opened:
        wh.close()


@pytest.fixture
def golden_raw(tmp_path: Path) -> Path:
    """A copy of the golden raw CSVs that a test may break."""
    target = tmp_path / "raw"
    shutil.copytree(GOLDEN / "raw", target)
    return target


_GRAPHS: dict[tuple[Path, dt.date], CompiledGraph] = {}


def run_project(
    warehouse: DuckDBWarehouse, project_dir: Path, as_of: dt.date = AS_OF, *, full_refresh: bool = False
) -> TransformResult:
    """Compile (once per as_of in a session) and run the whole project on a warehouse."""
    runner = LocalRunner.for_project(warehouse, project_dir)
    request = TransformRequest(run_id=RUN_ID, as_of=as_of, full_refresh=full_refresh)
    key = (project_dir, as_of)
    if key not in _GRAPHS:
        _GRAPHS[key] = runner.compile(request)
    return runner.run(request, _GRAPHS[key])


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """The golden org: raw/ seeds, later/ loads and expected.yaml."""
    return GOLDEN


@pytest.fixture(scope="session")
def run_transform() -> Callable[..., TransformResult]:
    """`run_project`, for tests that build their own warehouses."""
    return run_project


@pytest.fixture(scope="session")
def loaded_at() -> dt.datetime:
    return LOADED_AT


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DuckDBWarehouse, TransformResult]]:
    """The golden org loaded and transformed once per module."""
    folder = tmp_path_factory.mktemp("golden")
    wh = DuckDBWarehouse(EmbeddedSession(folder / "golden.duckdb"), scratch=folder / "scratch")
    load_folder(wh, RawContract.load(PROJECT), GOLDEN / "raw", ingested_at=LOADED_AT)
    result = run_project(wh, PROJECT)
    yield wh, result
    wh.close()
