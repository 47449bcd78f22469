"""The cloud warehouse on BigQuery: load jobs from GCS, MERGE in a transaction, DDL as SQL.

The SQL is the same BigQuery dialect that the DuckDB backend transpiles, so a test can
run it locally and assert here the exact statements and job configurations sent.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from sfpipe.adapters.warehouse import schema as wschema
from sfpipe.adapters.warehouse import sql as wsql
from sfpipe.adapters.warehouse.base import MergeResult, MergeSpec, TableRef, Warehouse, check_name
from sfpipe.errors import BadInputError, TransientError

_CONCURRENT = re.compile(r"concurrent update|aborted due to concurrent|could not serialize", re.IGNORECASE)
_TRANSIENT = (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests, gexc.BadGateway)


def _schema_field_type(field: bigquery.SchemaField) -> pa.DataType:
    base = wschema.arrow_type(field.field_type)
    return pa.list_(base) if field.mode == "REPEATED" else base


def script(statements: Sequence[str]) -> str:
    """Statements as one multi-statement transaction."""
    body = ";\n".join(s.rstrip().rstrip(";") for s in statements)
    return f"BEGIN TRANSACTION;\n{body};\nCOMMIT TRANSACTION;"


class BigQueryWarehouse(Warehouse):
    """The Warehouse protocol on BigQuery."""

    name = "bigquery"

    def __init__(self, client: bigquery.Client, location: str | None = None) -> None:
        self.client = client
        self.location = location

    def _table_id(self, ref: TableRef) -> str:
        return f"{self.client.project}.{ref.dataset}.{ref.table}"

    def _run(self, sql: str) -> bigquery.table.RowIterator:
        try:
            return self.client.query_and_wait(sql, location=self.location)
        except _TRANSIENT as exc:
            msg = f"BigQuery is unavailable: {exc}"
            raise TransientError(msg) from exc
        except gexc.BadRequest as exc:
            if _CONCURRENT.search(exc.message or ""):
                msg = f"BigQuery aborted the transaction on a concurrent update, retry: {exc.message}"
                raise TransientError(msg) from exc
            msg = f"BigQuery rejected the SQL: {exc.message}"
            raise BadInputError(msg, field="sql") from exc

    def ensure_dataset(self, dataset: str) -> None:
        """Create the dataset if missing (Terraform creates them in real projects)."""
        ds = bigquery.Dataset(f"{self.client.project}.{dataset}")
        if self.location:
            ds.location = self.location
        self.client.create_dataset(ds, exists_ok=True)

    def table_schema(self, ref: TableRef) -> pa.Schema | None:
        """The table's schema as Arrow, or None."""
        try:
            table = self.client.get_table(self._table_id(ref))
        except gexc.NotFound:
            return None
        return pa.schema([pa.field(f.name, _schema_field_type(f), nullable=f.mode != "REQUIRED") for f in table.schema])

    def create_table(
        self,
        ref: TableRef,
        schema: pa.Schema,
        *,
        partition_by: str | None = None,
        cluster_by: Sequence[str] = (),
        if_not_exists: bool = True,
    ) -> None:
        """`CREATE TABLE` with partitioning and clustering."""
        self._run(
            wschema.create_table_sql(
                ref, schema, partition_by=partition_by, cluster_by=cluster_by, if_not_exists=if_not_exists
            )
        )

    def add_columns(self, ref: TableRef, fields: Sequence[pa.Field]) -> None:
        """`ALTER TABLE ADD COLUMN` for each field, in one script."""
        if fields:
            self._run(";\n".join(wschema.add_column_sql(ref, f) for f in fields))

    def drop_table(self, ref: TableRef) -> None:
        """Drop if exists."""
        self.client.delete_table(self._table_id(ref), not_found_ok=True)

    def load_job_config(self, *, replace: bool) -> bigquery.LoadJobConfig:
        """The configuration of every Parquet load job sfpipe runs."""
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=(
                bigquery.WriteDisposition.WRITE_TRUNCATE if replace else bigquery.WriteDisposition.WRITE_APPEND
            ),
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            schema_update_options=(None if replace else [bigquery.SchemaUpdateOption.ALLOW_FIELD_ADDITION]),
        )
        parquet_options = bigquery.ParquetOptions()
        parquet_options.enable_list_inference = True
        config.parquet_options = parquet_options
        return config

    def load_arrow(self, ref: TableRef, data: pa.Table | pa.RecordBatchReader, *, replace: bool = False) -> int:
        """A load job from Parquet written in memory (small tables: ops rows, fixtures)."""
        table = data if isinstance(data, pa.Table) else data.read_all()
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        buffer.seek(0)
        job = self.client.load_table_from_file(
            buffer, self._table_id(ref), job_config=self.load_job_config(replace=replace), location=self.location
        )
        job.result()
        return table.num_rows

    def load_parquet(self, ref: TableRef, uris: Sequence[str], *, replace: bool = True) -> int:
        """One load job from the lake's Parquet files."""
        if not uris:
            msg = "no Parquet files to load"
            raise BadInputError(msg, field="uris")
        bad = [u for u in uris if not u.startswith("gs://")]
        if bad:
            msg = f"BigQuery loads only gs:// URIs; got {bad[:3]}"
            raise BadInputError(msg, field="uris")
        return self._finish(self._load_job(uris, self._table_id(ref), replace=replace))

    def merge_script(
        self,
        spec: MergeSpec,
        columns: Sequence[str],
        extra_statements: Sequence[str] = (),
        prelude: Sequence[str] = (),
    ) -> str:
        """The transaction that runs the prelude, counts the effect, merges, runs the extras, then reports."""
        return (
            script(
                [
                    *prelude,
                    f"CREATE TEMP TABLE _sfpipe_effect AS {wsql.merge_effect_sql(spec, columns)}",
                    wsql.merge_sql(spec, columns),
                    *extra_statements,
                ]
            )
            + "\nSELECT * FROM _sfpipe_effect;"
        )

    def merge(
        self,
        spec: MergeSpec,
        *,
        extra_statements: Sequence[str] = (),
        before: Sequence[str] = (),
        prelude: Sequence[str] = (),
    ) -> MergeResult:
        """One multi-statement transaction per object; schema changes just before it.

        BigQuery allows DDL in a transaction only on temp tables, so ``before`` runs as its
        own script first: a failed merge then leaves at most new, empty nullable columns.
        """
        if spec.columns:
            columns = list(spec.columns)
        else:
            if spec.source_query:
                msg = "a merge from a source query must name its columns"
                raise BadInputError(msg, field="columns")
            schema = self.table_schema(spec.source)
            if schema is None:
                msg = f"merge source {spec.source} does not exist"
                raise BadInputError(msg, field="source")
            columns = list(schema.names)
        if before:
            self._run(";\n".join(s.rstrip().rstrip(";") for s in before))
        rows = list(self._run(self.merge_script(spec, columns, extra_statements, prelude)))
        if not rows:
            return MergeResult()
        row = rows[0]
        return MergeResult(
            inserted=int(row["inserted"] or 0), updated=int(row["updated"] or 0), deleted=int(row["deleted"] or 0)
        )

    def _load_job(self, uris: Sequence[str], table_id: str, *, replace: bool) -> bigquery.LoadJob:
        return self.client.load_table_from_uri(
            list(uris), table_id, job_config=self.load_job_config(replace=replace), location=self.location
        )

    def _finish(self, job: bigquery.LoadJob) -> int:
        try:
            job.result()
        except _TRANSIENT as exc:
            msg = f"BigQuery load job {job.job_id} failed transiently: {exc}"
            raise TransientError(msg) from exc
        except gexc.BadRequest as exc:
            msg = f"BigQuery load job {job.job_id} failed: {exc.message}"
            raise BadInputError(msg, field="uris") from exc
        return int(job.output_rows or 0)

    @contextmanager
    def staged_parquet(
        self,
        ref: TableRef,
        uris: Sequence[str],
        *,
        source_file_column: str | None = None,
        generations: Sequence[int | None] | None = None,
    ) -> Iterator[pa.Schema]:
        """Load jobs into a staging table, dropped afterwards.

        A load job cannot say which file a row came from, so with ``source_file_column``
        each file is loaded by its own job (all running at once) into a part table, and
        one query unions the parts with each file's URI. Generations are checked by the
        caller: a load job always reads the live object.
        """
        if not uris:
            msg = "no Parquet files to stage"
            raise BadInputError(msg, field="uris")
        bad = [u for u in uris if not u.startswith("gs://")]
        if bad:
            msg = f"BigQuery loads only gs:// URIs; got {bad[:3]}"
            raise BadInputError(msg, field="uris")
        parts = [TableRef(ref.dataset, f"{ref.table}__{i}") for i in range(len(uris))] if source_file_column else []
        try:
            if not source_file_column:
                self._finish(self._load_job(uris, self._table_id(ref), replace=True))
            else:
                check_name(source_file_column, "column")
                jobs = [
                    self._load_job([uri], self._table_id(part), replace=True)
                    for uri, part in zip(uris, parts, strict=True)
                ]
                for job in jobs:
                    self._finish(job)
                self._run(self.union_sql(ref, parts, uris, source_file_column))
            schema = self.table_schema(ref)
            if schema is None:
                msg = f"staging table {ref} was not created"
                raise TransientError(msg)
            yield schema
        finally:
            for table in (*parts, ref):
                self.drop_table(table)

    def union_sql(
        self, ref: TableRef, parts: Sequence[TableRef], uris: Sequence[str], source_file_column: str
    ) -> str:
        """One table from the per-file part tables, each row with its file's URI (columns unioned by name)."""
        schemas = []
        for part in parts:
            schema = self.table_schema(part)
            if schema is None:
                msg = f"staging part {part} was not created"
                raise TransientError(msg)
            schemas.append(schema)
        names: list[str] = []
        types: dict[str, pa.DataType] = {}
        for schema in schemas:
            for f in schema:
                if f.name not in types:
                    names.append(f.name)
                    types[f.name] = f.type
        selects = []
        for part, uri, schema in zip(parts, uris, schemas, strict=True):
            cols = [
                f"`{n}`" if n in schema.names else f"CAST(NULL AS {wschema.bigquery_type(types[n])}) AS `{n}`"
                for n in names
            ]
            literal = "'" + uri.replace("\\", "\\\\").replace("'", "\\'") + "'"
            selects.append(f"SELECT {', '.join(cols)}, {literal} AS `{source_file_column}` FROM {part.sql}")
        return f"CREATE OR REPLACE TABLE {ref.sql} AS\n" + "\nUNION ALL\n".join(selects)

    def query(self, sql: str) -> pa.Table:
        """Run a query; results come through the Storage Read API when large."""
        return self._run(sql).to_arrow()

    def query_batches(self, sql: str, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Stream a query's rows page by page."""
        rows = self.client.query_and_wait(sql, location=self.location, page_size=batch_rows)
        yield from rows.to_arrow_iterable()

    def execute(self, statements: str | Sequence[str]) -> None:
        """One statement, or several as a transaction."""
        items = [statements] if isinstance(statements, str) else list(statements)
        self._run(items[0] if len(items) == 1 else script(items))
