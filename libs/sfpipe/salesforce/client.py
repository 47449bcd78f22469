"""The Salesforce API client that the extractor, reconciliation and the CDC gap repair share.

One ``requests.Session`` (pooled, keep-alive) per client; one method, :meth:`classify`,
turns every HTTP answer into a value or an error that says whether a retry helps
(429 / 5xx / dropped connections transient, other 4xx fatal, malformed bodies fatal with
the URL and what was expected). Around it :meth:`SalesforceClient.request` logs in
lazily, logs in again when a session expires mid-run, retries transient failures with
exponential backoff and full jitter, and tracks the org's daily API usage from
``Sforce-Limit-Info`` so that a run stops before it eats the org's whole budget.

Results stream: REST query pages are yielded one ``nextRecordsUrl`` at a time, Bulk API 2.0
results one ``maxRecords`` chunk at a time; nothing here holds a whole object.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Literal

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError

from sfpipe.config import Settings, get_settings
from sfpipe.salesforce import soql
from sfpipe.salesforce.auth import (
    TOKEN_PATH,
    Authenticator,
    ClientCredentials,
    JwtBearer,
    PasswordLogin,
    Token,
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

try:  # orjson parses query pages about twice as fast; the standard library is the fallback
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

    _DecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - orjson is installed with the project
    import json

    def _loads(data: bytes) -> Any:
        return json.loads(data)

    _DecodeError = (json.JSONDecodeError, UnicodeDecodeError)

log = logging.getLogger(__name__)

Expect = Literal["json", "bytes", "stream", "none"]

_API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Salesforce answers REQUEST_LIMIT_EXCEEDED both for the daily budget (fatal) and for too
# many concurrent long requests (which pass once others finish).
_CONCURRENT_LIMIT = re.compile(r"concurrent", re.IGNORECASE)
_BULK_DONE = "JobComplete"
COMPOSITE_LIMIT = 25
COMPOSITE_QUERIES = 5
"""Salesforce's composite resource: 25 subrequests per call, at most 5 of them queries; one API call."""
_BULK_FAILED = frozenset({"Failed", "Aborted"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    attempts: int = 8
    base_seconds: float = 0.5
    cap_seconds: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full-jitter exponential backoff, never shorter than the server's ``Retry-After``."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** max(attempt - 1, 0)))
        wait = random.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap_seconds))
        return wait


@dataclass(frozen=True)
class ApiUsage:
    """The org's daily API requests, as the last response's ``Sforce-Limit-Info`` said."""

    used: int
    limit: int

    @property
    def share(self) -> float:
        """Used share of the daily limit (0 when the limit is unknown)."""
        return self.used / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class RawResponse:
    """A body read in full and the headers that describe it (Bulk results)."""

    content: bytes
    headers: Mapping[str, str]
    url: str


class StreamedResponse:
    """A 2xx answer whose body is still on the wire: read it (as a file) and close it."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.headers: Mapping[str, str] = response.headers
        self.url = response.url
        response.raw.decode_content = True
        self.stream: IO[bytes] = response.raw  # type: ignore[assignment]  # urllib3 HTTPResponse is a binary file

    def close(self) -> None:
        """Release the connection (or drop it, when the body was not read to the end)."""
        self.response.close()


@dataclass
class BulkResultStream:
    """One chunk of a Bulk API 2.0 job's CSV results, to be read as a stream."""

    job_id: str
    records: int
    locator: str | None
    body: StreamedResponse = field(repr=False)

    @property
    def stream(self) -> IO[bytes]:
        """The CSV text as a binary file."""
        return self.body.stream

    def close(self) -> None:
        """Release the connection."""
        self.body.close()


@dataclass(frozen=True)
class QueryPage:
    """One page of a REST query."""

    records: list[dict[str, Any]]
    total_size: int
    done: bool
    next_url: str | None


@dataclass(frozen=True)
class BulkJob:
    """A Bulk API 2.0 query job's status."""

    id: str
    state: str
    error_message: str | None = None
    records_processed: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class BulkPage:
    """One chunk of a Bulk API 2.0 query job's CSV results."""

    job_id: str
    data: bytes
    records: int
    locator: str | None


@dataclass(frozen=True)
class DeletedRecords:
    """What ``sobjects/X/deleted`` answered for a time range."""

    records: list[tuple[str, datetime | None]]
    earliest_available: datetime | None
    latest_covered: datetime | None


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """``api-usage=25/15000; per-app-api-usage=…`` → ApiUsage(25, 15000)."""
    if not header:
        return None
    match = _API_USAGE.search(header)
    return ApiUsage(int(match.group(1)), int(match.group(2))) if match else None


def parse_sf_datetime(value: Any) -> datetime | None:
    """A Salesforce datetime string (``…+0000``, ``…Z`` or ``…+00:00``) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _snippet(content: bytes, limit: int = 200) -> str:
    text = content[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(content) > limit else "")


def _read_body(response: requests.Response) -> bytes:
    """The whole body; a streamed one (Bulk results) is read in one call, into one buffer.

    ``response.content`` joins 10 KiB pieces: for a 20 MiB result chunk that is two copies and
    thousands of small blocks that keep the heap from shrinking; one ``read`` of the raw stream
    allocates the body once.
    """
    if response.raw is None or getattr(response, "_content_consumed", True):
        return response.content
    try:
        content = response.raw.read(decode_content=True)
    finally:
        response.close()
    return bytes(content or b"")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _error_details(body: Any) -> tuple[str | None, str]:
    """(errorCode, message) from any of Salesforce's error shapes."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        return first.get("errorCode"), str(first.get("message") or first)
    if isinstance(body, dict):
        if "error" in body:  # OAuth: {"error", "error_description"}
            return str(body["error"]), str(body.get("error_description") or body["error"])
        if "errorCode" in body:
            return str(body["errorCode"]), str(body.get("message") or body)
    return None, str(body)[:300] if body is not None else ""


class SalesforceClient:
    """REST, Bulk API 2.0 and OAuth against one org (or the simulator), with retries and limits."""

    def __init__(
        self,
        auth: Authenticator,
        *,
        api_version: str = "62.0",
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 300.0),
        limit_share: float | None = None,
        pool_size: int = 16,
        session: requests.Session | None = None,
    ) -> None:
        self.auth = auth
        self.api_version = api_version.removeprefix("v")
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.limit_share = limit_share
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # passed with every request too: REQUESTS_CA_BUNDLE in the environment would otherwise win
        self.verify = verify
        self.session.verify = verify
        if verify is False:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session.headers["User-Agent"] = "sfpipe"
        self._token: Token | None = None
        self._login_lock = threading.Lock()
        self.usage: ApiUsage | None = None
        self.requests_sent = 0
        self.logins = 0

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> SalesforceClient:
        """A client for the configured org and OAuth flow."""
        settings = settings or get_settings()
        flow = settings.sf_auth_flow
        secret = settings.sf_client_secret.get_secret_value()
        auth: Authenticator
        if flow == "password":
            auth = PasswordLogin(
                settings.sf_login_url,
                settings.sf_client_id,
                secret,
                settings.sf_username or "",
                settings.sf_password.get_secret_value() if settings.sf_password else "",
            )
        elif flow == "jwt":
            key = settings.sf_jwt_key_file.read_text() if settings.sf_jwt_key_file else ""
            auth = JwtBearer(
                settings.sf_login_url, settings.sf_client_id, settings.sf_username or "", key, settings.sf_login_url
            )
        else:
            auth = ClientCredentials(settings.sf_login_url, settings.sf_client_id, secret)
        retry = RetryPolicy(attempts=settings.sf_retry_attempts, base_seconds=settings.sf_backoff_seconds)
        options: dict[str, Any] = {
            "api_version": settings.sf_api_version,
            "verify": settings.sf_verify_tls,
            "retry": retry,
            "limit_share": settings.api_limit_share,
            "pool_size": max(16, settings.extract_concurrency * 3),
        }
        options.update(kwargs)
        return cls(auth, **options)

    # ------------------------------------------------------------------ session

    @property
    def token(self) -> Token:
        """The current token, logging in on first use."""
        token = self._token
        if token is None:
            with self._login_lock:
                if self._token is None:
                    self._token = self._login()
                token = self._token
        return token

    @property
    def instance_url(self) -> str:
        """The org's instance URL, from the login."""
        return self.token.instance_url

    @property
    def org_id(self) -> str | None:
        """The org id, from the identity URL of the login."""
        return self.token.org_id

    def login(self) -> Token:
        """Log in now (again), replacing the current token."""
        with self._login_lock:
            self._token = self._login()
            return self._token

    def _login(self) -> Token:
        url = self.auth.login_url.rstrip("/") + TOKEN_PATH
        body = self._send("POST", url, data=self.auth.token_form(), authenticated=False)
        self.logins += 1
        token = Token.from_response(body, url)
        log.debug("logged in to %s (org %s)", token.instance_url, token.org_id)
        return token

    def _refresh(self, stale: Token) -> None:
        """Log in again unless another thread already replaced the stale token."""
        with self._login_lock:
            if self._token is stale or self._token is None:
                log.info("Salesforce session expired; logging in again")
                self._token = self._login()

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def url(self, path: str) -> str:
        """An absolute URL: as is, instance-relative (``/services/…``), or under the data API version."""
        if path.startswith(("https://", "http://")):
            return path
        if path.startswith("/"):
            return self.instance_url + path
        return f"{self.instance_url}/services/data/v{self.api_version}/{path}"

    def check_limit(self) -> None:
        """Refuse to send a request that would pass sfpipe's share of the daily API limit."""
        usage = self.usage
        if self.limit_share is None or usage is None or not usage.limit:
            return
        if usage.used + 1 > self.limit_share * usage.limit:
            msg = (
                f"stopping before the daily API limit: {usage.used} of {usage.limit} requests used, "
                f"and sfpipe may use {self.limit_share:.0%} (SFPIPE_API_LIMIT_SHARE)"
            )
            raise ApiLimitError(msg, error_code="API_LIMIT_SHARE")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        expect: Expect = "json",
    ) -> Any:
        """One authenticated API call: classified, retried when transient, re-logged-in on 401."""
        return self._send(method, path, params=params, json_body=json_body, headers=headers, expect=expect)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        expect: Expect = "json",
        authenticated: bool = True,
    ) -> Any:
        attempt = 0
        relogins = 0
        while True:
            request_headers = dict(headers or {})
            token = None
            if authenticated:
                token = self.token
                request_headers["Authorization"] = f"Bearer {token.access_token}"
                self.check_limit()
            url = self.url(path) if authenticated else path
            try:
                try:
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        json=json_body,
                        data=data,
                        headers=request_headers,
                        timeout=self.timeout,
                        verify=self.verify,
                        stream=expect in ("bytes", "stream"),
                    )
                    self.requests_sent += 1
                    return self.classify(response, expect)
                except requests.exceptions.SSLError as exc:
                    msg = f"{method} {url}: TLS failed ({exc}); check SFPIPE_SF_VERIFY_TLS (true, false or a CA file)"
                    raise SalesforceFatalError(msg, url=url) from exc
                except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                    msg = f"{method} {url} failed or was cut off in transit: {exc}"
                    raise SalesforceTransientError(msg, url=url) from exc
            except SessionExpiredError:
                if token is None or relogins >= 2:
                    raise
                relogins += 1
                self._refresh(token)
            except SalesforceTransientError as exc:
                attempt += 1
                if attempt >= self.retry.attempts:
                    msg = f"{exc} (gave up after {attempt} attempts)"
                    raise SalesforceTransientError(
                        msg, status=exc.status, error_code=exc.error_code, url=exc.url
                    ) from exc
                wait = self.retry.delay(attempt, exc.retry_after)
                log.info("transient Salesforce error (%s); retry %d in %.2fs", exc, attempt, wait)
                time.sleep(wait)

    def classify(self, response: requests.Response, expect: Expect = "json") -> Any:
        """The one place an HTTP answer becomes a value or an error that says whether to retry.

        - 2xx: the parsed body (``json``), the full body with headers (``bytes``), or None;
          a body that does not parse is a fatal :class:`BadResponseError` naming the URL.
        - 401 ``INVALID_SESSION_ID`` (or any 401 on an API call): :class:`SessionExpiredError`.
        - 408, 429, 5xx, ``REQUEST_LIMIT_EXCEEDED`` for concurrency, a body cut off in
          transit: :class:`SalesforceTransientError` (retried with backoff).
        - ``QUERY_TIMEOUT``: :class:`QueryTimeoutError` (the caller narrows the query).
        - ``REQUEST_LIMIT_EXCEEDED`` for the daily budget: :class:`ApiLimitError`.
        - an OAuth refusal: :class:`AuthError`; any other 4xx: :class:`SalesforceFatalError`.
        """
        url = response.url
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self.usage = usage
        status = response.status_code
        if 200 <= status < 300 and expect == "stream":
            return StreamedResponse(response)
        try:
            content = _read_body(response)
        except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, ProtocolError) as exc:
            msg = f"the answer to {url} was cut off in transit: {exc}"
            raise SalesforceTransientError(msg, status=status, url=url) from exc
        if 200 <= status < 300:
            if expect == "none":
                return None
            if expect == "bytes":
                return RawResponse(content, response.headers, url)
            if not content:
                msg = f"{url} answered {status} with an empty body; expected JSON"
                raise BadResponseError(msg, status=status, url=url)
            try:
                return _loads(content)
            except _DecodeError as exc:
                msg = f"{url} answered {status} with malformed JSON ({exc}): {_snippet(content)!r}"
                raise BadResponseError(msg, status=status, url=url) from None
        body: Any = None
        if content:
            try:
                body = _loads(content)
            except _DecodeError:
                body = content[:300].decode("utf-8", errors="replace")
        code, message = _error_details(body)
        described = f"{response.request.method if response.request else ''} {url} → {status} {code or ''}: {message}"
        if status == 401 and not url.endswith(TOKEN_PATH):
            raise SessionExpiredError(described, status=status, error_code=code or "INVALID_SESSION_ID", url=url)
        if code == "QUERY_TIMEOUT":
            raise QueryTimeoutError(described, status=status, error_code=code, url=url)
        if code == "REQUEST_LIMIT_EXCEEDED":
            if _CONCURRENT_LIMIT.search(message):
                raise SalesforceTransientError(
                    described, status=status, error_code=code, url=url, retry_after=_retry_after(response)
                )
            raise ApiLimitError(described, status=status, error_code=code, url=url)
        if status in _TRANSIENT_STATUS or status >= 500:
            raise SalesforceTransientError(
                described, status=status, error_code=code, url=url, retry_after=_retry_after(response)
            )
        if url.endswith(TOKEN_PATH):
            raise AuthError(f"Salesforce refused the login: {described}", status=status, error_code=code, url=url)
        raise SalesforceFatalError(described, status=status, error_code=code, url=url)

    # ------------------------------------------------------------------ metadata

    def describe(self, sobject: str) -> dict[str, Any]:
        """``sobjects/X/describe``: the object's fields and their types."""
        body = self.request("GET", f"sobjects/{sobject}/describe")
        if not isinstance(body, dict) or not isinstance(body.get("fields"), list):
            msg = f"describe of {sobject} has no 'fields' list; expected an sObject describe"
            raise BadResponseError(msg, url=self.url(f"sobjects/{sobject}/describe"))
        return body

    def describe_global(self) -> list[dict[str, Any]]:
        """``sobjects``: every object of the org with its capabilities."""
        body = self.request("GET", "sobjects")
        if not isinstance(body, dict) or not isinstance(body.get("sobjects"), list):
            msg = "the sobjects list has no 'sobjects' array"
            raise BadResponseError(msg, url=self.url("sobjects"))
        return list(body["sobjects"])

    def limits(self) -> dict[str, Any]:
        """``limits``: the org's limits, and a fresh reading of the daily API usage."""
        body = self.request("GET", "limits")
        if not isinstance(body, dict):
            msg = "limits answered something other than a JSON object"
            raise BadResponseError(msg, url=self.url("limits"))
        daily = body.get("DailyApiRequests")
        if isinstance(daily, dict) and isinstance(daily.get("Max"), int) and isinstance(daily.get("Remaining"), int):
            self.usage = ApiUsage(daily["Max"] - daily["Remaining"], daily["Max"])
        return body

    # ------------------------------------------------------------------ REST query

    def query_pages(
        self, query: str, *, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[QueryPage]:
        """Pages of a SOQL query, following ``nextRecordsUrl`` one page at a time.

        ``include_deleted`` uses ``queryAll`` so that soft-deleted rows arrive with IsDeleted.
        """
        resource = "queryAll" if include_deleted else "query"
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        where = f"{resource} of {query[:120]!r}"
        page = self._page(self.request("GET", resource, params={"q": query}, headers=headers), where)
        yield page
        while not page.done:
            if not page.next_url:
                msg = f"{where}: page says done=false but has no nextRecordsUrl"
                raise BadResponseError(msg, url=self.url(resource))
            page = self._page(self.request("GET", page.next_url, headers=headers), where)
            yield page

    @staticmethod
    def _page(body: Any, where: str) -> QueryPage:
        if not isinstance(body, dict):
            msg = f"{where}: a query page must be a JSON object, got {type(body).__name__}"
            raise BadResponseError(msg)
        records, done, total = body.get("records"), body.get("done"), body.get("totalSize")
        if not isinstance(records, list) or not isinstance(done, bool) or not isinstance(total, int):
            msg = (
                f"{where}: a query page needs 'records' (list), 'done' (bool) and 'totalSize' (int); "
                f"got keys {sorted(body)}"
            )
            raise BadResponseError(msg)
        next_url = body.get("nextRecordsUrl")
        return QueryPage(records, total, done, next_url if isinstance(next_url, str) and next_url else None)

    def query(self, query: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Records of a SOQL query, one at a time (pages fetched as needed)."""
        for page in self.query_pages(query, include_deleted=include_deleted):
            yield from page.records

    def count(self, sobject: str, where: str = "", *, include_deleted: bool = False) -> int:
        """``SELECT COUNT() FROM X WHERE …``: how many rows a query would return."""
        first = next(self.query_pages(soql.count(sobject, where), include_deleted=include_deleted))
        return first.total_size

    # ------------------------------------------------------------------ Bulk API 2.0

    def create_query_job(self, query: str, *, include_deleted: bool = False) -> BulkJob:
        """``POST jobs/query``: start a Bulk API 2.0 query (``queryAll`` to include deleted rows)."""
        body = self.request(
            "POST",
            "jobs/query",
            json_body={
                "operation": "queryAll" if include_deleted else "query",
                "query": query,
                "contentType": "CSV",
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            },
        )
        return self._job(body, "jobs/query")

    def query_job(self, job_id: str) -> BulkJob:
        """``GET jobs/query/<id>``: a job's state."""
        return self._job(self.request("GET", f"jobs/query/{job_id}"), f"jobs/query/{job_id}")

    def _job(self, body: Any, path: str) -> BulkJob:
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(body.get("state"), str):
            msg = f"{path} answered without a job 'id' and 'state'"
            raise BadResponseError(msg, url=self.url(path))
        processed = body.get("numberRecordsProcessed")
        return BulkJob(
            id=body["id"],
            state=body["state"],
            error_message=body.get("errorMessage") or None,
            records_processed=processed if isinstance(processed, int) else None,
            raw=body,
        )

    def wait_for_query_job(
        self, job_id: str, *, timeout: float = 3600.0, first_poll: float = 0.05, max_poll: float = 10.0
    ) -> BulkJob:
        """Poll a job until ``JobComplete``; ``Failed``, ``Aborted`` or a timeout raise.

        The interval grows with the time already waited (a tenth of it), so that a short job is
        noticed within a fraction of a second and a long one costs a few dozen status calls.
        """
        started = time.monotonic()
        deadline = started + timeout
        while True:
            job = self.query_job(job_id)
            if job.state == _BULK_DONE:
                return job
            if job.state in _BULK_FAILED:
                msg = f"Bulk query job {job_id} ended {job.state}: {job.error_message or 'no error message'}"
                raise BulkJobFailedError(msg, job_id=job_id, url=self.url(f"jobs/query/{job_id}"))
            interval = min(max_poll, max(first_poll, (time.monotonic() - started) / 10))
            if time.monotonic() + interval > deadline:
                self.abort_query_job(job_id)
                msg = f"Bulk query job {job_id} was still {job.state} after {timeout:.0f}s; aborted it"
                raise BulkJobFailedError(msg, job_id=job_id)
            time.sleep(interval)

    def query_job_pages(self, job_id: str, *, max_records: int | None = 50_000) -> Iterator[BulkPage]:
        """A finished job's CSV results, one ``maxRecords`` chunk at a time, via ``Sforce-Locator``."""
        locator: str | None = None
        path = f"jobs/query/{job_id}/results"
        while True:
            params: dict[str, Any] = {}
            if max_records:
                params["maxRecords"] = max_records
            if locator:
                params["locator"] = locator
            raw = self.request("GET", path, params=params, headers={"Accept": "text/csv"}, expect="bytes")
            count_header = raw.headers.get("Sforce-NumberOfRecords")
            if count_header is None or not count_header.strip().isdigit():
                msg = f"{raw.url} has no Sforce-NumberOfRecords header; expected the page's record count"
                raise BadResponseError(msg, url=raw.url)
            next_locator = raw.headers.get("Sforce-Locator")
            if next_locator in (None, "", "null"):
                next_locator = None
            yield BulkPage(job_id, raw.content, int(count_header), next_locator)
            if next_locator is None:
                return
            locator = next_locator

    def open_query_job_results(
        self, job_id: str, *, locator: str | None = None, max_records: int | None = None
    ) -> BulkResultStream:
        """One results chunk of a finished job, unread: the caller streams the CSV (and closes it).

        Its record count (``Sforce-NumberOfRecords``) and the next locator come from the headers,
        so that a reader can check the chunk arrived whole and ask for the next one.
        """
        params: dict[str, Any] = {}
        if max_records:
            params["maxRecords"] = max_records
        if locator:
            params["locator"] = locator
        path = f"jobs/query/{job_id}/results"
        body: StreamedResponse = self.request("GET", path, params=params, headers={"Accept": "text/csv"},
                                              expect="stream")  # fmt: skip
        count_header = body.headers.get("Sforce-NumberOfRecords")
        if count_header is None or not count_header.strip().isdigit():
            body.close()
            msg = f"{body.url} has no Sforce-NumberOfRecords header; expected the chunk's record count"
            raise BadResponseError(msg, url=body.url)
        next_locator = body.headers.get("Sforce-Locator")
        if next_locator in (None, "", "null"):
            next_locator = None
        return BulkResultStream(job_id, int(count_header), next_locator, body)

    def abort_query_job(self, job_id: str) -> None:
        """``PATCH jobs/query/<id>`` to Aborted (best effort)."""
        try:
            self.request("PATCH", f"jobs/query/{job_id}", json_body={"state": "Aborted"})
        except SalesforceFatalError as exc:
            log.warning("could not abort Bulk job %s: %s", job_id, exc)

    def delete_query_job(self, job_id: str) -> None:
        """``DELETE jobs/query/<id>`` once its results are read (best effort)."""
        try:
            self.request("DELETE", f"jobs/query/{job_id}", expect="none")
        except (SalesforceFatalError, SalesforceTransientError) as exc:
            log.warning("could not delete Bulk job %s: %s", job_id, exc)

    def bulk_query(
        self,
        query: str,
        *,
        include_deleted: bool = False,
        max_records: int | None = 50_000,
        timeout: float = 3600.0,
    ) -> Iterator[BulkPage]:
        """Create a Bulk API 2.0 query job, wait for it, and stream its result chunks."""
        job = self.create_query_job(query, include_deleted=include_deleted)
        try:
            self.wait_for_query_job(job.id, timeout=timeout)
            yield from self.query_job_pages(job.id, max_records=max_records)
        finally:
            self.delete_query_job(job.id)

    # ------------------------------------------------------------------ composite

    def composite(self, subrequests: list[tuple[str, str]]) -> list[tuple[int, Any]]:
        """``POST composite``: up to 25 GETs (at most 5 of them queries) in one call that counts once.

        ``subrequests`` are (reference, instance-relative or data-API path with query string);
        the answer is (HTTP status, body) per subrequest, in order. A subrequest's own failure is
        its status, not an exception: the caller decides what it means.
        """
        if not 1 <= len(subrequests) <= COMPOSITE_LIMIT:
            msg = f"a composite request holds 1 to {COMPOSITE_LIMIT} subrequests, got {len(subrequests)}"
            raise ValueError(msg)
        prefix = f"/services/data/v{self.api_version}/"
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {"method": "GET", "referenceId": ref, "url": path if path.startswith("/") else prefix + path}
                for ref, path in subrequests
            ],
        }
        answer = self.request("POST", "composite", json_body=body)
        items = answer.get("compositeResponse") if isinstance(answer, dict) else None
        if not isinstance(items, list) or len(items) != len(subrequests):
            msg = f"composite answered without one compositeResponse entry per subrequest ({len(subrequests)})"
            raise BadResponseError(msg, url=self.url("composite"))
        return [(int(item.get("httpStatusCode") or 0), item.get("body")) for item in items]

    # ------------------------------------------------------------------ replication API

    def deleted(self, sobject: str, start: datetime, end: datetime) -> DeletedRecords:
        """``sobjects/X/deleted``: records deleted in a range (Salesforce keeps about 15 days)."""
        path = f"sobjects/{sobject}/deleted/"
        body = self.request("GET", path, params={"start": start.isoformat(), "end": end.isoformat()})
        if not isinstance(body, dict) or not isinstance(body.get("deletedRecords"), list):
            msg = f"{path} answered without a 'deletedRecords' list"
            raise BadResponseError(msg, url=self.url(path))
        records = [
            (str(item["id"]), parse_sf_datetime(item.get("deletedDate")))
            for item in body["deletedRecords"]
            if isinstance(item, dict) and "id" in item
        ]
        return DeletedRecords(
            records,
            parse_sf_datetime(body.get("earliestDateAvailable")),
            parse_sf_datetime(body.get("latestDateCovered")),
        )

    def updated(self, sobject: str, start: datetime, end: datetime) -> list[str]:
        """``sobjects/X/updated``: ids of records changed in a range."""
        path = f"sobjects/{sobject}/updated/"
        body = self.request("GET", path, params={"start": start.isoformat(), "end": end.isoformat()})
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
            msg = f"{path} answered without an 'ids' list"
            raise BadResponseError(msg, url=self.url(path))
        return [str(i) for i in body["ids"]]
