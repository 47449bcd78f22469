"""The BigQuery backend through the real client, with HTTP captured at the transport."""

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from sfpipe.adapters.warehouse.base import MergeSpec, TableRef
from sfpipe.adapters.warehouse.bigquery.client import BigQueryWarehouse, script
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe.adapters.warehouse.schema import create_table_sql

PROJECT = "sfpipe-prod"
SCHEMA_JSON = {
    "fields": [
        {"name": "Id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "Name", "type": "STRING", "mode": "NULLABLE"},
        {"name": "_version", "type": "TIMESTAMP", "mode": "NULLABLE"},
        {"name": "_commit_number", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "IsDeleted", "type": "BOOLEAN", "mode": "NULLABLE"},
    ]
}


class Recorder(requests.adapters.BaseAdapter):
    """Answers BigQuery's REST calls with canned resources and keeps every request."""

    def __init__(self):
        super().__init__()
        self.requests: list[tuple[str, str, dict]] = []

    def send(self, request, **kwargs):
        body = (
            json.loads(request.body)
            if request.body and request.headers.get("Content-Type", "").startswith("application/json")
            else {}
        )
        self.requests.append((request.method, request.url, body))
        url = request.url.split("?")[0]
        if request.method == "POST" and url.endswith("/queries"):
            payload = {
                "jobComplete": True,
                "jobReference": {"projectId": PROJECT, "jobId": "q1", "location": "EU"},
                "schema": {"fields": [{"name": n, "type": "INTEGER"} for n in ("inserted", "updated", "deleted")]},
                "rows": [{"f": [{"v": "3"}, {"v": "2"}, {"v": "1"}]}],
                "totalRows": "1",
            }
        elif request.method == "POST" and url.endswith("/jobs"):
            payload = {**body, "status": {"state": "DONE"}, "statistics": {"load": {"outputRows": "1000"}}}
            payload["jobReference"] = {**body["jobReference"], "location": "EU"}
        elif request.method == "GET" and "/jobs/" in url:
            payload = {
                "jobReference": {"projectId": PROJECT, "jobId": url.rsplit("/", 1)[-1], "location": "EU"},
                "configuration": {"load": {}},
                "status": {"state": "DONE"},
                "statistics": {"load": {"outputRows": "1000"}},
            }
        elif request.method == "GET" and "/tables/" in url:
            table = url.rsplit("/", 1)[-1]
            payload = {
                "tableReference": {"projectId": PROJECT, "datasetId": "sfpipe_raw", "tableId": table},
                "schema": SCHEMA_JSON,
            }
        else:
            payload = {}
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json"
        response.request = request
        response.url = request.url
        return response

    def close(self):
        pass


@pytest.fixture
def bq():
    recorder = Recorder()
    session = requests.Session()
    session.is_mtls = False
    session.mount("https://", recorder)
    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), _http=session)
    return BigQueryWarehouse(client, location="EU"), recorder


def test_merge_is_one_transaction_with_exact_sql(bq):
    wh, rec = bq
    spec = MergeSpec(TableRef("sfpipe_raw", "account"), TableRef("sfpipe_raw", "_stage_account"))
    result = wh.merge(
        spec, extra_statements=["INSERT INTO `sfpipe_raw.account__changes` SELECT * FROM `sfpipe_raw._stage_account`"]
    )
    assert (result.inserted, result.updated, result.deleted) == (3, 2, 1)
    queries = [body for method, url, body in rec.requests if url.split("?")[0].endswith("/queries")]
    assert len(queries) == 1
    sql = queries[0]["query"]
    assert queries[0]["useLegacySql"] is False
    assert queries[0]["location"] == "EU"
    cols = ["Id", "Name", "_version", "_commit_number", "IsDeleted"]
    assert sql == wh.merge_script(
        spec, cols, ["INSERT INTO `sfpipe_raw.account__changes` SELECT * FROM `sfpipe_raw._stage_account`"]
    )
    assert sql.startswith("BEGIN TRANSACTION;\nCREATE TEMP TABLE _sfpipe_effect AS SELECT")
    assert (
        "MERGE `sfpipe_raw.account` AS t\nUSING (\n  SELECT `Id`, `Name`, `_version`, `_commit_number`, `IsDeleted` FROM `sfpipe_raw._stage_account`"
        in sql
    )
    assert "QUALIFY ROW_NUMBER() OVER (PARTITION BY `Id` ORDER BY `_version` DESC, `_commit_number` DESC) = 1" in sql
    assert (
        "WHEN MATCHED AND (((s.`_version` > t.`_version` OR (t.`_version` IS NULL AND s.`_version` IS NOT NULL))) "
        "OR (s.`_version` IS NOT DISTINCT FROM t.`_version` AND (s.`_commit_number` > t.`_commit_number` "
        "OR (t.`_commit_number` IS NULL AND s.`_commit_number` IS NOT NULL)))) THEN UPDATE SET"
    ) in sql
    assert "WHEN NOT MATCHED THEN INSERT (`Id`, `Name`, `_version`, `_commit_number`, `IsDeleted`)" in sql
    assert "COMMIT TRANSACTION;\nSELECT * FROM _sfpipe_effect;" in sql


def test_load_job_configuration(bq):
    wh, rec = bq
    rows = wh.load_parquet(
        TableRef("sfpipe_raw", "_stage_account"),
        ["gs://lake/salesforce/Account/a.parquet", "gs://lake/salesforce/Account/b.parquet"],
    )
    assert rows == 1000
    inserts = [body for method, url, body in rec.requests if method == "POST" and url.split("?")[0].endswith("/jobs")]
    assert len(inserts) == 1
    load = inserts[0]["configuration"]["load"]
    assert load["sourceUris"] == ["gs://lake/salesforce/Account/a.parquet", "gs://lake/salesforce/Account/b.parquet"]
    assert load["sourceFormat"] == "PARQUET"
    assert load["writeDisposition"] == "WRITE_TRUNCATE"
    assert load["createDisposition"] == "CREATE_IF_NEEDED"
    assert load["destinationTable"] == {"projectId": PROJECT, "datasetId": "sfpipe_raw", "tableId": "_stage_account"}
    assert load["parquetOptions"] == {"enableListInference": True}
    assert inserts[0]["jobReference"]["location"] == "EU"


def test_create_table_ddl_has_partitioning_and_clustering(bq):
    wh, rec = bq
    schema = pa.schema(
        [
            pa.field("Id", pa.string(), nullable=False),
            ("SystemModstamp", pa.timestamp("us", tz="UTC")),
            ("Amount", pa.float64()),
            ("CloseDate", pa.date32()),
        ]
    )
    wh.create_table(TableRef("sfpipe_raw", "opportunity"), schema, partition_by="SystemModstamp", cluster_by=["Id"])
    sql = [body["query"] for _, url, body in rec.requests if url.split("?")[0].endswith("/queries")][0]
    assert sql == (
        "CREATE TABLE IF NOT EXISTS `sfpipe_raw.opportunity` (\n"
        "  `Id` STRING NOT NULL,\n  `SystemModstamp` TIMESTAMP,\n  `Amount` FLOAT64,\n  `CloseDate` DATE\n)\n"
        "PARTITION BY DATE(`SystemModstamp`)\nCLUSTER BY `Id`"
    )


def test_non_gcs_uris_are_rejected(bq):
    wh, _ = bq
    with pytest.raises(Exception, match="only gs:// URIs"):
        wh.load_parquet(TableRef("sfpipe_raw", "x"), ["/tmp/a.parquet"])


def test_same_sql_runs_on_duckdb(tmp_path, bq):
    """The statements sent to BigQuery, transpiled, have the same effect on DuckDB."""
    bq_wh, _ = bq
    duck = DuckDBWarehouse(EmbeddedSession(tmp_path / "w.duckdb"))
    target, stage = TableRef("sfpipe_raw", "account"), TableRef("sfpipe_raw", "_stage_account")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    schema = pa.schema(
        [
            pa.field("Id", pa.string(), nullable=False),
            ("Name", pa.string()),
            ("_version", pa.timestamp("us", tz="UTC")),
            ("_commit_number", pa.int64()),
            ("IsDeleted", pa.bool_()),
        ]
    )
    duck.execute(
        [
            "CREATE SCHEMA IF NOT EXISTS sfpipe_raw",
            create_table_sql(target, schema, partition_by="_version", cluster_by=["Id"], with_options=False),
        ]
    )
    duck.load_arrow(
        stage,
        pa.table(
            {
                "Id": ["a", "a", "b"],
                "Name": ["old", "new", "b"],
                "_version": [t0, t0.replace(hour=1), t0],
                "_commit_number": [0, 0, 0],
                "IsDeleted": [False, False, True],
            },
            schema=schema,
        ),
        replace=True,
    )
    spec = MergeSpec(target, stage)
    statements = bq_wh.merge_script(spec, schema.names).removeprefix("BEGIN TRANSACTION;\n")
    body, report = statements.split("COMMIT TRANSACTION;")
    duck.execute([s for s in body.split(";\n") if s.strip()])
    assert duck.query("SELECT Id, Name, IsDeleted FROM `sfpipe_raw.account` ORDER BY Id").to_pylist() == [
        {"Id": "a", "Name": "new", "IsDeleted": False},
        {"Id": "b", "Name": "b", "IsDeleted": True},
    ]
    assert script(["SELECT 1", "SELECT 2;"]) == "BEGIN TRANSACTION;\nSELECT 1;\nSELECT 2;\nCOMMIT TRANSACTION;"
