"""Logins the way real clients do them, routed to the simulator through a requests.Session."""

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

pytestmark = pytest.mark.integration

USER = "admin@sfpipe.example.com"


def _works(client):
    assert client.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1
    assert client.sf_instance.startswith("127.0.0.1:")


def test_soap_login_with_security_token(sim):
    _works(Salesforce(username=USER, password="sfpipe-local", security_token="", session=sim.requests_session()))


def test_soap_login_refused(sim):
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=USER, password="wrong", security_token="", session=sim.requests_session())
    assert info.value.code == "INVALID_LOGIN"


def test_oauth_password_flow(sim):
    _works(Salesforce(username=USER, password="sfpipe-local", consumer_key="sfpipe-local",
                      consumer_secret="sfpipe-local-secret", session=sim.requests_session()))


def test_oauth_client_credentials_flow(sim):
    _works(Salesforce(consumer_key="sfpipe-local", consumer_secret="sfpipe-local-secret", domain="sfpipe-dev",
                      session=sim.requests_session()))


def test_oauth_jwt_bearer_flow(sim, jwt_key):
    _works(Salesforce(username=USER, consumer_key="sfpipe-local", privatekey=jwt_key[0],
                      session=sim.requests_session()))


def test_jwt_signed_by_another_key_is_refused(sim):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=USER, consumer_key="sfpipe-local", privatekey=other, session=sim.requests_session())
    assert info.value.code == "invalid_grant"


def test_authorization_code_then_refresh_token(sim):
    session = sim.requests_session()
    redirect = session.get(f"{sim.url}/services/oauth2/authorize", allow_redirects=False,
                           params={"response_type": "code", "client_id": "sfpipe-local",
                                   "redirect_uri": "https://app.example.com/cb", "state": "s1"})
    assert redirect.status_code == 302
    query = parse_qs(urlsplit(redirect.headers["Location"]).query)
    assert query["state"] == ["s1"]
    tokens = session.post(f"{sim.url}/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": query["code"][0], "client_id": "sfpipe-local",
        "client_secret": "sfpipe-local-secret", "redirect_uri": "https://app.example.com/cb"}).json()
    assert {"access_token", "refresh_token", "instance_url", "id", "token_type", "issued_at", "signature"} <= set(tokens)
    refreshed = session.post(f"{sim.url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "sfpipe-local",
        "client_secret": "sfpipe-local-secret"}).json()
    assert refreshed["access_token"] != tokens["access_token"] and "refresh_token" not in refreshed
    _works(Salesforce(instance_url=refreshed["instance_url"], session_id=refreshed["access_token"],
                      session=session))


def test_token_response_shape(sim):
    body = sim.oauth_token()
    assert body["access_token"].startswith(sim.runtime.org_id[:15] + "!")
    assert body["token_type"] == "Bearer" and body["issued_at"].isdigit() and len(body["issued_at"]) == 13
    assert body["id"].endswith(f"/id/{sim.runtime.org_id}/{sim.runtime.auth.identity.user_id}")
    assert "refresh_token" not in body
    info = sim.requests_session().get(f"{sim.url}/services/oauth2/userinfo",
                                      headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert info["organization_id"] == sim.runtime.org_id and info["preferred_username"] == USER
    identity = sim.requests_session().get(body["id"], headers={"Authorization": f"Bearer {body['access_token']}"})
    assert identity.status_code == 200 and identity.json()["user_id"] == sim.runtime.auth.identity.user_id


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "magic"}, "unsupported_grant_type"),
        ({"grant_type": "password", "client_id": "other", "client_secret": "x", "username": USER, "password": "p"},
         "invalid_client_id"),
        ({"grant_type": "password", "client_id": "sfpipe-local", "client_secret": "bad", "username": USER,
          "password": "sfpipe-local"}, "invalid_client"),
        ({"grant_type": "password", "client_id": "sfpipe-local", "client_secret": "sfpipe-local-secret",
          "username": USER, "password": "bad"}, "invalid_grant"),
        ({"grant_type": "refresh_token", "client_id": "sfpipe-local", "refresh_token": "nope"}, "invalid_grant"),
        ({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "not.a.jwt"}, "invalid_grant"),
        ({"grant_type": "authorization_code", "client_id": "sfpipe-local", "client_secret": "sfpipe-local-secret",
          "code": "nope"}, "invalid_grant"),
    ],
)
def test_oauth_errors_are_oauth_shaped(sim, form, error):
    response = sim.requests_session().post(f"{sim.url}/services/oauth2/token", data=form)
    assert response.status_code == 400
    assert set(response.json()) == {"error", "error_description"} and response.json()["error"] == error


def test_soap_login_response_keeps_salesforce_element_order(sim):
    body = ("<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/' "
            "xmlns:urn='urn:partner.soap.sforce.com'><soapenv:Body><urn:login><urn:username><![CDATA["
            f"{USER}]]></urn:username><urn:password><![CDATA[sfpipe-local]]></urn:password></urn:login>"
            "</soapenv:Body></soapenv:Envelope>")
    response = sim.requests_session().post(f"{sim.url}/services/Soap/u/59.0/", data=body,
                                           headers={"content-type": "text/xml", "SOAPAction": "Login"})
    assert response.status_code == 200
    result = ET.fromstring(response.content.decode("utf-8"))[0][0][0]  # the way pysfpubsub reads it
    names = [child.tag.rsplit("}", 1)[1] for child in result]
    assert names == ["metadataServerUrl", "passwordExpired", "sandbox", "serverUrl", "sessionId", "userId",
                     "userInfo"]
    assert result[3].text.startswith(sim.url + "/services/Soap/u/59.0/")
    assert result[6][8].tag.endswith("organizationId") and result[6][8].text == sim.runtime.org_id
    token = result[4].text
    ok = sim.requests_session().get(f"{sim.url}/services/data/v59.0/limits",
                                    headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200  # a SOAP session id is a REST bearer token


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<not xml", "INVALID_SOAP_REQUEST"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "INVALID_SOAP_REQUEST"),
        (b"<Envelope><Body><logout/></Body></Envelope>", "INVALID_OPERATION"),
        (b"<Envelope><Body><login><username>x</username></login></Body></Envelope>", "INVALID_LOGIN"),
    ],
)
def test_soap_faults(sim, body, code):
    response = sim.requests_session().post(f"{sim.url}/services/Soap/u/59.0", data=body,
                                           headers={"content-type": "text/xml"})
    assert response.status_code == 500  # SOAP 1.1 and Salesforce answer a fault with 500
    assert response.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    fault = root[0][0]
    assert fault.tag.endswith("Fault") and fault.find("faultcode").text == f"sf:{code}"
