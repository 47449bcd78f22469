"""The Salesforce client's single functions: the response classifier, limits, backoff, SOQL, tokens.

The request loop (re-login, retries, paging, Bulk) is exercised against a scripted local
HTTPS-less server below and against the simulator in the extractor's integration tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from sfpipe.errors import TerminalError, TransientError
from sfpipe.salesforce import soql
from sfpipe.salesforce.auth import ClientCredentials, PasswordLogin, Token
from sfpipe.salesforce.client import (
    ApiUsage,
    RawResponse,
    RetryPolicy,
    SalesforceClient,
    parse_limit_info,
    parse_sf_datetime,
)
from sfpipe.salesforce.errors import (
    ApiLimitError,
    AuthError,
    BadResponseError,
    BulkJobFailedError,
    QueryTimeoutError,
    SalesforceFatalError,
    SalesforceTransientError,
    SessionExpiredError,
)


def response(status: int, body: Any = None, *, raw: bytes | None = None, headers: dict[str, str] | None = None,
             url: str = "https://org.example/services/data/v62.0/query") -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    resp.headers.update(headers or {})
    resp.url = url
    resp.request = requests.Request("GET", url).prepare()
    return resp


@pytest.fixture
def client() -> SalesforceClient:
    return SalesforceClient(ClientCredentials("https://login.example", "id", "secret"))


# ---------------------------------------------------------------- classify


def test_classify_returns_parsed_json_on_success(client):
    assert client.classify(response(200, {"done": True})) == {"done": True}


def test_classify_malformed_json_is_fatal_and_names_the_url(client):
    with pytest.raises(BadResponseError) as err:
        client.classify(response(200, raw=b'{"records": [{"Id": "001'))
    assert isinstance(err.value, TerminalError)
    assert "malformed JSON" in str(err.value)
    assert "/query" in str(err.value)


def test_classify_empty_body_where_json_expected_is_fatal(client):
    with pytest.raises(BadResponseError, match="empty body"):
        client.classify(response(200, raw=b""))


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_classify_rate_limits_and_server_errors_are_transient(client, status):
    with pytest.raises(SalesforceTransientError) as err:
        client.classify(response(status, [{"message": "busy", "errorCode": "SERVER_UNAVAILABLE"}]))
    assert isinstance(err.value, TransientError)
    assert err.value.status == status


def test_classify_reads_retry_after(client):
    with pytest.raises(SalesforceTransientError) as err:
        client.classify(response(429, raw=b"slow down", headers={"Retry-After": "7"}))
    assert err.value.retry_after == 7.0


@pytest.mark.parametrize("status", [400, 403, 404, 405])
def test_classify_other_client_errors_are_fatal(client, status):
    with pytest.raises(SalesforceFatalError) as err:
        client.classify(response(status, [{"message": "no such column 'Foo'", "errorCode": "INVALID_FIELD"}]))
    assert not isinstance(err.value, TransientError)
    assert err.value.error_code == "INVALID_FIELD"
    assert "no such column" in str(err.value)


def test_classify_expired_session(client):
    with pytest.raises(SessionExpiredError) as err:
        client.classify(response(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]))
    assert err.value.error_code == "INVALID_SESSION_ID"


def test_classify_query_timeout(client):
    with pytest.raises(QueryTimeoutError):
        client.classify(response(400, [{"message": "Your query request was running for too long.",
                                        "errorCode": "QUERY_TIMEOUT"}]))


def test_classify_daily_limit_is_fatal_but_concurrency_limit_is_transient(client):
    with pytest.raises(ApiLimitError):
        client.classify(response(403, [{"message": "TotalRequests Limit exceeded.",
                                        "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))
    with pytest.raises(SalesforceTransientError):
        client.classify(response(403, [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                                        "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))


def test_classify_oauth_refusal_is_an_auth_error(client):
    with pytest.raises(AuthError, match="invalid_client"):
        client.classify(response(400, {"error": "invalid_client", "error_description": "invalid client credentials"},
                                 url="https://login.example/services/oauth2/token"))


def test_classify_bytes_keeps_headers_and_tracks_limits(client):
    raw = client.classify(response(200, raw=b'"Id"\n"001"\n', headers={"Sforce-Locator": "null",
                                                                      "Sforce-Limit-Info": "api-usage=10/100"}),
                          expect="bytes")
    assert isinstance(raw, RawResponse)
    assert raw.content == b'"Id"\n"001"\n'
    assert raw.headers["Sforce-Locator"] == "null"
    assert client.usage == ApiUsage(10, 100)


# ---------------------------------------------------------------- small functions


def test_parse_limit_info():
    assert parse_limit_info("api-usage=25/15000; per-app-api-usage=17/250(appName=sample)") == ApiUsage(25, 15000)
    assert parse_limit_info(None) is None
    assert parse_limit_info("something else") is None
    assert ApiUsage(25, 100).share == 0.25


def test_limit_share_stops_before_the_budget_is_spent(client):
    client.limit_share = 0.5
    client.usage = ApiUsage(49, 100)
    client.check_limit()
    client.usage = ApiUsage(50, 100)
    with pytest.raises(ApiLimitError, match="50 of 100"):
        client.check_limit()


def test_backoff_is_jittered_exponential_and_respects_retry_after():
    policy = RetryPolicy(attempts=5, base_seconds=1.0, cap_seconds=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 100  # jitter
    assert policy.delay(1, retry_after=5.0) >= 5.0


def test_token_from_response_reads_identity():
    token = Token.from_response(
        {"access_token": "00D000000000001!AQ", "instance_url": "https://org.example/",
         "id": "https://login.example/id/00D000000000001AAA/005000000000001AAA", "issued_at": "1700000000000"},
        "url",
    )
    assert token.instance_url == "https://org.example"
    assert token.org_id == "00D000000000001AAA"
    assert token.user_id == "005000000000001AAA"
    assert token.issued_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert "00D000000000001!AQ" not in repr(token)
    with pytest.raises(BadResponseError, match="access_token"):
        Token.from_response({"instance_url": "https://x"}, "url")


def test_password_flow_appends_security_token():
    form = PasswordLogin("https://l", "cid", "sec", "user@example.com", "pw", "TOKEN").token_form()
    assert form["grant_type"] == "password"
    assert form["password"] == "pwTOKEN"


def test_parse_sf_datetime_forms():
    expected = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    for text in ("2024-01-02T03:04:05.000+0000", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05+00:00"):
        assert parse_sf_datetime(text) == expected
    assert parse_sf_datetime("garbage") is None


def test_soql_windows_are_whole_seconds_and_half_open():
    start = datetime(2024, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    end = datetime(2024, 1, 2, 4, 0, 0, 1, tzinfo=UTC)
    assert soql.window_clause("SystemModstamp", start, end) == (
        "SystemModstamp >= 2024-01-02T03:04:05Z AND SystemModstamp < 2024-01-02T04:00:01Z"
    )
    assert soql.window_clause("SystemModstamp", None, end) == "SystemModstamp < 2024-01-02T04:00:01Z"
    assert soql.select("Account", ["Id", "Name"], "Name = 'x'") == "SELECT Id, Name FROM Account WHERE Name = 'x'"
    assert soql.count("Account") == "SELECT COUNT() FROM Account"
    assert soql.quote("O'Brien\\") == "'O\\'Brien\\\\'"
    with pytest.raises(ValueError, match="time zone"):
        soql.soql_datetime(datetime(2024, 1, 1))


# ---------------------------------------------------------------- the request loop, against a scripted server


class Script:
    """Answers queued per path; records what was asked."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.tokens = 0

    def add(self, path: str, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers.setdefault(path, []).append((status, headers or {}, raw))


@pytest.fixture
def scripted() -> Iterator[tuple[Script, str]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            script.seen.append((self.command, self.path, dict(self.headers)))
            if parsed.path == "/services/oauth2/token":
                script.tokens += 1
                status, headers, raw = 200, {}, json.dumps({
                    "access_token": f"00D!token{script.tokens}", "instance_url": f"http://{self.headers['Host']}",
                    "id": "http://x/id/00D000000000001AAA/005000000000001AAA", "token_type": "Bearer",
                    "issued_at": "1700000000000"}).encode()
            else:
                queue = script.answers.get(parsed.path) or []
                status, headers, raw = queue.pop(0) if queue else (404, {}, b'[{"errorCode":"NOT_FOUND","message":"no"}]')
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_client(base: str, **kwargs: Any) -> SalesforceClient:
    return SalesforceClient(ClientCredentials(base, "id", "secret"),
                            retry=RetryPolicy(attempts=4, base_seconds=0.001, cap_seconds=0.01), **kwargs)


def test_expired_session_logs_in_again_and_repeats_the_call(scripted):
    script, base = scripted
    q = "/services/data/v62.0/query"
    script.add(q, 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    script.add(q, 200, {"totalSize": 0, "done": True, "records": []})
    client = make_client(base)
    pages = list(client.query_pages("SELECT Id FROM Account"))
    assert pages[0].done and script.tokens == 2
    auths = [h.get("Authorization") for _, p, h in script.seen if p.startswith(q)]
    assert auths == ["Bearer 00D!token1", "Bearer 00D!token2"]


def test_transient_errors_are_retried_then_given_up(scripted):
    script, base = scripted
    q = "/services/data/v62.0/query"
    script.add(q, 503, b"down")
    script.add(q, 429, b"slow", {"Retry-After": "0"})
    script.add(q, 200, {"totalSize": 3, "done": False, "records": [{"Id": "1"}],
                        "nextRecordsUrl": "/services/data/v62.0/query/01g-1"})
    script.add("/services/data/v62.0/query/01g-1", 200, {"totalSize": 3, "done": True, "records": [{"Id": "2"}]},
               {"Sforce-Limit-Info": "api-usage=7/1000"})
    client = make_client(base)
    assert [r["Id"] for r in client.query("SELECT Id FROM Account")] == ["1", "2"]
    assert client.usage == ApiUsage(7, 1000)
    for _ in range(4):
        script.add(q, 500, b"boom")
    with pytest.raises(SalesforceTransientError, match="gave up after 4 attempts"):
        list(client.query("SELECT Id FROM Account"))


def test_bulk_results_follow_the_locator_until_null(scripted):
    script, base = scripted
    jobs = "/services/data/v62.0/jobs/query"
    script.add(jobs, 200, {"id": "750x", "state": "UploadComplete"})
    script.add(f"{jobs}/750x", 200, {"id": "750x", "state": "InProgress"})
    script.add(f"{jobs}/750x", 200, {"id": "750x", "state": "JobComplete", "numberRecordsProcessed": 3})
    script.add(f"{jobs}/750x/results", 200, b'"Id"\n"1"\n"2"\n', {"Sforce-NumberOfRecords": "2", "Sforce-Locator": "abc"})
    script.add(f"{jobs}/750x/results", 200, b'"Id"\n"3"\n', {"Sforce-NumberOfRecords": "1", "Sforce-Locator": "null"})
    script.add(f"{jobs}/750x", 204, b"")
    client = make_client(base)
    pages = list(client.bulk_query("SELECT Id FROM Account", include_deleted=True, max_records=2))
    assert [(p.records, p.locator) for p in pages] == [(2, "abc"), (1, None)]
    results = [urlparse(p) for m, p, _ in script.seen if "/results" in p]
    assert [parse_qs(r.query) for r in results] == [{"maxRecords": ["2"]}, {"maxRecords": ["2"], "locator": ["abc"]}]
    assert ("DELETE", f"{jobs}/750x") in [(m, p) for m, p, _ in script.seen]


def test_failed_bulk_job_raises_with_its_message(scripted):
    script, base = scripted
    jobs = "/services/data/v62.0/jobs/query"
    script.add(jobs, 200, {"id": "750y", "state": "UploadComplete"})
    script.add(f"{jobs}/750y", 200, {"id": "750y", "state": "Failed", "errorMessage": "QUERY_TIMEOUT: too long"})
    client = make_client(base)
    with pytest.raises(BulkJobFailedError, match="QUERY_TIMEOUT: too long"):
        list(client.bulk_query("SELECT Id FROM Account"))


def test_results_without_record_count_are_a_bad_response(scripted):
    script, base = scripted
    jobs = "/services/data/v62.0/jobs/query"
    script.add(f"{jobs}/750z/results", 200, b'"Id"\n"1"\n', {"Sforce-Locator": "null"})
    client = make_client(base)
    with pytest.raises(BadResponseError, match="Sforce-NumberOfRecords"):
        list(client.query_job_pages("750z"))


def test_limit_share_stops_a_paging_query(scripted):
    script, base = scripted
    q = "/services/data/v62.0/query"
    script.add(q, 200, {"totalSize": 3, "done": False, "records": [{"Id": "1"}],
                        "nextRecordsUrl": "/services/data/v62.0/query/01g-1"}, {"Sforce-Limit-Info": "api-usage=80/100"})
    client = make_client(base, limit_share=0.8)
    with pytest.raises(ApiLimitError, match="80 of 100"):
        list(client.query("SELECT Id FROM Account"))


def test_deleted_records(scripted):
    script, base = scripted
    script.add("/services/data/v62.0/sobjects/Account/deleted/", 200, {
        "deletedRecords": [{"id": "001A", "deletedDate": "2024-01-02T03:04:05.000+0000"}],
        "earliestDateAvailable": "2023-12-20T00:00:00.000+0000", "latestDateCovered": "2024-01-03T00:00:00.000+0000"})
    client = make_client(base)
    now = datetime.now(UTC)
    result = client.deleted("Account", now - timedelta(days=1), now)
    assert result.records == [("001A", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))]
