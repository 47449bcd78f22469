"""The HTTP API's contract: caller checks, input validation, status lookups (no Salesforce needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sfpipe.lake import Manifest, manifest_uri
from sfpipe_extractor.app import ExtractorService, build_extractor, create_app
from sfpipe_extractor.callers import CallerAuth

pytestmark = pytest.mark.integration

TOKEN = {"Authorization": "Bearer local-secret"}


@pytest.fixture
def client(local_settings, object_store):
    service = ExtractorService(local_settings, lambda: build_extractor(local_settings), CallerAuth(token="local-secret"))
    return create_app(service).test_client()


def test_healthz_needs_no_credentials(client):
    assert client.get("/healthz").status_code == 200


def test_runs_need_the_bearer_token(client):
    missing = client.post("/runs", json={})
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert client.post("/runs", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/runs/20260101T000000Z-00000001").status_code == 401


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"{not json", "body", "not valid JSON"),
        (json.dumps({"mode": "sometimes"}).encode(), "body", "mode"),
        (json.dumps({"objects": "Account"}).encode(), "body", "objects"),
        (json.dumps({"objects": ["Account; DROP"]}).encode(), "objects", "not a Salesforce API name"),
        (json.dumps({"run_id": "yesterday"}).encode(), "run_id", "expected one like"),
        (json.dumps({"run_id": "29991231T000000Z-00000001"}).encode(), "run_id", "future"),
        (json.dumps({"colour": "blue"}).encode(), "body", "colour"),
    ],
)
def test_bad_requests_name_the_field(client, body, field, words):
    answer = client.post("/runs", data=body, headers={**TOKEN, "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json["field"] == field
    assert words in answer.json["error"]


def test_unknown_and_malformed_run_ids(client):
    assert client.get("/runs/not-a-run", headers=TOKEN).status_code == 400
    answer = client.get("/runs/20260101T000000Z-00000001", headers=TOKEN)
    assert answer.status_code == 404
    assert "no manifest" in answer.json["error"]


def test_a_finished_run_is_found_through_its_manifest(client, object_store, local_settings):
    run_id = "20260101T000000Z-0000000a"
    manifest = Manifest(run_id=run_id, created_at=datetime(2026, 1, 1, tzinfo=UTC), objects={},
                        failed={"Lead": "boom"}, completed_at=datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    object_store.put_bytes(manifest_uri(local_settings.lake_bucket, run_id), manifest.model_dump_json().encode())
    answer = client.get(f"/runs/{run_id}", headers=TOKEN)
    assert answer.status_code == 200
    assert answer.json["status"] == "partial"
    assert answer.json["failed"] == {"Lead": "boom"}
