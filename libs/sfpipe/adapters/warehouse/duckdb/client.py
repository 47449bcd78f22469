"""The local warehouse on DuckDB: BigQuery SQL transpiled, Parquet read natively."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse import schema as wschema
from sfpipe.adapters.warehouse import sql as wsql
from sfpipe.adapters.warehouse.base import MergeResult, MergeSpec, TableRef, Warehouse, check_name
from sfpipe.adapters.warehouse.duckdb.session import DuckDBSession
from sfpipe.adapters.warehouse.transpile import to_duckdb
from sfpipe.errors import BadInputError

FETCH_THREADS = 4


def _quote_path(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _check_parquet(path: str, uri: str) -> None:
    """Fail on a file that is not readable Parquet before any statement reads it."""
    try:
        pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        msg = f"{uri} is not a readable Parquet file: {exc}"
        raise BadInputError(msg, field="uris") from None


class DuckDBWarehouse(Warehouse):
    """The Warehouse protocol on a DuckDB session (embedded or the warehouse server)."""

    name = "duckdb"

    def __init__(self, session: DuckDBSession, store: ObjectStore | None = None, scratch: Path | None = None) -> None:
        self.session = session
        self.store = store
        self.scratch = scratch or Path(tempfile.gettempdir())

    def _duck(self, sql: str) -> list[str]:
        return list(to_duckdb(sql))

    def ensure_dataset(self, dataset: str) -> None:
        """Create the schema if missing."""
        check_name(dataset, "dataset")
        self.session.run([f'CREATE SCHEMA IF NOT EXISTS "{dataset}"'])

    def table_schema(self, ref: TableRef) -> pa.Schema | None:
        """The table's Arrow schema, or None."""
        found = self.session.fetch(
            "SELECT count(*) AS n FROM information_schema.tables "
            f"WHERE table_schema = '{ref.dataset}' AND table_name = '{ref.table}'"
        )
        if found.column(0)[0].as_py() == 0:
            return None
        return self.session.fetch(f'SELECT * FROM "{ref.dataset}"."{ref.table}" LIMIT 0').schema

    def create_table(
        self,
        ref: TableRef,
        schema: pa.Schema,
        *,
        partition_by: str | None = None,
        cluster_by: Sequence[str] = (),
        if_not_exists: bool = True,
    ) -> None:
        """Create from an Arrow schema (partitioning and clustering have no DuckDB meaning)."""
        ddl = wschema.create_table_sql(ref, schema, if_not_exists=if_not_exists, with_options=False)
        self.session.run([f'CREATE SCHEMA IF NOT EXISTS "{ref.dataset}"', *self._duck(ddl)])

    def add_columns(self, ref: TableRef, fields: Sequence[pa.Field]) -> None:
        """Add nullable columns."""
        statements = [s for f in fields for s in self._duck(wschema.add_column_sql(ref, f))]
        if statements:
            self.session.run(statements)

    def drop_table(self, ref: TableRef) -> None:
        """Drop if exists."""
        self.session.run([f'DROP TABLE IF EXISTS "{ref.dataset}"."{ref.table}"'])

    def load_arrow(self, ref: TableRef, data: pa.Table | pa.RecordBatchReader, *, replace: bool = False) -> int:
        """Stream Arrow data into the table."""
        reader = data.to_reader() if isinstance(data, pa.Table) else data
        return self.session.put(ref.dataset, ref.table, reader, replace=replace)

    def _local_paths(
        self, uris: Sequence[str], workdir: Path, generations: Sequence[int | None] | None = None
    ) -> list[str]:
        """Local paths of the files: ``gs://`` objects are fetched (a few at a time) into ``workdir``."""

        def local(item: tuple[int, str]) -> str:
            i, uri = item
            if uri.startswith("gs://"):
                if self.store is None:
                    msg = f"cannot read {uri}: this warehouse has no object store"
                    raise BadInputError(msg, field="uris")
                target = workdir / f"part-{i:05d}.parquet"
                generation = generations[i] if generations else None
                self.store.download_file(uri, str(target), generation=generation or None)
                return str(target)
            if not Path(uri).exists():
                msg = f"Parquet file {uri} does not exist"
                raise BadInputError(msg, field="uris")
            return str(Path(uri).resolve())

        with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
            return list(pool.map(local, enumerate(uris)))

    def load_parquet(self, ref: TableRef, uris: Sequence[str], *, replace: bool = True) -> int:
        """DuckDB reads the files itself (``gs://`` objects are fetched to a scratch folder first)."""
        if not uris:
            msg = "no Parquet files to load"
            raise BadInputError(msg, field="uris")
        self.scratch.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="load-", dir=self.scratch))
        try:
            paths = self._local_paths(uris, workdir)
            source = "read_parquet([" + ", ".join(_quote_path(p) for p in paths) + "], union_by_name = true)"
            target = f'"{ref.dataset}"."{ref.table}"'
            head = f"CREATE OR REPLACE TABLE {target} AS" if replace else f"INSERT INTO {target} BY NAME"
            result = self.session.run(
                [
                    f'CREATE SCHEMA IF NOT EXISTS "{ref.dataset}"',
                    f"{head} SELECT * FROM {source}",
                    f"SELECT count(*) AS n FROM {target}",
                ],
                fetch_last=True,
            )
            return int(result.column(0)[0].as_py()) if result is not None else 0
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def merge(
        self,
        spec: MergeSpec,
        *,
        extra_statements: Sequence[str] = (),
        before: Sequence[str] = (),
        prelude: Sequence[str] = (),
    ) -> MergeResult:
        """Schema changes, the prelude, the count, the MERGE, then the extra statements, in one transaction."""
        if spec.columns:
            columns = list(spec.columns)
        else:
            if spec.source_query:
                msg = "a merge from a source query must name its columns"
                raise BadInputError(msg, field="columns")
            source_schema = self.table_schema(spec.source)
            if source_schema is None:
                msg = f"merge source {spec.source} does not exist"
                raise BadInputError(msg, field="source")
            columns = list(source_schema.names)
        statements = [
            *[s for item in (*before, *prelude) for s in self._duck(item)],
            f"CREATE OR REPLACE TEMP TABLE _sfpipe_effect AS {self._duck(wsql.merge_effect_sql(spec, columns))[0]}",
            *self._duck(wsql.merge_sql(spec, columns)),
            *[s for extra in extra_statements for s in self._duck(extra)],
            "SELECT * FROM _sfpipe_effect",
        ]
        result = self.session.run(statements, fetch_last=True)
        if result is None or result.num_rows == 0:
            return MergeResult()
        row = result.to_pylist()[0]
        return MergeResult(
            inserted=int(row["inserted"] or 0), updated=int(row["updated"] or 0), deleted=int(row["deleted"] or 0)
        )

    @contextmanager
    def staged_parquet(
        self,
        ref: TableRef,
        uris: Sequence[str],
        *,
        source_file_column: str | None = None,
        generations: Sequence[int | None] | None = None,
    ) -> Iterator[pa.Schema]:
        """A view over the files (``gs://`` objects fetched to the scratch folder), dropped afterwards.

        DuckDB reads the Parquet itself when the view is used, so the files are read once,
        by the statement that consumes them, and never copied into a table first.
        """
        if not uris:
            msg = "no Parquet files to stage"
            raise BadInputError(msg, field="uris")
        self.scratch.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="stage-", dir=self.scratch))
        view = f'"{ref.dataset}"."{ref.table}"'
        try:
            paths = self._local_paths(uris, workdir, generations)
            for path, uri in zip(paths, uris, strict=True):
                _check_parquet(path, uri)
            files = "[" + ", ".join(_quote_path(p) for p in paths) + "]"
            if source_file_column:
                check_name(source_file_column, "column")
                mapping = ", ".join(f"({_quote_path(p)}, {_quote_path(u)})" for p, u in zip(paths, uris, strict=True))
                body = (
                    f'SELECT r.* EXCLUDE ("_sfpipe_file"), m.uri AS "{source_file_column}" '
                    f"FROM read_parquet({files}, union_by_name = true, filename = '_sfpipe_file') AS r "
                    f"JOIN (VALUES {mapping}) AS m(path, uri) ON r._sfpipe_file = m.path"
                )
            else:
                body = f"SELECT * FROM read_parquet({files}, union_by_name = true)"
            self.session.run(
                [f'CREATE SCHEMA IF NOT EXISTS "{ref.dataset}"', f"CREATE OR REPLACE VIEW {view} AS {body}"]
            )
            schema = self.session.fetch(f"SELECT * FROM {view} LIMIT 0").schema
            yield schema
        finally:
            try:
                self.session.run([f"DROP VIEW IF EXISTS {view}"])
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

    def query(self, sql: str) -> pa.Table:
        """Transpile and run a read query."""
        statements = self._duck(sql)
        return self.session.fetch(statements[-1])

    def query_batches(self, sql: str, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Transpile and stream a read query."""
        statements = self._duck(sql)
        return self.session.stream(statements[-1], batch_rows)

    def execute(self, statements: str | Sequence[str]) -> None:
        """Transpile and run write statements in one transaction."""
        items = [statements] if isinstance(statements, str) else list(statements)
        self.session.run([s for item in items for s in self._duck(item)])

    def close(self) -> None:
        """Close the session."""
        self.session.close()
