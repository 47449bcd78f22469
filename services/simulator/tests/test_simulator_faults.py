"""Fault injection (deterministic by seed) and composite batches."""

import time

import pytest
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceGeneralError

from sfpipe_simulator.server import Simulator, SimulatorConfig

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    with Simulator(SimulatorConfig(seed=9, scale=2_000, data_dir=tmp_path_factory.mktemp("faulty"))) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _clean(faulty):
    faulty.admin.clear_faults()
    yield
    faulty.admin.clear_faults()


def _statuses(sim, n):
    session = sim.requests_session()
    session.headers["Authorization"] = f"Bearer {sim.login()}"
    out = []
    for _ in range(n):
        response = session.get(f"{sim.url}/services/data/v59.0/limits")
        out.append(response.status_code)
        if response.status_code >= 400:
            body = response.json()
            assert set(body[0]) == {"message", "errorCode"}
            if response.status_code in (429, 503):
                assert response.headers["Retry-After"] == "1"
    return out


def test_error_shares_are_deterministic_by_seed(faulty):
    faulty.admin.set_faults(error_rate_429=0.1, error_rate_500=0.1, error_rate_503=0.2, seed=4)
    first = _statuses(faulty, 200)
    faulty.admin.set_faults(seed=4)  # reconfiguring restarts the sequence
    second = _statuses(faulty, 200)
    assert first == second
    assert {429, 500, 503, 200} == set(first)
    assert 0.3 < sum(s != 200 for s in first) / len(first) < 0.5
    faulty.admin.set_faults(seed=5)
    assert _statuses(faulty, 200) != first
    injected = faulty.admin.faults()["injected"]
    assert injected["503"] > 0 and injected["429"] > 0


def test_admin_and_login_are_not_faulted(faulty):
    faulty.admin.set_faults(error_rate_503=1.0)
    assert faulty.admin.status()["faults"]["error_rate_503"] == 1.0
    assert faulty.oauth_token()["access_token"]
    assert set(_statuses(faulty, 5)) == {503}


def test_added_latency(faulty):
    faulty.admin.set_faults(latency_ms=150)
    session = faulty.requests_session()
    session.headers["Authorization"] = f"Bearer {faulty.login()}"
    started = time.perf_counter()
    assert session.get(f"{faulty.url}/services/data/v59.0/limits").status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_forced_session_expiry(faulty):
    sf = faulty.salesforce()
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    faulty.admin.set_faults(session_expiry_rate=1.0)
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Account LIMIT 1")
    faulty.admin.clear_faults()
    with pytest.raises(SalesforceExpiredSession):  # the token stays revoked
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert faulty.salesforce().query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    faulty.salesforce()
    assert faulty.admin.expire_sessions() >= 1


def test_server_errors_reach_simple_salesforce(faulty):
    sf = faulty.salesforce()
    faulty.admin.set_faults(error_rate_500=1.0)
    with pytest.raises(SalesforceGeneralError) as info:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert info.value.status == 500 and info.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"


def test_query_timeout_on_large_windows(faulty):
    sf = faulty.salesforce()
    faulty.admin.set_faults(query_timeout_rows=100)
    assert sf.query("SELECT Id FROM Account LIMIT 50")["totalSize"] == 50
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_all("SELECT Id FROM Contact")
    assert info.value.content == [{"message": "Your query request was running for too long.",
                                   "errorCode": "QUERY_TIMEOUT"}]
    from simple_salesforce.exceptions import SalesforceOperationError

    with pytest.raises(SalesforceOperationError, match="QUERY_TIMEOUT"):
        list(sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=0.05))


def test_bad_fault_configuration_is_refused(faulty):
    import requests

    for body in ({"error_rate_503": 2}, {"nonsense": 1}, {"latency_ms": -5}):
        response = requests.patch(f"{faulty.url}/admin/faults", json=body, verify=faulty.verify, timeout=10,
                                  headers={"Authorization": "Bearer sfpipe-admin"})
        assert response.status_code == 400 and response.json()[0]["errorCode"] == "INVALID_FAULT_CONFIG"


def test_faults_from_the_start_configuration(tmp_path):
    config = SimulatorConfig(scale=1_000, data_dir=tmp_path, faults={"error_rate_503": 1.0})
    with Simulator(config) as sim:
        assert set(_statuses(sim, 3)) == {503}


def test_composite_batch(faulty):
    session = faulty.requests_session()
    session.headers["Authorization"] = f"Bearer {faulty.login()}"
    account = session.get(f"{faulty.url}/services/data/v59.0/query",
                          params={"q": "SELECT Id FROM Account LIMIT 1"}).json()["records"][0]["Id"]
    body = {"batchRequests": [
        {"method": "GET", "url": f"v59.0/sobjects/Account/{account}?fields=Name"},
        {"method": "PATCH", "url": f"v59.0/sobjects/Account/{account}", "richInput": {"Rating": "Hot"}},
        {"method": "GET", "url": "v59.0/query?q=SELECT+COUNT()+FROM+Contact"},
        {"method": "GET", "url": "v59.0/sobjects/Nope/describe"},
    ]}
    response = session.post(f"{faulty.url}/services/data/v59.0/composite/batch", json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["hasErrors"] is True
    assert [r["statusCode"] for r in result["results"]] == [200, 204, 200, 404]
    assert "Name" in result["results"][0]["result"] and result["results"][1]["result"] is None
    halted = session.post(f"{faulty.url}/services/data/v59.0/composite/batch", json={
        "haltOnError": True, "batchRequests": [{"method": "GET", "url": "v59.0/sobjects/Nope/describe"},
                                               {"method": "GET", "url": "v59.0/limits"}]}).json()
    assert [r["statusCode"] for r in halted["results"]] == [404, 412]
    assert halted["results"][1]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"
    for bad in ({}, {"batchRequests": []}, {"batchRequests": [{"method": "GET"}] * 26}):
        refused = session.post(f"{faulty.url}/services/data/v59.0/composite/batch", json=bad)
        assert refused.status_code == 400 and "errorCode" in refused.json()[0]
    odd = session.post(f"{faulty.url}/services/data/v59.0/composite/batch",
                       json={"batchRequests": [{"method": "TRACE", "url": "v59.0/limits"}, {"url": 5}]}).json()
    assert [r["statusCode"] for r in odd["results"]] == [400, 400]
