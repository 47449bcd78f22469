"""Hypothesis throws malformed requests at the API: every answer is Salesforce-shaped, none is a 500."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

SEGMENTS = ["sobjects", "Account", "Contact", "Nope", "describe", "query", "queryAll", "limits", "jobs", "results",
            "composite", "batch", "updated", "deleted", "0017e0000000001AAA", "0037e0000000001AAA", "x", "",
            "01gXXX-2000", "750000000000001AAA", "%00", "..", "a" * 300]  # fmt: skip
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["Name", "LastName", "Amount", "StageName", "CloseDate", "OwnerId", "IsDeleted", "Id",
                         "operation", "query", "batchRequests", "url", "method", "state", "Nope", "attributes"]),
        inner, max_size=5),
    max_leaves=10,
)  # fmt: skip


@pytest.fixture(scope="module")
def client(sim):
    return sim.app.test_client(), {"Authorization": f"Bearer {sim.login()}"}


def _check(response):
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        body = json.loads(response.get_data())
        if isinstance(body, list):
            assert {"message", "errorCode"} <= set(body[0])
        else:
            assert {"error", "error_description"} <= set(body)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]),
    version=st.sampled_from(["v59.0", "v31.0", "v30.0", "v99.0", "latest", "v59"]),
    segments=st.lists(st.sampled_from(SEGMENTS), max_size=4),
    query=st.dictionaries(st.sampled_from(["q", "fields", "start", "end", "maxRecords", "locator"]),
                          st.text(max_size=30), max_size=2),
    body=st.one_of(st.none(), JSONISH.map(json.dumps), st.binary(max_size=40)),
)
def test_fuzz_data_api(client, method, version, segments, query, body):
    test_client, headers = client
    path = "/services/data/" + "/".join([version, *segments])
    response = test_client.open(path, method=method, query_string=query, data=body, headers=headers)
    _check(response)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=st.dictionaries(st.sampled_from(["grant_type", "client_id", "client_secret", "username", "password",
                                             "refresh_token", "assertion", "code", "redirect_uri"]),
                            st.text(max_size=30), max_size=6))
def test_fuzz_oauth(client, form):
    test_client, _ = client
    _check(test_client.post("/services/oauth2/token", data=form))
