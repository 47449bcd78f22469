"""Bulk API 2.0 query jobs through simple-salesforce and plain HTTPS."""

import csv
import io
import time

import pytest

pytestmark = pytest.mark.integration


def _rows(pages):
    return [row for page in pages for row in csv.DictReader(io.StringIO(page, newline=""))]


def _wait(http, sim, job_id, version="59.0"):
    for _ in range(200):
        info = http.get(f"{sim.url}/services/data/v{version}/jobs/query/{job_id}").json()
        if info["state"] in {"JobComplete", "Failed", "Aborted"}:
            return info
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def test_simple_salesforce_bulk2_query_and_query_all(sf):
    soql = "SELECT Id, Name, Description, Account.Name, CreatedDate, IsDeleted FROM Contact"
    live = _rows(sf.bulk2.Contact.query(soql, max_records=300, wait=0.05))
    everything = _rows(sf.bulk2.Contact.query_all(soql, max_records=10_000, wait=0.05))
    rest_live = sf.query_all("SELECT Id FROM Contact")["totalSize"]
    rest_all = sf.query_all("SELECT Id FROM Contact", include_deleted=True)["totalSize"]
    assert len(live) == rest_live and len(everything) == rest_all > rest_live
    assert {r["IsDeleted"] for r in everything} == {"true", "false"}
    assert len({r["Id"] for r in everything}) == len(everything)


def test_embedded_newlines_and_quotes_survive(sf):
    rows = _rows(sf.bulk2.Account.query("SELECT Id, Description FROM Account", max_records=5_000, wait=0.05))
    tricky = [r for r in rows if "\n" in r["Description"] and '"' in r["Description"]]
    assert tricky, "the generated org should contain descriptions with line breaks and quotes"
    sample = tricky[0]
    rest = sf.Account.get(sample["Id"])
    assert rest["Description"] == sample["Description"]


def test_download_writes_every_page(sf, tmp_path):
    results = sf.bulk2.Account.download("SELECT Id, Name FROM Account", path=str(tmp_path), max_records=400,
                                        wait=0.05)
    total = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    assert sum(r["number_of_records"] for r in results) == total
    assert all(r["number_of_records"] <= 400 for r in results)
    ids = []
    for r in results:
        with open(r["file"], newline="") as handle:
            ids += [row["Id"] for row in csv.DictReader(handle)]
    assert len(ids) == len(set(ids)) == total


def test_result_paging_headers(http, sim):
    created = http.post(f"{sim.url}/services/data/v59.0/jobs/query",
                        json={"operation": "query", "query": "SELECT Id, Name FROM Lead"})
    assert created.status_code == 200 and "Sforce-Locator" not in created.headers
    job = created.json()
    assert job["state"] == "UploadComplete" and job["object"] == "Lead" and job["id"].startswith("750")
    info = _wait(http, sim, job["id"])
    assert info["state"] == "JobComplete" and "Sforce-Locator" not in http.get(
        f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}").headers
    total = info["numberRecordsProcessed"]
    seen, locator, pages = [], None, 0
    while True:
        params = {"maxRecords": 100, **({"locator": locator} if locator else {})}
        page = http.get(f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}/results", params=params)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(page.text, newline="")))
        assert int(page.headers["Sforce-NumberOfRecords"]) == len(rows)
        assert page.text.startswith('"Id","Name"\n')
        seen += [r["Id"] for r in rows]
        pages += 1
        locator = page.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert len(seen) == len(set(seen)) == total and pages == -(-total // 100)
    whole = http.get(f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}/results")
    assert whole.headers["Sforce-Locator"] == "null" and int(whole.headers["Sforce-NumberOfRecords"]) == total
    assert http.delete(f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}").status_code == 204
    assert http.get(f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}").status_code == 404


def test_tab_delimiter_and_crlf(http, sim):
    job = http.post(f"{sim.url}/services/data/v59.0/jobs/query",
                    json={"operation": "query", "query": "SELECT Id, Description FROM Account",
                          "columnDelimiter": "TAB", "lineEnding": "CRLF"}).json()
    _wait(http, sim, job["id"])
    page = http.get(f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}/results")
    text = page.content.decode()
    assert text.startswith('"Id"\t"Description"\r\n')
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t"))
    assert len(rows) == int(page.headers["Sforce-NumberOfRecords"])


def test_empty_result_has_header_only(http, sim):
    job = http.post(f"{sim.url}/services/data/v59.0/jobs/query",
                    json={"operation": "query", "query": "SELECT Id FROM Account WHERE Name = 'no such name'"}).json()
    assert _wait(http, sim, job["id"])["numberRecordsProcessed"] == 0
    page = http.get(f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}/results")
    assert page.text == '"Id"\n' and page.headers["Sforce-Locator"] == "null"
    assert page.headers["Sforce-NumberOfRecords"] == "0"


def test_jobs_list_and_abort(http, sim):
    job = http.post(f"{sim.url}/services/data/v59.0/jobs/query",
                    json={"operation": "queryAll", "query": "SELECT Id FROM Task"}).json()
    listed = http.get(f"{sim.url}/services/data/v59.0/jobs/query").json()
    assert job["id"] in [j["id"] for j in listed["records"]] and listed["done"] is True
    aborted = http.patch(f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}", json={"state": "Aborted"})
    if aborted.status_code == 200:
        assert aborted.json()["state"] == "Aborted"
    else:  # it finished first
        assert aborted.json()[0]["errorCode"] == "INVALIDJOBSTATE"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"operation": "insert", "query": "SELECT Id FROM Account"}, "INVALIDJOB"),
        ({"operation": "query"}, "INVALIDJOB"),
        ({"operation": "query", "query": "SELECT Nope FROM Account"}, "INVALID_FIELD"),
        ({"operation": "query", "query": "SELECT COUNT() FROM Account"}, "MALFORMED_QUERY"),
        ({"operation": "query", "query": "SELECT Id FROM Account OFFSET 5"}, "MALFORMED_QUERY"),
        ({"operation": "query", "query": "SELECT BillingAddress FROM Account"}, "FeatureNotEnabled"),
        ({"operation": "query", "query": "SELECT Id FROM Account", "columnDelimiter": "DOT"}, "INVALIDJOB"),
        ({"operation": "query", "query": "SELECT Id FROM Account", "lineEnding": "CR"}, "INVALIDJOB"),
        ([1, 2], "INVALIDJOB"),
    ],
)
def test_bad_jobs_are_refused_at_creation(http, sim, body, code):
    response = http.post(f"{sim.url}/services/data/v59.0/jobs/query", json=body)
    assert response.status_code == 400 and response.json()[0]["errorCode"] == code


def test_bad_result_requests(http, sim):
    job = http.post(f"{sim.url}/services/data/v59.0/jobs/query",
                    json={"operation": "query", "query": "SELECT Id FROM Account"}).json()
    _wait(http, sim, job["id"])
    base = f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}/results"
    for params, code in [({"maxRecords": "0"}, "INVALIDREQUEST"), ({"maxRecords": "x"}, "INVALIDREQUEST"),
                         ({"locator": "!!!"}, "INVALID_LOCATOR"), ({"locator": "OTk5OTk5OQ"}, "INVALID_LOCATOR")]:
        response = http.get(base, params=params)
        assert response.status_code == 400 and response.json()[0]["errorCode"] == code, params
    missing = http.get(f"{sim.url}/services/data/v59.0/jobs/query/750000000000000AAA/results")
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    wrong_state = http.patch(f"{sim.url}/services/data/v59.0/jobs/query/{job['id']}", json={"state": "Open"})
    assert wrong_state.status_code == 400
