"""Fault modes that make incremental syncs miss data, broken answers, the wide object, composite requests."""

from datetime import UTC, datetime, timedelta

import pytest
import requests

from sfpipe_simulator.server import Simulator, SimulatorConfig

pytestmark = pytest.mark.integration


def _config(tmp_path_factory, **extra):
    return SimulatorConfig(seed=21, scale=3_000, data_dir=tmp_path_factory.mktemp("orgfaults"),
                           counts={"Wide__c": 60}, **extra)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with Simulator(_config(tmp_path_factory)) as running:
        yield running


@pytest.fixture
def api(sim):
    session = sim.requests_session()
    session.headers["Authorization"] = f"Bearer {sim.login()}"
    base = f"{sim.url}/services/data/v62.0"

    def call(method, path, **kwargs):
        return session.request(method, base + path, **kwargs)

    return call


@pytest.fixture(autouse=True)
def _clean(sim):
    sim.admin.clear_faults()
    yield
    sim.admin.clear_faults()


def _row(sim, sobject, record_id, columns="*"):
    with sim.store.reader() as cur:
        return cur.execute(f'SELECT {columns} FROM "{sobject}" WHERE Id = ?', [record_id]).fetchone()


def test_late_commit_records_carry_an_old_systemmodstamp_and_a_fresh_change_event(sim):
    before = sim.store.changes.latest()
    now = datetime.now(UTC)
    touched = sim.admin.inject_fault("late_commit", 6, age_seconds=3_600)
    ids = [(name, i) for name, records in touched.items() for i in records]
    assert len(ids) == 6
    for name, record_id in ids:
        stamp = _row(sim, name, record_id, "SystemModstamp")[0].replace(tzinfo=UTC)
        assert now - timedelta(seconds=3_700) < stamp < now - timedelta(seconds=3_500)
    events = sim.store.changes.read(before, 100)
    assert {e.record_ids[0] for e in events} >= {i for _, i in ids}
    assert all(e.commit_timestamp > now - timedelta(seconds=60) for e in events)


def test_org_faults_are_deterministic_by_seed(tmp_path_factory):
    picked = []
    for _ in range(2):
        with Simulator(_config(tmp_path_factory)) as fresh:
            picked.append((fresh.admin.inject_fault("hard_delete", 3), fresh.admin.inject_fault("formula_drift", 2)))
    assert picked[0] == picked[1]


def test_formula_drift_changes_the_formula_but_not_the_systemmodstamp(sim, api):
    touched = sim.admin.inject_fault("formula_drift", 1)
    account = touched["Account"][0]
    opportunities = touched["Opportunity"]
    assert opportunities
    industry = _row(sim, "Account", account, "Industry")[0]
    for opp in opportunities:
        formula, stamp = _row(sim, "Opportunity", opp, "Account_Industry__c, SystemModstamp")
        assert formula == industry
        assert stamp < datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=30)
    described = api("GET", "/sobjects/Opportunity/describe").json()
    field = next(f for f in described["fields"] if f["name"] == "Account_Industry__c")
    assert field["calculated"] is True and field["calculatedFormula"] == "TEXT(Account.Industry)"
    assert not field["createable"] and not field["updateable"]


def test_hard_deletes_leave_queryall_and_stay_in_getdeleted(sim, api):
    touched = sim.admin.inject_fault("hard_delete", 4, objects=["Task"])
    ids = touched["Task"]
    assert len(ids) == 4
    quoted = ", ".join(f"'{i}'" for i in ids)
    found = api("GET", "/queryAll", params={"q": f"SELECT Id FROM Task WHERE Id IN ({quoted})"}).json()
    assert found["totalSize"] == 0
    sim.admin.advance_clock(120)  # the replication API covers whole minutes that have passed
    now = datetime.fromisoformat(sim.admin.status()["now"])
    start = (now - timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    listed = api("GET", "/sobjects/Task/deleted/", params={"start": start, "end": end}).json()
    assert set(ids) <= {r["id"] for r in listed["deletedRecords"]}


def test_fault_rates_follow_live_activity(sim):
    before = sim.admin.faults()["injected"]
    sim.admin.set_faults(late_commit_rate=0.5, hard_delete_rate=0.3, formula_drift_rate=0.3, seed=8)
    sim.admin.apply_changes(40)
    after = sim.admin.faults()["injected"]
    for kind in ("late_commit", "hard_delete", "formula_drift"):
        assert after.get(kind, 0) > before.get(kind, 0)


def test_bad_injections_are_refused(sim):
    for body in ({"kind": "meteor", "count": 1}, {"kind": "late_commit", "count": 0},
                 {"kind": "hard_delete", "objects": ["User"]}, {"kind": "late_commit", "objects": ["Nope"]}):
        response = requests.post(f"{sim.url}/admin/faults/inject", json=body, verify=sim.verify,
                                 headers={"Authorization": f"Bearer {sim.config.admin_token}"}, timeout=30)
        assert response.status_code == 400, body


# ---- broken answers (for clients' error paths) ---------------------------------------------


def test_malformed_json_page(sim, api):
    sim.admin.set_faults(malformed_json_objects=["Account"])
    page = api("GET", "/query", params={"q": "SELECT Id, Name FROM Account"})
    assert page.status_code == 200
    with pytest.raises(ValueError):
        page.json()
    assert api("GET", "/query", params={"q": "SELECT Id FROM Contact LIMIT 2"}).json()["totalSize"] == 2


def test_unknown_field_type_in_describe(sim, api):
    sim.admin.set_faults(unknown_type_objects=["Case"])
    fields = api("GET", "/sobjects/Case/describe").json()["fields"]
    assert fields[-1]["type"] == "hologram"


def _job(api, query):
    job = api("POST", "/jobs/query", json={"operation": "queryAll", "query": query})
    assert job.status_code == 200, job.text
    job_id = job.json()["id"]
    for _ in range(200):
        if api("GET", f"/jobs/query/{job_id}").json()["state"] == "JobComplete":
            return job_id
    raise AssertionError("job did not complete")


def test_truncated_csv_chunk(sim, api):
    sim.admin.set_faults(truncated_csv_objects=["Contact"])
    job_id = _job(api, "SELECT Id, LastName FROM Contact")
    page = api("GET", f"/jobs/query/{job_id}/results", params={"maxRecords": 200})
    rows = page.content.count(b"\n") - 1
    assert int(page.headers["Sforce-NumberOfRecords"]) == 200 > rows
    assert page.content.endswith(b"\n")


def test_connection_dropped_mid_body_once_per_job(sim, api):
    sim.admin.set_faults(dropped_connection_objects=["Lead"])
    job_id = _job(api, "SELECT Id, LastName FROM Lead")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api("GET", f"/jobs/query/{job_id}/results", params={"maxRecords": 300})
    again = api("GET", f"/jobs/query/{job_id}/results", params={"maxRecords": 300})
    assert again.content.count(b"\n") == 301


def test_bulk_refuses_an_unsupported_object(sim, api):
    sim.admin.set_faults(bulk_unsupported_objects=["OpportunityHistory"])
    job = api("POST", "/jobs/query", json={"operation": "query", "query": "SELECT Id FROM OpportunityHistory"})
    assert job.status_code == 400
    assert job.json()[0]["errorCode"] == "INVALIDENTITY"
    assert "not supported by the Bulk API" in job.json()[0]["message"]
    assert api("GET", "/query", params={"q": "SELECT COUNT() FROM OpportunityHistory"}).status_code == 200


# ---- the wide object, the URL limit, composite requests ------------------------------------------


def test_wide_object_field_list_exceeds_the_url_limit(sim, api):
    fields = [f["name"] for f in api("GET", "/sobjects/Wide__c/describe").json()["fields"]]
    assert len(fields) > 800
    query = "SELECT " + ", ".join(fields) + " FROM Wide__c"
    too_long = api("GET", "/queryAll", params={"q": query})
    assert too_long.status_code == 414
    assert too_long.json()[0]["errorCode"] == "URI_TOO_LONG"
    half = "SELECT " + ", ".join(fields[:300]) + " FROM Wide__c"
    assert api("GET", "/queryAll", params={"q": half}).json()["totalSize"] == 60
    job_id = _job(api, query)
    page = api("GET", f"/jobs/query/{job_id}/results")
    assert page.content.split(b"\n", 1)[0].count(b",") == len(fields) - 1


def test_objects_the_org_does_not_have_are_unknown(tmp_path_factory):
    with Simulator(SimulatorConfig(seed=2, scale=1_000, data_dir=tmp_path_factory.mktemp("plain"))) as plain:
        session = plain.requests_session()
        session.headers["Authorization"] = f"Bearer {plain.login()}"
        base = f"{plain.url}/services/data/v62.0"
        names = {o["name"] for o in session.get(f"{base}/sobjects").json()["sobjects"]}
        assert "Wide__c" not in names and "Account" in names
        assert session.get(f"{base}/sobjects/Wide__c/describe").status_code == 404
        refused = session.get(f"{base}/query", params={"q": "SELECT Id FROM Wide__c"})
        assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_TYPE"
        assert "Wide__c" not in plain.admin.status()["counts"]


def test_composite_counts_once_and_resolves_references(sim, api):
    used = sim.admin.status()["api_requests_used"]
    body = {"compositeRequest": [
        {"method": "GET", "url": "/services/data/v62.0/queryAll?q=SELECT+COUNT()+FROM+Account", "referenceId": "n"},
        {"method": "GET", "url": "/services/data/v62.0/query?q=SELECT+Id+FROM+Account+ORDER+BY+Id+LIMIT+1",
         "referenceId": "first"},
        {"method": "GET", "url": "/services/data/v62.0/sobjects/Account/@{first.records[0].Id}?fields=Name",
         "referenceId": "name"},
        {"method": "GET", "url": "/services/data/v62.0/sobjects/Nope/describe", "referenceId": "bad"},
    ]}
    answer = api("POST", "/composite", json=body).json()["compositeResponse"]
    assert [a["httpStatusCode"] for a in answer] == [200, 200, 200, 404]
    assert answer[0]["body"]["totalSize"] == sim.store.count("Account")
    assert answer[2]["body"]["Name"]
    assert sim.admin.status()["api_requests_used"] == used + 1
    too_many = {"compositeRequest": [{"method": "GET", "referenceId": f"q{i}",
                                      "url": "/services/data/v62.0/query?q=SELECT+Id+FROM+Account+LIMIT+1"}
                                     for i in range(6)]}
    assert api("POST", "/composite", json=too_many).status_code == 400
    halted = {"allOrNone": True, "compositeRequest": [body["compositeRequest"][3], body["compositeRequest"][0]]}
    statuses = [a["httpStatusCode"] for a in api("POST", "/composite", json=halted).json()["compositeResponse"]]
    assert statuses == [404, 400]
