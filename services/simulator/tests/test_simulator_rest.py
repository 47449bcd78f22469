"""simple-salesforce and plain HTTPS against an in-process simulator."""

import json

import pytest
import requests

pytestmark = pytest.mark.integration


def test_versions_are_listed_without_a_session(sim):
    response = requests.get(f"{sim.url}/services/data/", verify=sim.verify, timeout=10)
    assert response.status_code == 200
    versions = [v["version"] for v in response.json()]
    assert versions[0] == "31.0" and "59.0" in versions and "62.0" in versions
    assert response.json()[1] == {"label": "Winter '15", "url": "/services/data/v32.0", "version": "32.0"}


@pytest.mark.parametrize("version", ["31.0", "50.0", "57.0", "59.0", "62.0"])
def test_every_supported_version_answers(sf, sim, version):
    from simple_salesforce import Salesforce

    client = Salesforce(instance_url=sim.url, session_id=sim.login(), session=sim.requests_session(), version=version)
    result = client.query("SELECT Id FROM Account LIMIT 1")
    assert result["records"][0]["attributes"]["url"].startswith(f"/services/data/v{version}/sobjects/Account/")


def test_unknown_version_and_path_are_404(http, sim):
    for path in ["/services/data/v30.0/sobjects", "/services/data/v99.0/limits", "/services/data/v59.0/nope",
                 "/services/data/latest/sobjects"]:
        response = http.get(sim.url + path)
        assert response.status_code == 404, path
        assert response.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


def test_query_all_with_and_without_deleted(sf, sim):
    live = sf.query_all("SELECT Id, Name, Account.Name FROM Contact")
    everything = sf.query_all("SELECT Id FROM Contact", include_deleted=True)
    with sim.store.reader() as cur:
        total, deleted = cur.execute("SELECT count(*), count(*) FILTER (WHERE IsDeleted) FROM Contact").fetchone()
    assert deleted > 0
    assert live["totalSize"] == len(live["records"]) == total - deleted
    assert everything["totalSize"] == len(everything["records"]) == total
    assert len({r["Id"] for r in everything["records"]}) == total
    first = live["records"][0]
    assert list(first)[:2] == ["attributes", "Id"]
    assert first["Account"]["attributes"]["type"] == "Account"


def test_pages_follow_next_records_url_under_another_version(http, sim):
    first = http.get(f"{sim.url}/services/data/v59.0/query", params={"q": "SELECT Id FROM Contact"},
                     headers={"Sforce-Query-Options": "batchSize=200"}).json()
    assert first["done"] is False and len(first["records"]) == 200
    url = first["nextRecordsUrl"]
    assert url.startswith("/services/data/v59.0/query/01g")
    locator = url.rsplit("/", 1)[1]
    second = http.get(f"{sim.url}/services/data/v45.0/query/{locator}").json()
    assert second["totalSize"] == first["totalSize"]
    assert {r["Id"] for r in second["records"]}.isdisjoint({r["Id"] for r in first["records"]})


def test_query_all_cursor_and_batch_size_header(http, sim):
    first = http.get(f"{sim.url}/services/data/v59.0/queryAll/", params={"q": "SELECT Id FROM Contact"},
                     headers={"Sforce-Query-Options": "batchSize=300"}).json()
    assert len(first["records"]) == 300
    assert "/queryAll/" in first["nextRecordsUrl"]
    seen = [r["Id"] for r in first["records"]]
    page = first
    while not page["done"]:
        page = http.get(sim.url + page["nextRecordsUrl"]).json()
        assert len(page["records"]) <= 300
        seen += [r["Id"] for r in page["records"]]
    assert len(seen) == len(set(seen)) == first["totalSize"]


def test_cursor_is_a_snapshot_while_writes_happen(sf, http, sim):
    first = http.get(f"{sim.url}/services/data/v59.0/query",
                     params={"q": "SELECT Id, Name FROM Account ORDER BY Id"},
                     headers={"Sforce-Query-Options": "batchSize=200"}).json()
    victim = first["records"][0]["Id"]
    late = [r for r in sf.query("SELECT Id FROM Account ORDER BY Id DESC LIMIT 1")["records"]][0]["Id"]
    created = sf.Account.create({"Name": "Snapshot Test"})["id"]
    sf.Account.update(late, {"Name": "Renamed While Paging"})
    sf.Account.delete(victim)
    records = list(first["records"])
    page = first
    while not page["done"]:
        page = http.get(sim.url + page["nextRecordsUrl"]).json()
        records += page["records"]
    ids = [r["Id"] for r in records]
    assert len(ids) == first["totalSize"]
    assert created not in ids
    assert victim in ids
    assert next(r["Name"] for r in records if r["Id"] == late) != "Renamed While Paging"
    after = {r["Id"] for r in sf.query_all("SELECT Id FROM Account")["records"]}
    assert victim not in after and created in after


def test_describe_global_and_object(sf):
    described = sf.describe()
    names = {o["name"] for o in described["sobjects"]}
    assert {"Account", "Opportunity", "OpportunityLineItem", "UserRole", "Case", "Order"} <= names
    account = sf.Account.describe()
    fields = {f["name"]: f for f in account["fields"]}
    assert account["keyPrefix"] == "001"
    owner = fields["OwnerId"]
    assert owner["type"] == "reference" and owner["referenceTo"] == ["User"] and owner["relationshipName"] == "Owner"
    assert fields["Industry"]["picklistValues"][0]["value"] == "Agriculture"
    assert fields["BillingAddress"]["type"] == "address"
    assert fields["BillingCity"]["compoundFieldName"] == "BillingAddress"
    for key in ("name", "type", "label", "length", "nillable", "filterable", "referenceTo", "relationshipName",
                "calculated", "picklistValues", "soapType", "createable", "updateable"):
        assert key in owner
    opp = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert [v["value"] for v in opp["StageName"]["picklistValues"]][-2:] == ["Closed Won", "Closed Lost"]
    assert {r["childSObject"] for r in account["childRelationships"]} >= {"Contact", "Opportunity", "Case"}


def test_create_read_update_delete(sf, sim):
    created = sf.Opportunity.create({"Name": "CRUD deal", "StageName": "Prospecting", "CloseDate": "2026-06-30",
                                     "Amount": 1000})
    assert created["success"] is True and created["errors"] == [] and created["id"].startswith("006")
    record = sf.Opportunity.get(created["id"])
    assert record["Probability"] == 10 and record["IsClosed"] is False and record["ExpectedRevenue"] == 100
    assert record["FiscalYear"] == 2026 and record["FiscalQuarter"] == 2
    assert sf.Opportunity.update(created["id"], {"StageName": "Closed Won"}) == 204
    won = sf.Opportunity.get(created["id"])
    assert won["IsWon"] is True and won["Probability"] == 100 and won["ForecastCategoryName"] == "Closed"
    assert won["SystemModstamp"] >= record["SystemModstamp"]
    history = sf.query(f"SELECT StageName FROM OpportunityHistory WHERE OpportunityId = '{created['id']}'")
    assert sorted(r["StageName"] for r in history["records"]) == ["Closed Won", "Prospecting"]
    assert sf.Opportunity.delete(created["id"]) == 204
    deleted = sf.query_all(f"SELECT Id, IsDeleted FROM Opportunity WHERE Id = '{created['id']}'", include_deleted=True)
    assert deleted["records"][0]["IsDeleted"] is True


def test_patch_and_delete_answer_204_without_body(http, sim):
    created = http.post(f"{sim.url}/services/data/v59.0/sobjects/Lead/", json={"LastName": "Ng", "Company": "X"})
    assert created.status_code == 201
    lead = created.json()["id"]
    patched = http.patch(f"{sim.url}/services/data/v59.0/sobjects/Lead/{lead}", json={"FirstName": "Al"})
    assert patched.status_code == 204 and patched.content == b""
    got = http.get(f"{sim.url}/services/data/v59.0/sobjects/Lead/{lead}", params={"fields": "Name,Status"}).json()
    assert got["Name"] == "Al Ng" and got["Status"] == "Open - Not Contacted"
    removed = http.delete(f"{sim.url}/services/data/v59.0/sobjects/Lead/{lead[:15]}")
    assert removed.status_code == 204 and removed.content == b""
    again = http.delete(f"{sim.url}/services/data/v59.0/sobjects/Lead/{lead}")
    assert again.status_code == 404 and again.json()[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_line_items_roll_up_to_the_opportunity(http, sf, sim):
    entry = sf.query("SELECT Id, UnitPrice, Pricebook2Id FROM PricebookEntry WHERE Pricebook2.IsStandard = true "
                     "LIMIT 1")["records"][0]
    opp = sf.Opportunity.create({"Name": "Products", "StageName": "Qualification", "CloseDate": "2026-09-01"})["id"]
    sf.OpportunityLineItem.create({"OpportunityId": opp, "PricebookEntryId": entry["Id"], "Quantity": 3})
    sf.OpportunityLineItem.create({"OpportunityId": opp, "PricebookEntryId": entry["Id"], "Quantity": 2,
                                   "UnitPrice": 10.5})
    record = sf.Opportunity.get(opp)
    assert record["Amount"] == round(3 * entry["UnitPrice"] + 21.0, 2)
    assert record["HasOpportunityLineItem"] is True and record["Pricebook2Id"] == entry["Pricebook2Id"]
    refused = http.patch(f"{sim.url}/services/data/v59.0/sobjects/Opportunity/{opp}", json={"Amount": 5})
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_limits_and_limit_header(http, sim):
    response = http.get(f"{sim.url}/services/data/v59.0/limits")
    assert response.status_code == 200
    daily = response.json()["DailyApiRequests"]
    assert daily["Max"] == 1_000_000 and 0 <= daily["Remaining"] < daily["Max"]
    used = int(response.headers["Sforce-Limit-Info"].split("=")[1].split("/")[0])
    assert used == daily["Max"] - daily["Remaining"]
    error = http.get(f"{sim.url}/services/data/v59.0/sobjects/Nope/describe")
    assert "Sforce-Limit-Info" in error.headers


def test_updated_and_deleted_windows(sf, http, sim):
    from datetime import timedelta

    now = sim.runtime.clock.now()
    start = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    end = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    account = sf.Account.create({"Name": "Window"})["id"]
    case = sf.Case.create({"Subject": "gone", "AccountId": account})["id"]
    sf.Case.delete(case)
    sim.runtime.clock.advance(120)  # the windows end at the last whole minute, as Salesforce's do
    updated = http.get(f"{sim.url}/services/data/v59.0/sobjects/Account/updated/",
                       params={"start": start, "end": end}).json()
    assert account in updated["ids"]
    deleted = http.get(f"{sim.url}/services/data/v59.0/sobjects/Case/deleted/",
                       params={"start": start, "end": end}).json()
    assert case in [d["id"] for d in deleted["deletedRecords"]]
    assert {"earliestDateAvailable", "latestDateCovered"} <= set(deleted)
    too_old = http.get(f"{sim.url}/services/data/v59.0/sobjects/Case/deleted/",
                       params={"start": "2001-01-01T00:00:00Z", "end": end})
    assert too_old.status_code == 400 and too_old.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_rest_writes_land_in_the_change_log(sf, sim):
    before = sim.store.changes.latest()
    contact = sf.Contact.create({"LastName": "Logged", "FirstName": "Ann"})["id"]
    sf.Contact.update(contact, {"Title": "CTO"})
    sf.Contact.delete(contact)
    events = [e for e in sim.store.changes.read(before) if contact in e.record_ids]
    assert [e.change_type for e in events] == ["CREATE", "UPDATE", "DELETE"]
    assert events[1].changed_fields == ("LastModifiedDate", "Title")
    assert events[1].values["Title"] == "CTO"
    assert events[0].values["Name"] == "Ann Logged"
    assert all(e.change_origin.startswith("com/salesforce/api/rest/") for e in events)
    numbers = [e.commit_number for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3


def test_daily_limit_is_enforced(tmp_path):
    from sfpipe_simulator.server import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(scale=1_000, api_daily_limit=3, data_dir=tmp_path)) as small:
        session = small.requests_session()
        session.headers["Authorization"] = f"Bearer {small.login()}"
        codes = [session.get(f"{small.url}/services/data/v59.0/limits").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 403, 403]
        refused = session.get(f"{small.url}/services/data/v59.0/sobjects")
        assert refused.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"


MALFORMED = [
    ("GET", "/services/data/v59.0/query", None, {}),
    ("GET", "/services/data/v59.0/query?q=SELEC%20Id", None, {}),
    ("GET", "/services/data/v59.0/query?q=SELECT+Id+FROM+Nope", None, {}),
    ("GET", "/services/data/v59.0/query/01gBOGUS-2000", None, {}),
    ("GET", "/services/data/v59.0/query/not-a-locator", None, {}),
    ("GET", "/services/data/v59.0/query?q=SELECT+Id+FROM+Account", None, {"Sforce-Query-Options": "batchSize=x"}),
    ("GET", "/services/data/v59.0/sobjects/Nope/describe", None, {}),
    ("GET", "/services/data/v59.0/sobjects/Account/123", None, {}),
    ("GET", "/services/data/v59.0/sobjects/Account/0035g00000AbCdEAAA", None, {}),
    ("GET", "/services/data/v59.0/sobjects/Account/0017e0000000001AAA?fields=Nope", None, {}),
    ("GET", "/services/data/v59.0/sobjects/Account/0017e0000000001AAA?fields=Id;DROP", None, {}),
    ("POST", "/services/data/v59.0/sobjects/Account", b"{not json", {"Content-Type": "application/json"}),
    ("POST", "/services/data/v59.0/sobjects/Account", b"", {"Content-Type": "application/json"}),
    ("POST", "/services/data/v59.0/sobjects/Account", b"[1, 2]", {"Content-Type": "application/json"}),
    ("POST", "/services/data/v59.0/sobjects/Account", b'{"Nope": 1}', {}),
    ("POST", "/services/data/v59.0/sobjects/Account", b'{"Name": {"a": 1}}', {}),
    ("POST", "/services/data/v59.0/sobjects/Account", b'{"Name": "x", "NumberOfEmployees": "many"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Account", b'{"Name": "x", "OwnerId": "001000000000000"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Account", b'{"Name": "x", "OwnerId": "0057e0000000999AAA"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Account", b'{"Name": "x", "Industry": "Piracy"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Account", b'{"Industry": "Banking"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Account", b'{"Name": "x", "CreatedDate": "2024-01-01"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Account", b'{"Name": "' + b"x" * 300 + b'"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Contact", b'{"LastName": "x", "Email": "nope"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Opportunity", b'{"Name": "x", "StageName": "Won?", "CloseDate": '
                                                          b'"2026-01-01"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Opportunity", b'{"Name": "x", "StageName": "Prospecting", '
                                                          b'"CloseDate": "soon"}', {}),
    ("POST", "/services/data/v59.0/sobjects/Event", b'{"Subject": "x"}', {}),
    ("POST", "/services/data/v59.0/sobjects/OpportunityHistory", b'{"StageName": "x"}', {}),
    ("PATCH", "/services/data/v59.0/sobjects/Account/0017e0000000001AAA", b'{"Name": null}', {}),
    ("PATCH", "/services/data/v59.0/sobjects/Account/0017e000000zzzzAAA", b'{"Name": "x"}', {}),
    ("PATCH", "/services/data/v59.0/sobjects/Account/0017e0000000001AAA", b'{"IsDeleted": true}', {}),
    ("DELETE", "/services/data/v59.0/sobjects/User/0057e0000000001AAA", None, {}),
    ("PUT", "/services/data/v59.0/sobjects/Account/0017e0000000001AAA", b"{}", {}),
    ("POST", "/services/data/v59.0/query", b"{}", {}),
    ("GET", "/services/data/v59.0/sobjects/Account/updated", None, {}),
    ("GET", "/services/data/v59.0/sobjects/Account/updated?start=yesterday&end=now", None, {}),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), MALFORMED)
def test_malformed_requests_get_salesforce_errors_not_500(http, sim, method, path, body, headers):
    response = http.request(method, sim.url + path, data=body, headers={"Content-Type": "application/json",
                                                                          **headers})
    assert 400 <= response.status_code < 500, response.text
    payload = response.json()
    assert isinstance(payload, list) and set(payload[0]) >= {"message", "errorCode"}, payload
    assert payload[0]["errorCode"].isupper() or payload[0]["errorCode"] == "FeatureNotEnabled"


def test_unauthenticated_and_expired_sessions_get_401(sim):
    session = sim.requests_session()
    for header in [None, "Bearer nope", "Basic abc"]:
        response = session.get(f"{sim.url}/services/data/v59.0/sobjects",
                               headers={"Authorization": header} if header else {})
        assert response.status_code == 401
        assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    token = sim.login()
    ok = session.get(f"{sim.url}/services/data/v59.0/limits", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    sim.runtime.auth.revoke(token)
    expired = session.get(f"{sim.url}/services/data/v59.0/limits", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_simple_salesforce_raises_its_own_errors(sf):
    from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Nope FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("0017e000000zzzzAAA")


def test_record_json_formats(http, sim):
    body = http.get(f"{sim.url}/services/data/v59.0/query",
                    params={"q": "SELECT Id, CreatedDate, CloseDate, Amount, IsWon, Probability FROM Opportunity "
                                 "WHERE Amount != null LIMIT 1"}).json()
    record = body["records"][0]
    assert len(record["CreatedDate"]) == 28 and record["CreatedDate"].endswith(".000+0000")
    assert len(record["CloseDate"]) == 10
    assert isinstance(record["Amount"], float) and isinstance(record["IsWon"], bool)
    raw = http.get(f"{sim.url}/services/data/v59.0/query", params={"q": "SELECT COUNT() FROM Account"})
    assert json.loads(raw.content) == {"totalSize": raw.json()["totalSize"], "done": True, "records": []}


def test_idle_sessions_expire(tmp_path):
    import time

    from sfpipe_simulator.server import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(scale=1_000, session_seconds=1, data_dir=tmp_path)) as small:
        session = small.requests_session()
        session.headers["Authorization"] = f"Bearer {small.login()}"
        assert session.get(f"{small.url}/services/data/v59.0/limits").status_code == 200
        time.sleep(1.3)
        expired = session.get(f"{small.url}/services/data/v59.0/limits")
        assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
