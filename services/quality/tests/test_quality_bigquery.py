"""The gcp path: GX on BigQuery through sqlalchemy-bigquery, on the warehouse's own client.

BigQuery cannot run here, so these tests pin what would be sent: the engine's URL and
client, the dialect GX sees, and the SQL of every custom check and of GX's own
aggregate and sample queries, compiled for BigQuery.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlglot
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from sfpipe.adapters.warehouse.bigquery.client import BigQueryWarehouse
from sfpipe_quality import suites as registry
from sfpipe_quality.datasource import connection_for
from sfpipe_quality.spec import BATCH, Catalog
from sfpipe_quality.suites import raw
from sfpipe_quality.suites.context import ObjectWindow, RunFacts


def _warehouse() -> BigQueryWarehouse:
    client = bigquery.Client(project="acme-data", credentials=AnonymousCredentials(), location="EU")
    return BigQueryWarehouse(client, location="EU")


def test_bigquery_datasource_reuses_the_warehouse_client():
    warehouse = _warehouse()

    conn = connection_for(warehouse)

    assert conn.dialect == "bigquery"
    assert conn.connection_string == "bigquery://acme-data?user_supplied_client=true&location=EU"
    assert conn.kwargs["connect_args"]["client"] is warehouse.client


def test_gx_sees_bigquery_and_keeps_one_connection():
    from great_expectations.execution_engine.sqlalchemy_execution_engine import (
        _dialect_requires_persisted_connection,
    )

    conn = connection_for(_warehouse())
    engine = sa.create_engine(conn.connection_string, **conn.kwargs)

    assert engine.dialect.name == "bigquery"
    assert engine.dialect.project_id == "acme-data" or engine.url.host == "acme-data"
    assert _dialect_requires_persisted_connection(connection_string=conn.connection_string)


def test_gx_style_aggregates_and_samples_compile_to_bigquery_pushdown():
    conn = connection_for(_warehouse())
    engine = sa.create_engine(conn.connection_string, **conn.kwargs)
    table = sa.table("opportunity", sa.column("Id"), sa.column("Amount"), schema="sfpipe_raw")
    batch = sa.select(table).where(sa.true()).subquery()

    count = sa.select(sa.func.count()).select_from(batch)
    sample = sa.select(batch.c.Amount).where(batch.c.Amount < 0).limit(20)
    duplicates = sa.select(sa.func.sum(sa.case((sa.func.count().over(partition_by=batch.c.Id) > 1, 1), else_=0)))

    compiled = [str(q.compile(engine, compile_kwargs={"literal_binds": True})) for q in (count, sample, duplicates)]

    assert "`sfpipe_raw`.`opportunity`" in compiled[0]
    assert "count(*)" in compiled[0]
    assert compiled[1].rstrip().endswith("LIMIT 20")
    for sql in compiled:
        sqlglot.parse_one(sql, read="bigquery")


def test_custom_checks_are_sent_to_bigquery_as_written():
    conn = connection_for(_warehouse())
    window = ObjectWindow(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), 5)
    facts = RunFacts("r", {r.name: window for r in raw.OBJECTS}, ("Prospecting",), source_counts={"Opportunity": 10})
    catalog_tables = {
        ref: frozenset({"Id", "IsDeleted", "_hard_deleted", "CreatedDate", "AccountId"})
        for ref in registry.tables(registry.ORDER)
    }
    suite, _ = registry.build("raw", facts, Catalog(catalog_tables))
    check = next(c for c in suite.checks if c.name == "opportunity.accountid_resolves")

    sent = conn.sql(check.kwargs["unexpected_rows_query"])

    assert sent == check.kwargs["unexpected_rows_query"]
    assert "LEFT JOIN `sfpipe_raw.account` AS parent" in sent
    sqlglot.parse_one(sent.replace(BATCH, "(SELECT * FROM `sfpipe_raw.opportunity`)"), read="bigquery")
    reconcile, _ = registry.build("reconcile", facts, Catalog(catalog_tables))
    (table,) = reconcile.tables
    assert conn.sql(table.query or "") == (
        "SELECT Id FROM `sfpipe_raw.opportunity` WHERE NOT COALESCE(IsDeleted, FALSE) "
        "AND NOT COALESCE(_hard_deleted, FALSE) AND CreatedDate < TIMESTAMP '2026-11-01T00:00:00+00:00'"
    )
