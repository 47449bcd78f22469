"""The simulator's HTTP API (Flask): REST data API, OAuth, SOAP login, Bulk 2.0, admin.

Every path answers in Salesforce's shapes, malformed input included: REST errors are
``[{"message", "errorCode"}]`` arrays, OAuth errors ``{"error", "error_description"}``, SOAP
faults envelopes. Data API requests pass, in order: version check, session check, fault
injection, the daily limit; every data API response carries ``Sforce-Limit-Info``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import duckdb
from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from sfpipe_simulator import rules
from sfpipe_simulator.cursors import QueryTimeout, batch_size_from_header
from sfpipe_simulator.errors import ApiError, OAuthError, SoapFault, invalid_session, not_found
from sfpipe_simulator.faults import query_timeout_error
from sfpipe_simulator.ids import is_valid_id, to18
from sfpipe_simulator.metadata import ObjectDef, describe_global, describe_object, get_object
from sfpipe_simulator.runtime import Runtime, parse_version, versions
from sfpipe_simulator.soql import SoqlError
from sfpipe_simulator.soql_compile import compile_soql
from sfpipe_simulator.store import json_value

log = logging.getLogger(__name__)

JSON = "application/json;charset=UTF-8"
SUBREQUEST = "sfpipe.subrequest"
BATCH_LIMIT = 25
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_BODY = 64 * 1024 * 1024
MAX_URI = 16_384
"""Salesforce refuses request URIs longer than about 16 KiB (414): a REST query of a very wide object."""
COMPOSITE_LIMIT = 25
COMPOSITE_QUERIES = 5
UNKNOWN_FIELD = {"name": "Hologram__c", "type": "hologram", "label": "Hologram", "nillable": True,
                 "calculated": False, "length": 0, "custom": True, "createable": False, "updateable": False,
                 "filterable": False}  # fmt: skip
"""What describe adds when the ``unknown_type`` fault is on: a field of a type no client knows."""
_UNSET = object()
RESOURCES = (
    "tooling", "metadata", "eclair", "folders", "prechatForms", "contact-tracing", "jsonxform", "chatter",
    "tabs", "appMenu", "quickActions", "queryAll", "commerce", "wave", "iot", "analytics", "search",
    "identity", "composite", "parameterizedSearch", "fingerprint", "theme", "nouns", "event",
    "serviceTemplates", "recent", "connect", "licensing", "limits", "process", "async-queries", "query",
    "match-engine", "emailConnect", "compactLayouts", "knowledgeManagement", "sobjects", "actions",
    "support",
)


def dumps(value: Any) -> bytes:
    """Compact JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=json_value).encode()


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(dumps(value), status=status, mimetype=None, content_type=JSON, headers=headers)


def runtime() -> Runtime:
    """The runtime of the app serving this request."""
    from flask import current_app

    rt: Runtime = current_app.config["SFPIPE_RUNTIME"]
    return rt


def instance_url() -> str:
    """The base URL clients reach this simulator at."""
    rt = runtime()
    if rt.public_url:
        return rt.public_url.rstrip("/")
    return request.host_url.rstrip("/")


def bearer_token() -> str | None:
    """The token of ``Authorization: Bearer …`` (or Salesforce's older ``OAuth …``)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in {"bearer", "oauth"} and token.strip():
        return token.strip()
    return None


def read_json() -> Any:
    """The request body as JSON, or a Salesforce-shaped parse error."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body is empty: expected a JSON object")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character in the request body: {exc}") from None


# --------------------------------------------------------------------------- data API

data = Blueprint("data", __name__, url_prefix="/services/data/<version>")


@data.url_value_preprocessor
def data_api_preprocess(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Version, session, injected faults, daily limit — in that order, before any data API route.

    Subrequests of a composite batch skip faults and the limit: the batch counted as one call.
    """
    rt = runtime()
    g.version = parse_version(str((values or {}).pop("version", "")))
    uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
    if len(uri) > MAX_URI:
        raise ApiError(414, "URI_TOO_LONG", f"The request URI is {len(uri):,} characters long; at most "
                       f"{MAX_URI:,} are accepted. Send fewer fields per query, or use Bulk API 2.0.")  # fmt: skip
    token = bearer_token()
    session = rt.auth.check(token)
    if request.environ.get(SUBREQUEST):
        g.session = session
        return
    fate = rt.faults.next_fate()
    if fate.delay_seconds:
        time.sleep(fate.delay_seconds)
    if fate.expire_session and token:
        rt.auth.revoke(token)
        raise invalid_session()
    if fate.error is not None:
        raise fate.error
    rt.limits.consume()
    g.session = session


@data.after_request
def limit_header(response: Response) -> Response:
    """Every data API response carries the API usage."""
    response.headers["Sforce-Limit-Info"] = runtime().limits.header()
    return response


def resolve_object(name: str) -> ObjectDef:
    """An sObject by name, or Salesforce's answer to an unknown type."""
    obj = get_object(name)
    if obj is None or not runtime().store.has_object(obj.name):
        raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}' is not "
                       "supported.")  # fmt: skip
    return obj


def record_id(obj: ObjectDef, value: str) -> str:
    """A record Id from the URL, normalised to 18 characters, or 404."""
    if not (is_valid_id(value) or (len(value) == 15 and value.isalnum())) or to18(value)[:3] != obj.key_prefix:
        raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {value}")
    return to18(value)


def origin() -> str:
    """The change origin of a write made through this request."""
    return f"com/salesforce/api/rest/{g.version}"


@data.get("")
def resources() -> Response:
    """The version root: the resources it offers."""
    base = f"/services/data/v{g.version}"
    names = RESOURCES
    body = {name: f"{base}/{name}" for name in names}
    body["jobs"] = f"{base}/jobs"
    return json_response(body)


@data.get("/limits")
def limits() -> Response:
    """``GET /limits``."""
    return json_response(runtime().limits.snapshot())


@data.get("/sobjects")
def sobjects() -> Response:
    """Describe global."""
    return json_response(describe_global(g.version, frozenset(runtime().store.objects)))


@data.get("/sobjects/<name>/describe")
def describe(name: str) -> Response:
    """One object's describe."""
    obj = resolve_object(name)
    body = describe_object(obj.name, g.version)
    if runtime().faults.config.breaks("unknown_type", obj.name):
        body = {**body, "fields": [*body["fields"], UNKNOWN_FIELD]}
    return json_response(body)


@data.get("/sobjects/<name>")
def sobject_info(name: str) -> Response:
    """An object's basic information."""
    obj = resolve_object(name)
    full = describe_object(obj.name, g.version)
    summary = {k: v for k, v in full.items() if k not in {"fields", "childRelationships", "recordTypeInfos",
                                                          "actionOverrides", "namedLayoutInfos", "supportedScopes"}}
    return json_response({"objectDescribe": summary, "recentItems": []})


@data.post("/sobjects/<name>")
def create_record(name: str) -> Response:
    """Create a record: 201 with ``{id, success, errors}``."""
    rt = runtime()
    obj = resolve_object(name)
    values = rules.coerce(obj, read_json(), creating=True)
    with rt.store.transaction(origin(), g.session.user_id) as tx:
        new_id = rules.create(tx, obj, values)
    return json_response({"id": new_id, "success": True, "errors": []}, 201,
                         {"Location": f"/services/data/v{g.version}/sobjects/{obj.name}/{new_id}"})  # fmt: skip


@data.get("/sobjects/<name>/<rid>")
def read_record(name: str, rid: str) -> Response:
    """A record by Id (``?fields=`` narrows it), or the updated / deleted windows."""
    rt = runtime()
    obj = resolve_object(name)
    if rid in {"updated", "deleted"}:
        return changed_records(obj, rid)
    ident = record_id(obj, rid)
    fields_param = request.args.get("fields")
    if fields_param is not None:
        names = [f.strip() for f in fields_param.split(",") if f.strip()]
        bad = [n for n in names if not _FIELD_NAME.match(n)]
        if not names or bad:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{(bad or [''])[0]}' on sobject of type {obj.name}")
    else:
        names = [f.name for f in obj.fields]
    exists, deleted = rt.store.exists(obj, ident)
    if not exists:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if deleted:
        raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
    compiled = _compile(f"SELECT {', '.join(names)} FROM {obj.name} WHERE Id = '{ident}'", include_deleted=True)
    with rt.store.reader() as cur:
        row = cur.execute(compiled.sql, compiled.params).fetchone()
    if row is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return Response(row[0].encode(), 200, content_type=JSON)


@data.patch("/sobjects/<name>/<rid>")
def update_record(name: str, rid: str) -> Response:
    """Update a record: 204, no body."""
    rt = runtime()
    obj = resolve_object(name)
    ident = record_id(obj, rid)
    if not obj.updateable:
        raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be updated: {obj.label}")
    values = rules.coerce(obj, read_json(), creating=False)
    with rt.store.transaction(origin(), g.session.user_id) as tx:
        rules.update(tx, obj, ident, values)
    return Response(status=204)


@data.delete("/sobjects/<name>/<rid>")
def delete_record(name: str, rid: str) -> Response:
    """Delete a record (to the recycle bin): 204, no body."""
    rt = runtime()
    obj = resolve_object(name)
    ident = record_id(obj, rid)
    with rt.store.transaction(origin(), g.session.user_id) as tx:
        rules.delete(tx, obj, ident)
    return Response(status=204)


def _compile(soql: str, include_deleted: bool, mode: str = "json", bulk: bool = False) -> Any:
    try:
        compiled = compile_soql(soql, include_deleted=include_deleted, today=runtime().clock.today(),
                                version=g.version, mode="csv" if mode == "csv" else "json", bulk=bulk)  # fmt: skip
    except SoqlError as exc:
        raise ApiError(400, exc.code, exc.render()) from None
    check_org_object(compiled.sobject)
    return compiled


def check_org_object(obj: ObjectDef) -> None:
    """A query of an object this org does not have (an optional custom object): Salesforce's INVALID_TYPE."""
    if not runtime().store.has_object(obj.name):
        raise ApiError(400, "INVALID_TYPE", f"sObject type '{obj.name}' is not supported. If you are attempting to "
                       "use a custom object, be sure to append the '__c' after the entity name.")  # fmt: skip


def run_query(soql: str, endpoint: str) -> Response:
    """Run a query and answer its first page (the rest stays behind ``nextRecordsUrl``)."""
    rt = runtime()
    compiled = _compile(soql, include_deleted=endpoint == "queryAll")
    if compiled.kind == "count":
        with rt.store.reader() as cur:
            row = cur.execute(compiled.sql, compiled.params).fetchone()
        return json_response({"totalSize": int(row[0]) if row else 0, "done": True, "records": []})
    batch = batch_size_from_header(request.headers.get("Sforce-Query-Options"))
    try:
        page = rt.cursors.run(rt.store.connection, compiled.sql, compiled.params, batch, endpoint,
                              rt.faults.query_timeout())  # fmt: skip
    except QueryTimeout:
        raise query_timeout_error() from None
    body = page.body(g.version, endpoint)
    if rt.faults.config.breaks("malformed_json", compiled.sobject.name):
        body = body[: len(body) // 2]
    return Response(body, 200, content_type=JSON)


def _query(endpoint: str) -> Response:
    soql = request.args.get("q")
    if soql is None or not soql.strip():
        raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    return run_query(soql, endpoint)


def _more(locator: str) -> Response:
    page, endpoint = runtime().cursors.next(locator)
    return Response(page.body(g.version, endpoint), 200, content_type=JSON)


@data.get("/query")
def query() -> Response:
    """``GET /query?q=``."""
    return _query("query")


@data.get("/queryAll")
def query_all() -> Response:
    """``GET /queryAll?q=`` (soft-deleted rows included)."""
    return _query("queryAll")


@data.get("/query/<locator>")
def query_more(locator: str) -> Response:
    """The next page of a query cursor."""
    return _more(locator)


@data.get("/queryAll/<locator>")
def query_all_more(locator: str) -> Response:
    """The next page of a queryAll cursor."""
    return _more(locator)


def changed_records(obj: ObjectDef, which: str) -> Response:
    """``sobjects/X/updated`` and ``/deleted``: Ids changed in a window (deletes kept 15 days)."""
    from sfpipe_simulator.replication import deleted_records, updated_records

    start, end = request.args.get("start"), request.args.get("end")
    if which == "updated":
        return json_response(updated_records(runtime(), obj, start, end))
    return json_response(deleted_records(runtime(), obj, start, end))


@data.post("/composite/batch")
def composite_batch() -> Response:
    """Up to 25 independent subrequests in one call, each in its own transaction."""
    from flask import current_app

    body = read_json()
    if not isinstance(body, dict) or not isinstance(body.get("batchRequests"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "The body must be an object with a batchRequests array")
    requests_ = body["batchRequests"]
    if not requests_ or len(requests_) > BATCH_LIMIT:
        raise ApiError(400, "INVALID_BATCH_REQUEST", f"A batch holds between 1 and {BATCH_LIMIT} subrequests")
    halt = bool(body.get("haltOnError", False))
    client = current_app.test_client()
    auth = {"Authorization": request.headers.get("Authorization", "")}
    results: list[dict[str, Any]] = []
    halted = False
    for entry in requests_:
        if halted:
            results.append({"statusCode": 412, "result": [{"errorCode": "BATCH_PROCESSING_HALTED",
                                                           "message": "Batch processing halted per request"}]})
            continue
        answer = _subrequest(client, entry, auth)
        answer.pop("headers", None)
        results.append(answer)
        halted = halt and results[-1]["statusCode"] >= 400
    has_errors = any(r["statusCode"] >= 400 for r in results)
    return json_response({"hasErrors": has_errors, "results": results})


_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_QUERY_URL = re.compile(r"/(query|queryAll)(/|\?|$)")


def _resolve(text: str, done: dict[str, Any]) -> str:
    """``@{refId.field[0].name}`` → the value from an earlier subrequest's answer."""

    def value(match: re.Match[str]) -> str:
        current: Any = done.get(match.group(1))
        for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", match.group(2)):
            if current is None:
                break
            current = current.get(step[0]) if step[0] and isinstance(current, dict) else (
                current[int(step[1])] if step[1] and isinstance(current, list) and int(step[1]) < len(current)
                else None)  # fmt: skip
        if current is None:
            raise ApiError(400, "INVALID_REFERENCE", f"Invalid reference specified: {match.group(0)}")
        return str(current)

    return _REFERENCE.sub(value, text)


@data.post("/composite")
def composite() -> Response:
    """Up to 25 subrequests (at most 5 of them queries) in one call that counts once against the limit.

    Later subrequests may refer to earlier answers with ``@{referenceId.field}``. With
    ``allOrNone``, the subrequests after a failure are not run (``PROCESSING_HALTED``); unlike
    Salesforce, writes made before the failure are not rolled back.
    """
    from flask import current_app

    body = read_json()
    entries = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries or len(entries) > COMPOSITE_LIMIT:
        raise ApiError(400, "INVALID_BATCH_REQUEST", f"compositeRequest must hold between 1 and {COMPOSITE_LIMIT} "
                       "subrequests")  # fmt: skip
    if sum(1 for e in entries if isinstance(e, dict) and _QUERY_URL.search(str(e.get("url", "")))) > COMPOSITE_QUERIES:
        raise ApiError(400, "INVALID_BATCH_REQUEST", f"A composite request may hold at most {COMPOSITE_QUERIES} query "
                       "subrequests")  # fmt: skip
    all_or_none = bool(body.get("allOrNone", False))
    client = current_app.test_client()
    auth = {"Authorization": request.headers.get("Authorization", "")}
    done: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    failed = False
    for entry in entries:
        reference = str(entry.get("referenceId", "")) if isinstance(entry, dict) else ""
        if failed and all_or_none:
            out.append({"body": [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back "
                        "since another operation in the same transaction failed."}], "httpHeaders": {},
                        "httpStatusCode": 400, "referenceId": reference})  # fmt: skip
            continue
        try:
            if not isinstance(entry, dict) or not reference or not isinstance(entry.get("url"), str):
                raise ApiError(400, "INVALID_BATCH_REQUEST", "Each subrequest needs a method, a url and a referenceId")
            resolved = dict(entry, url=_resolve(entry["url"], done))
            if "body" in entry:
                resolved["richInput"] = json.loads(_resolve(json.dumps(entry["body"]), done))
            headers = dict(auth)
            extra = entry.get("httpHeaders")
            if isinstance(extra, dict):
                headers.update({str(k): str(v) for k, v in extra.items()})
            result = _subrequest(client, resolved, headers)
        except ApiError as exc:
            result = {"statusCode": exc.status, "result": exc.body()}
        status = int(result["statusCode"])
        done[reference] = result["result"]
        failed = failed or status >= 400
        out.append({"body": result["result"], "httpHeaders": result.get("headers", {}), "httpStatusCode": status,
                    "referenceId": reference})  # fmt: skip
    return json_response({"compositeResponse": out})


def _subrequest(client: Any, entry: Any, auth: dict[str, str]) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not isinstance(entry.get("method"), str):
        return {"statusCode": 400, "result": ApiError(400, "INVALID_BATCH_REQUEST",
                                                      "Each subrequest needs a method and a url").body()}
    method = entry["method"].upper()
    url = entry["url"]
    path = url if url.startswith("/services/data/") else "/services/data/" + url.lstrip("/")
    if method not in {"GET", "POST", "PATCH", "DELETE", "HEAD"} or not path.startswith("/services/data/v"):
        return {"statusCode": 400, "result": ApiError(400, "INVALID_BATCH_REQUEST",
                                                      f"Unsupported subrequest: {method} {url}").body()}
    kwargs: dict[str, Any] = {"headers": auth, "environ_overrides": {SUBREQUEST: True}}
    if "richInput" in entry:
        kwargs["json"] = entry["richInput"]
    response = client.open(path, method=method, **kwargs)
    payload: Any = None
    if response.data:
        try:
            payload = json.loads(response.data)
        except ValueError:
            payload = response.get_data(as_text=True)
    headers = {"Location": response.headers["Location"]} if "Location" in response.headers else {}
    return {"statusCode": response.status_code, "result": payload, "headers": headers}


# --------------------------------------------------------------------------- OAuth and SOAP

oauth = Blueprint("oauth", __name__)


@oauth.post("/services/oauth2/token")
def token() -> Response:
    """``POST /services/oauth2/token``."""
    form = {**request.args.to_dict(), **request.form.to_dict()}
    header = request.headers.get("Authorization", "")
    basic = header[6:].strip() if header.lower().startswith("basic ") else None
    body = runtime().auth.token(form, basic, instance_url())
    return json_response(body, headers={"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"})


@oauth.route("/services/oauth2/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    """The authorization-code flow's first leg (auto-approved)."""
    args = {**request.args.to_dict(), **request.form.to_dict()}
    target = runtime().auth.authorize(args)
    return Response(status=302, headers={"Location": target})


@oauth.route("/services/oauth2/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """OpenID Connect user info."""
    session = runtime().auth.check(bearer_token())
    return json_response(runtime().auth.userinfo(session, instance_url()))


@oauth.route("/id/<org>/<user>", methods=["GET", "POST"])
def identity(org: str, user: str) -> Response:
    """The identity URL of a token's user."""
    rt = runtime()
    session = rt.auth.check(bearer_token() or request.args.get("oauth_token"))
    if org != rt.org_id or user != session.user_id:
        raise ApiError(403, "Bad_Id", "Bad Id: the identity URL does not belong to this session")
    return json_response(rt.auth.userinfo(session, instance_url()))


@oauth.post("/services/oauth2/revoke")
def revoke() -> Response:
    """Revoke a token."""
    value = request.form.get("token") or request.args.get("token")
    if not value:
        raise OAuthError("unsupported_token_type", "this token type is not supported")
    runtime().auth.revoke(value)
    return Response(status=200)


@oauth.post("/services/Soap/u/<version>")
@oauth.post("/services/Soap/u/<version>/<org>")
def soap_login(version: str, org: str | None = None) -> Response:
    """The SOAP partner API ``login``."""
    if not version.replace(".", "", 1).isdigit() or not 20 <= float(version) <= 70:
        raise SoapFault("UNSUPPORTED_API_VERSION", f"Invalid Api version specified on URL: {version}")
    xml = runtime().auth.soap_login(request.get_data(), instance_url(), version)
    return Response(xml, 200, content_type="text/xml; charset=utf-8")


# --------------------------------------------------------------------------- the app


class _TrailingSlash:
    """Salesforce accepts ``/query/`` and ``/query`` alike: strip one trailing slash before routing."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/"):
            environ["PATH_INFO"] = path.rstrip("/") or "/"
        return self.app(environ, start_response)


def create_app(rt: Runtime) -> Flask:
    """The WSGI app of one running org."""
    app = Flask("sfpipe_simulator")
    app.config["SFPIPE_RUNTIME"] = rt
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.url_map.strict_slashes = False
    app.register_blueprint(data)
    app.register_blueprint(oauth)
    from sfpipe_simulator.admin import admin
    from sfpipe_simulator.bulk import bulk_api

    app.register_blueprint(bulk_api)
    app.register_blueprint(admin)

    @app.get("/healthz")
    def healthz() -> Response:
        """Ready once the org is loaded."""
        return json_response({"status": "ok", "org_id": rt.org_id})

    @app.get("/services/data")
    def list_versions() -> Response:
        """``GET /services/data``: served API versions (no session needed)."""
        return json_response(versions())

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        headers = {"Retry-After": "1"} if exc.status in {429, 503} else None
        return json_response(exc.body(), exc.status, headers)

    @app.errorhandler(OAuthError)
    def _oauth_error(exc: OAuthError) -> Response:
        return json_response(exc.body(), exc.status)

    @app.errorhandler(SoapFault)
    def _soap_fault(exc: SoapFault) -> Response:
        return Response(exc.body(), 500, content_type="text/xml; charset=utf-8")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 404:
            return json_response(not_found().body(), 404)
        if status == 405:
            allowed = ",".join(sorted(exc.valid_methods or [])) if hasattr(exc, "valid_methods") else ""
            body = ApiError(405, "METHOD_NOT_ALLOWED",
                            f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}").body()  # fmt: skip
            return json_response(body, 405)
        if status == 413:
            return json_response(ApiError(413, "REQUEST_ENTITY_TOO_LARGE", "The request body is too large").body(),
                                 413)  # fmt: skip
        code = "BAD_REQUEST" if status < 500 else "UNKNOWN_EXCEPTION"
        return json_response(ApiError(status, code, exc.description or exc.name).body(), status)

    @app.errorhandler(duckdb.Error)
    def _store_error(exc: duckdb.Error) -> Response:
        log.exception("store error while serving %s %s", request.method, request.path)
        return json_response(ApiError(500, "UNKNOWN_EXCEPTION", f"An unexpected error occurred: {exc}").body(), 500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error while serving %s %s", request.method, request.path)
        return json_response(ApiError(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.").body(), 500)

    app.wsgi_app = _TrailingSlash(ProxyFix(app.wsgi_app, x_proto=1, x_host=1))  # type: ignore[method-assign]
    return app
