"""What every warehouse backend offers. Services depend on this, never on a backend.

All SQL handed to a warehouse is BigQuery's dialect with two-part names
(``dataset.table``); the DuckDB backend transpiles it in one place
(:mod:`sfpipe.adapters.warehouse.transpile`).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import pyarrow as pa

from sfpipe.errors import BadInputError

DATASETS = ("sfpipe_raw", "sfpipe_staging", "sfpipe_marts", "sfpipe_assertions", "sfpipe_ops")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_name(name: str, what: str) -> str:
    """Reject identifiers that could not be a dataset, table or column name."""
    if not _NAME.match(name):
        msg = f"{what} {name!r} is not a valid identifier; expected letters, digits and underscores"
        raise BadInputError(msg, field=what)
    return name


@dataclass(frozen=True)
class TableRef:
    """A table by dataset and name."""

    dataset: str
    table: str

    def __post_init__(self) -> None:
        check_name(self.dataset, "dataset")
        check_name(self.table, "table")

    @property
    def sql(self) -> str:
        """The table as a BigQuery identifier: `` `dataset.table` ``."""
        return f"`{self.dataset}.{self.table}`"

    def __str__(self) -> str:
        return f"{self.dataset}.{self.table}"


@dataclass(frozen=True)
class MergeSpec:
    """Merge a source table into a target, the newest version per key winning.

    The source may hold several versions of a key (overlapping files, repeated runs): the
    newest by ``sequence`` (compared left to right) is taken, and it replaces the target's
    row only when it is strictly newer. An older version never overwrites a newer one.
    """

    target: TableRef
    source: TableRef
    key: str = "Id"
    sequence: tuple[str, ...] = ("_version", "_commit_number")
    columns: tuple[str, ...] = ()
    deleted_flag: str | None = "IsDeleted"
    source_query: str | None = None
    """Rows to merge as a SELECT (BigQuery SQL) instead of the whole ``source`` table; needs ``columns``."""
    carry: tuple[str, ...] = ()
    """Source columns kept in the deduplicated rows for the extra statements, but not merged."""
    tiebreak: tuple[str, ...] = ()
    """Picks one of several source copies of the same version (deterministic); never compared with the target."""
    tombstone_flag: str | None = None
    """Rows flagged so only mark an existing row: their NULLs keep the target's values; they never insert."""
    replace_equal: bool = False
    """An equal version replaces the target's row too (refreshes: formula fields change, the version does not)."""
    revive_tombstones: bool = False
    """A live source row replaces a target tombstone whatever their versions: a repair's re-fetch of a
    record proves it exists, and a tombstone's version is the run's time, not one the org ever had."""
    unique_source: bool = False
    """The source holds at most one row per key already (deduplicated upstream): no ranking step."""
    rank_repeated_only: bool = False
    """Rank only the keys that occur more than once (a ranking sorts whole rows; most keys occur once)."""


@dataclass(frozen=True)
class MergeResult:
    """What a merge changed."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    details: dict[str, int] = field(default_factory=dict)


class Warehouse(abc.ABC):
    """Datasets, tables, loads, merges and queries, in BigQuery's SQL dialect."""

    name: str = "warehouse"

    @abc.abstractmethod
    def ensure_dataset(self, dataset: str) -> None:
        """Create a dataset (a DuckDB schema) if it does not exist."""

    @abc.abstractmethod
    def table_schema(self, ref: TableRef) -> pa.Schema | None:
        """A table's Arrow schema, or None when it does not exist."""

    def table_exists(self, ref: TableRef) -> bool:
        """Whether a table exists."""
        return self.table_schema(ref) is not None

    @abc.abstractmethod
    def create_table(
        self,
        ref: TableRef,
        schema: pa.Schema,
        *,
        partition_by: str | None = None,
        cluster_by: Sequence[str] = (),
        if_not_exists: bool = True,
    ) -> None:
        """Create a table from an Arrow schema."""

    @abc.abstractmethod
    def add_columns(self, ref: TableRef, fields: Sequence[pa.Field]) -> None:
        """Add nullable columns to a table."""

    @abc.abstractmethod
    def drop_table(self, ref: TableRef) -> None:
        """Drop a table if it exists."""

    @abc.abstractmethod
    def load_arrow(self, ref: TableRef, data: pa.Table | pa.RecordBatchReader, *, replace: bool = False) -> int:
        """Append (or replace with) Arrow data; the table is created from its schema if missing."""

    @abc.abstractmethod
    def load_parquet(self, ref: TableRef, uris: Sequence[str], *, replace: bool = True) -> int:
        """Load Parquet files (``gs://`` URIs or local paths) into a table; rows loaded."""

    @abc.abstractmethod
    def merge(
        self,
        spec: MergeSpec,
        *,
        extra_statements: Sequence[str] = (),
        before: Sequence[str] = (),
        prelude: Sequence[str] = (),
    ) -> MergeResult:
        """Merge ``spec.source`` into ``spec.target``; extra statements run in the same transaction.

        ``before`` holds schema changes (``ALTER TABLE``, ``CREATE TABLE``) that the merge
        needs: inside the transaction where the backend allows DDL there (DuckDB), just
        before it where it does not (BigQuery). ``prelude`` holds data statements that run
        first inside the transaction (writing the rows the merge then reads).
        """

    @abc.abstractmethod
    def staged_parquet(
        self,
        ref: TableRef,
        uris: Sequence[str],
        *,
        source_file_column: str | None = None,
        generations: Sequence[int | None] | None = None,
    ) -> AbstractContextManager[pa.Schema]:
        """Parquet files readable as table ``ref`` inside the block, then removed; yields its schema.

        With ``source_file_column`` each row also carries the URI of the file it came from.
        A file that is missing or not Parquet fails with a terminal error naming it.
        """

    @abc.abstractmethod
    def query(self, sql: str) -> pa.Table:
        """Run a read-only query and return its rows."""

    @abc.abstractmethod
    def query_batches(self, sql: str, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Run a read-only query and stream its rows."""

    @abc.abstractmethod
    def execute(self, statements: str | Sequence[str]) -> None:
        """Run statements that change data; several run in one transaction."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def scalar(self, sql: str) -> object:
        """The first column of the first row of a query, or None."""
        table = self.query(sql)
        if table.num_rows == 0:
            return None
        return table.column(0)[0].as_py()
