"""The warehouse: BigQuery in the cloud, DuckDB locally, one protocol for both."""

from sfpipe.adapters.warehouse.base import MergeResult, MergeSpec, TableRef, Warehouse

__all__ = ["MergeResult", "MergeSpec", "TableRef", "Warehouse"]
