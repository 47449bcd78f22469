"""Fixtures of the quality tests: a clean sample org in a fresh warehouse, and ways to break it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sfpipe import lake
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import DuckDBSession, EmbeddedSession
from sfpipe.config import load_settings
from sfpipe_quality import sample_org
from sfpipe_quality.runner import QualityChecker, QualityRun
from sfpipe_quality.suites import raw
from sfpipe_quality.suites.context import ObjectWindow

SCALE = 5_000


class CountingSession(DuckDBSession):
    """A session that counts the rows every read hands to Python (to prove checks push down)."""

    def __init__(self, inner: DuckDBSession) -> None:
        self.inner = inner
        self.rows = 0
        self.largest = 0
        self.statements: list[str] = []

    def fetch(self, sql: str) -> pa.Table:
        table = self.inner.fetch(sql)
        self.rows += table.num_rows
        self.largest = max(self.largest, table.num_rows)
        return table

    def stream(self, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        return self.inner.stream(sql, batch_rows)

    def reader(self, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        self.statements.append(sql)
        inner = self.inner.reader(sql, batch_rows)
        counter = self

        def batches() -> Iterator[pa.RecordBatch]:
            pulled = 0
            for batch in inner:
                counter.rows += batch.num_rows
                pulled += batch.num_rows
                counter.largest = max(counter.largest, pulled)
                yield batch

        return pa.RecordBatchReader.from_batches(inner.schema, batches())

    def run(self, statements: Sequence[str], *, fetch_last: bool = False) -> pa.Table | None:
        return self.inner.run(statements, fetch_last=fetch_last)

    def put(self, dataset: str, table: str, reader: pa.RecordBatchReader, *, replace: bool) -> int:
        return self.inner.put(dataset, table, reader, replace=replace)

    def close(self) -> None:
        self.inner.close()


class CountsSource:
    """The source org of a test: fixed counts and stage picklist (the org itself is clean)."""

    def __init__(self, counts: dict[str, int], stages: list[str] | None = None) -> None:
        self.counts = counts
        self.stages = stages
        self.asked: list[tuple[str, datetime | None]] = []

    def count(self, sobject: str, *, created_before: datetime | None = None) -> int:
        self.asked.append((sobject, created_before))
        return self.counts[sobject]

    def picklist(self, sobject: str, field: str) -> list[str] | None:
        return self.stages


def live_counts(warehouse: DuckDBWarehouse) -> dict[str, int]:
    """Live rows per object of the sample org: what its source would answer to COUNT()."""
    counts = {}
    for rules in raw.OBJECTS:
        table = f'sfpipe_raw."{rules.name.lower()}"'
        has_deleted = rules.name not in ("User", "UserRole")
        where = "WHERE NOT IsDeleted AND NOT _hard_deleted" if has_deleted else "WHERE NOT _hard_deleted"
        counts[rules.name] = int(warehouse.session.fetch(f"SELECT count(*) FROM {table} {where}").column(0)[0].as_py())
    return counts


def sample_windows(size: sample_org.OrgSize) -> dict[str, ObjectWindow]:
    """The sample org's manifest windows, through the real manifest model."""
    manifest = lake.parse_manifest(json.dumps(sample_org.manifest_json(size)))
    return {name: ObjectWindow(o.window_from, o.window_to, o.rows) for name, o in manifest.objects.items()}


class Org:
    """A clean sample org in its own warehouse file, and a checker over it."""

    def __init__(self, path: Path, scale: int = SCALE) -> None:
        self.session = CountingSession(EmbeddedSession(path))
        self.warehouse = DuckDBWarehouse(self.session)
        self.size = sample_org.build(self.session, scale)
        self.counts = live_counts(self.warehouse)
        self.settings = load_settings()
        self.source = CountsSource(self.counts)

    def sql(self, *statements: str) -> None:
        """Change the org's tables (DuckDB SQL)."""
        self.session.run(list(statements))

    def one_id(self, table: str, where: str = "NOT IsDeleted") -> str:
        """An Id of a row of a raw table."""
        value = self.session.fetch(f'SELECT min(Id) FROM sfpipe_raw."{table}" WHERE {where}').column(0)[0].as_py()
        return str(value)

    def checker(self, **kwargs: Any) -> QualityChecker:
        """A checker with the sample's windows and source."""
        options: dict[str, Any] = {"source": lambda: self.source, "windows": lambda _run: sample_windows(self.size)}
        options.update(kwargs)
        return QualityChecker(self.warehouse, self.settings, **options)

    def check(self, suites: Sequence[str] | None = None, **kwargs: Any) -> QualityRun:
        """Run suites (all by default) on the org."""
        return self.checker(**kwargs).run(sample_org.RUN_ID, suites)

    def close(self) -> None:
        self.warehouse.close()


@pytest.fixture
def org_factory(tmp_path: Path, sfpipe_env: dict[str, str]) -> Iterator[Any]:
    """Build clean sample orgs of a given size, each in its own warehouse file."""
    made: list[Org] = []

    def make(scale: int = SCALE) -> Org:
        built = Org(tmp_path / f"warehouse-{len(made)}.duckdb", scale)
        made.append(built)
        return built

    yield make
    for built in made:
        built.close()


@pytest.fixture
def org(org_factory: Any) -> Org:
    """A clean sample org of about 5,000 records."""
    return org_factory()
