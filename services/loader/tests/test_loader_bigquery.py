"""The warehouse-native path on BigQuery: the real client, every request captured at the HTTP transport.

The lake is fake-gcs-server (the loader checks each file there first); BigQuery answers
from canned resources. The test asserts the exact load-job configurations, the union of
the per-file staging tables, the schema DDL and the MERGE transaction.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from sfpipe.adapters.warehouse.bigquery.client import BigQueryWarehouse
from sfpipe.events import StorageObject
from sfpipe_loader.lakegen import ObjectPart, records
from sfpipe_loader.loader import Loader
from sfpipe_loader.testing import stamps

PROJECT = "sfpipe-prod"
FIELDS = [("Id", "id"), ("Name", "string"), ("IsDeleted", "boolean"), ("Amount", "currency"), ("SystemModstamp", "datetime")]
PARQUET_SCHEMA = [
    {"name": "Id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "Name", "type": "STRING", "mode": "NULLABLE"},
    {"name": "IsDeleted", "type": "BOOLEAN", "mode": "NULLABLE"},
    {"name": "Amount", "type": "FLOAT", "mode": "NULLABLE"},
    {"name": "SystemModstamp", "type": "TIMESTAMP", "mode": "NULLABLE"},
]


class BigQueryRecorder(requests.adapters.BaseAdapter):
    """BigQuery's REST API as far as the loader uses it; every request kept in order."""

    def __init__(self):
        super().__init__()
        self.requests: list[tuple[str, str, dict]] = []
        self.tables: dict[str, list[dict]] = {}

    def _answer(self, request, payload, status=200):
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json"
        response.request = request
        response.url = request.url
        return response

    def send(self, request, **kwargs):
        body = json.loads(request.body) if request.body else {}
        self.requests.append((request.method, request.url.split("?")[0], body))
        url = request.url.split("?")[0]
        if request.method == "POST" and url.endswith("/queries"):
            query = body["query"]
            if "SELECT * FROM _sfpipe_effect" in query:
                return self._answer(request, self._rows(["inserted", "updated", "deleted"], ["3", "0", "0"]))
            if "CREATE OR REPLACE TABLE" in query:
                table = re.search(r"CREATE OR REPLACE TABLE `sfpipe_raw\.(\w+)`", query).group(1)
                self.tables[table] = [*PARQUET_SCHEMA, {"name": "_source_file", "type": "STRING", "mode": "NULLABLE"}]
            return self._answer(request, {"jobComplete": True, "jobReference": {"projectId": PROJECT, "jobId": "q", "location": "EU"}, "totalRows": "0", "rows": [], "schema": {"fields": []}})
        if request.method == "POST" and url.endswith("/jobs"):
            load = body["configuration"]["load"]
            self.tables[load["destinationTable"]["tableId"]] = PARQUET_SCHEMA
            payload = {**body, "status": {"state": "DONE"}, "statistics": {"load": {"outputRows": "2"}}}
            payload["jobReference"] = {**body["jobReference"], "location": "EU"}
            return self._answer(request, payload)
        if request.method == "GET" and "/jobs/" in url:
            job_id = url.rsplit("/", 1)[-1]
            return self._answer(request, {"jobReference": {"projectId": PROJECT, "jobId": job_id, "location": "EU"}, "configuration": {"load": {}}, "status": {"state": "DONE"}, "statistics": {"load": {"outputRows": "2"}}})
        if request.method == "GET" and "/tables/" in url:
            table = url.rsplit("/", 1)[-1]
            if table not in self.tables:
                return self._answer(request, {"error": {"code": 404, "message": f"Not found: Table {table}", "status": "NOT_FOUND"}}, 404)
            return self._answer(request, {"tableReference": {"projectId": PROJECT, "datasetId": "sfpipe_raw", "tableId": table}, "schema": {"fields": self.tables[table]}})
        if request.method == "DELETE" and "/tables/" in url:
            self.tables.pop(url.rsplit("/", 1)[-1], None)
            response = self._answer(request, {})
            response.status_code = 204
            response._content = b""
            return response
        return self._answer(request, {"datasetReference": {"projectId": PROJECT, "datasetId": "x"}})

    @staticmethod
    def _rows(names, values):
        return {
            "jobComplete": True,
            "jobReference": {"projectId": PROJECT, "jobId": "q", "location": "EU"},
            "schema": {"fields": [{"name": n, "type": "INTEGER"} for n in names]},
            "rows": [{"f": [{"v": v} for v in values]}],
            "totalRows": "1",
        }

    def close(self):
        pass


@pytest.fixture
def bigquery_warehouse():
    recorder = BigQueryRecorder()
    session = requests.Session()
    session.is_mtls = False
    session.mount("https://", recorder)
    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), _http=session)
    return BigQueryWarehouse(client, location="EU"), recorder


def normalise(sql: str) -> str:
    sql = re.sub(r"_stage_opportunity_[0-9a-f]{8}", "_stage_opportunity_T", sql)
    return re.sub(r"TIMESTAMP '[^']+'", "TIMESTAMP 'NOW'", sql)


@pytest.mark.integration
def test_load_jobs_union_ddl_and_merge_are_exactly_these(bigquery_warehouse, local_settings, lake, object_store):
    wh, rec = bigquery_warehouse
    tables = [
        records("Opportunity", np.array([1, 2]), stamps(1, 1), fields=FIELDS),
        records("Opportunity", np.array([2, 3]), stamps(2, 2), fields=FIELDS),
    ]
    manifest, uri = lake.run({"Opportunity": ObjectPart(tables, fields=FIELDS)})
    loader = Loader(local_settings, wh, object_store, None)
    stat = object_store.stat(uri)
    obj = StorageObject(bucket=lake.bucket, name=uri.split("/", 3)[3], generation=stat.generation)
    result = loader.load_object_event(obj, obj.key)
    assert result.ok, result.summary()
    assert (result.objects["Opportunity"].inserted, result.objects["Opportunity"].path) == (3, "warehouse")
    files = [f.uri for f in manifest.objects["Opportunity"].files]

    # one load job per file, all with the same configuration, into part tables of one staging table
    loads = [body for method, url, body in rec.requests if method == "POST" and url.endswith("/jobs")]
    assert len(loads) == 2
    for i, (body, file) in enumerate(zip(loads, files, strict=True)):
        config = body["configuration"]["load"]
        table = config.pop("destinationTable")
        assert re.fullmatch(rf"_stage_opportunity_[0-9a-f]{{8}}__{i}", table["tableId"])
        assert (table["projectId"], table["datasetId"]) == (PROJECT, "sfpipe_raw")
        assert config == {
            "sourceUris": [file],
            "sourceFormat": "PARQUET",
            "writeDisposition": "WRITE_TRUNCATE",
            "createDisposition": "CREATE_IF_NEEDED",
            "schemaUpdateOptions": None,
            "parquetOptions": {"enableListInference": True},
        }
        assert body["jobReference"]["location"] == "EU"

    queries = [normalise(body["query"]) for method, url, body in rec.requests if url.endswith("/queries")]
    [union] = [q for q in queries if q.startswith("CREATE OR REPLACE TABLE")]
    [ddl] = [q for q in queries if q.startswith("CREATE TABLE IF NOT EXISTS `sfpipe_raw.opportunity`")]
    [merge] = [q for q in queries if q.startswith("BEGIN TRANSACTION;\nINSERT INTO `sfpipe_raw.opportunity__changes`")]
    cols = "`Id`, `Name`, `IsDeleted`, `Amount`, `SystemModstamp`"
    assert union == (
        "CREATE OR REPLACE TABLE `sfpipe_raw._stage_opportunity_T` AS\n"
        f"SELECT {cols}, '{files[0]}' AS `_source_file` FROM `sfpipe_raw._stage_opportunity_T__0`\n"
        "UNION ALL\n"
        f"SELECT {cols}, '{files[1]}' AS `_source_file` FROM `sfpipe_raw._stage_opportunity_T__1`"
    )
    sf = "  `Id` STRING,\n  `Name` STRING,\n  `IsDeleted` BOOL,\n  `Amount` FLOAT64,\n  `SystemModstamp` TIMESTAMP,\n"
    meta = (
        "  `_run_id` STRING,\n  `_ingested_at` TIMESTAMP,\n  `_source` STRING,\n  `_version` TIMESTAMP,\n"
        "  `_commit_number` INT64,\n  `_hard_deleted` BOOL"
    )
    assert ddl == (
        f"CREATE TABLE IF NOT EXISTS `sfpipe_raw.opportunity` (\n{sf}{meta}\n)\nCLUSTER BY `Id`;\n"
        f"CREATE TABLE IF NOT EXISTS `sfpipe_raw.opportunity__changes` (\n{sf}{meta},\n  `_source_file` STRING\n)\n"
        "PARTITION BY DATE(`_ingested_at`)\nCLUSTER BY `Id`"
    )
    run = manifest.run_id
    merged = "`Id`, `Name`, `IsDeleted`, `Amount`, `SystemModstamp`, `_run_id`, `_ingested_at`, `_source`, `_version`, `_commit_number`, `_hard_deleted`"
    newer = (
        "(((s.`_version` > t.`_version` OR (t.`_version` IS NULL AND s.`_version` IS NOT NULL))) OR "
        "(s.`_version` IS NOT DISTINCT FROM t.`_version` AND (s.`_commit_number` > t.`_commit_number` OR "
        "(t.`_commit_number` IS NULL AND s.`_commit_number` IS NOT NULL))))"
    )
    tomb = "COALESCE(s.`_hard_deleted`, FALSE)"
    updates = ",\n    ".join(
        f"`{c}` = IF({tomb}, COALESCE(s.`{c}`, t.`{c}`), s.`{c}`)"
        for c in ["Name", "IsDeleted", "Amount", "SystemModstamp", "_run_id", "_ingested_at", "_source", "_version", "_commit_number", "_hard_deleted"]
    )
    key = re.escape(obj.key)
    assert re.fullmatch(key, obj.key)
    rows = (
        f"(\n  SELECT {cols}, '{run}' AS `_run_id`, TIMESTAMP 'NOW' AS `_ingested_at`, 'batch' AS `_source`, "
        "CAST(`SystemModstamp` AS TIMESTAMP) AS `_version`, 0 AS `_commit_number`, FALSE AS `_hard_deleted`, "
        "`_source_file` AS `_source_file`\n"
        "  FROM `sfpipe_raw._stage_opportunity_T`\n  WHERE `Id` IS NOT NULL\n  ) AS _rows"
    )
    this_load = (
        f"(\n  SELECT {merged} FROM (\n  SELECT {merged} FROM `sfpipe_raw.opportunity__changes`\n"
        f"  WHERE `_ingested_at` = TIMESTAMP 'NOW' AND `_run_id` = '{run}'\n  ) AS _rows\n)"
    )
    expected = (
        "BEGIN TRANSACTION;\n"
        f"INSERT INTO `sfpipe_raw.opportunity__changes` ({merged}, `_source_file`)\n"
        f"SELECT {merged}, `_source_file` FROM {rows}\n"
        f"  WHERE `Id` NOT IN (SELECT `Id` FROM {rows} GROUP BY `Id` HAVING COUNT(*) > 1)\n"
        "UNION ALL\n"
        f"SELECT {merged}, `_source_file` FROM {rows}\n"
        f"  WHERE `Id` IN (SELECT `Id` FROM {rows} GROUP BY `Id` HAVING COUNT(*) > 1)\n"
        "  QUALIFY ROW_NUMBER() OVER (PARTITION BY `Id` ORDER BY `_version` DESC, `_commit_number` DESC, `_source_file` DESC) = 1;\n"
        "CREATE TEMP TABLE _sfpipe_effect AS SELECT\n"
        f"  COUNTIF((t.`Id` IS NULL AND NOT {tomb})) AS inserted,\n"
        f"  COUNTIF(t.`Id` IS NOT NULL AND {newer}) AS updated,\n"
        f"  COUNTIF(COALESCE(s.`IsDeleted`, FALSE) AND ((t.`Id` IS NULL AND NOT {tomb}) OR "
        f"(t.`Id` IS NOT NULL AND {newer} AND NOT COALESCE(t.`IsDeleted`, FALSE)))) AS deleted\n"
        f"FROM {this_load} AS s\n"
        "LEFT JOIN `sfpipe_raw.opportunity` AS t ON t.`Id` = s.`Id`;\n"
        "MERGE `sfpipe_raw.opportunity` AS t\n"
        f"USING {this_load} AS s\n"
        "ON t.`Id` = s.`Id`\n"
        f"WHEN MATCHED AND {newer} THEN UPDATE SET\n    {updates}\n"
        f"WHEN NOT MATCHED AND NOT {tomb} THEN INSERT ({merged})\n"
        f"  VALUES ({', '.join('s.' + c for c in merged.split(', '))});\n"
        "DELETE FROM `sfpipe_ops.processed_events` WHERE `key` = "
    )
    assert merge.startswith(expected), merge
    assert f"'{obj.key}::Opportunity'" in merge
    assert merge.endswith("COMMIT TRANSACTION;\nSELECT * FROM _sfpipe_effect;")
    # the staging tables are dropped, the parts and the union
    deleted = [url.rsplit("/", 1)[-1] for method, url, _ in rec.requests if method == "DELETE"]
    assert sorted(re.sub(r"[0-9a-f]{8}", "T", d) for d in deleted) == [
        "_stage_opportunity_T", "_stage_opportunity_T__0", "_stage_opportunity_T__1"
    ]
    # the order: both load jobs, the union, the DDL, then the one transaction
    def position(predicate):
        return next(i for i, (method, url, body) in enumerate(rec.requests) if predicate(method, url, normalise(body.get("query", ""))))

    loads_done = max(i for i, (method, url, _) in enumerate(rec.requests) if method == "POST" and url.endswith("/jobs"))
    union_at = position(lambda m, u, q: q.startswith("CREATE OR REPLACE TABLE"))
    ddl_at = position(lambda m, u, q: q.startswith("CREATE TABLE IF NOT EXISTS `sfpipe_raw.opportunity`"))
    merge_at = position(lambda m, u, q: q.startswith("BEGIN TRANSACTION;\nINSERT INTO `sfpipe_raw.opportunity__changes`"))
    assert loads_done < union_at < ddl_at < merge_at

def test_schema_widening_ddl_runs_before_the_transaction():
    from sfpipe.adapters.warehouse.base import TableRef
    from sfpipe.adapters.warehouse.schema import alter_column_type_sql

    assert alter_column_type_sql(TableRef("sfpipe_raw", "opportunity"), pa.field("FiscalYear", pa.float64())) == (
        "ALTER TABLE `sfpipe_raw.opportunity` ALTER COLUMN `FiscalYear` SET DATA TYPE FLOAT64"
    )

