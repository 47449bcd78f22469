"""Caller checks: the local bearer token, and Google-signed ID tokens verified against served certificates."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from sfpipe_extractor.callers import CallerAuth, CallerRejected

AUDIENCE = "https://sfpipe-extractor-abc-ew.a.run.app"


@pytest.fixture(scope="module")
def signer_and_certs_url() -> Iterator[tuple[crypt.RSASigner, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sfpipe-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    certs = json.dumps({"kid-1": cert.public_bytes(serialization.Encoding.PEM).decode()}).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(certs)))
            self.end_headers()
            self.wfile.write(certs)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    try:
        yield crypt.RSASigner.from_string(pem, key_id="kid-1"), f"http://127.0.0.1:{server.server_address[1]}/certs"
    finally:
        server.shutdown()
        server.server_close()


def id_token(signer: crypt.RSASigner, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "iat": now, "exp": now + 300,
               "sub": "1234", "email": "scheduler@proj.iam.gserviceaccount.com", **claims}
    return jwt.encode(signer, payload).decode()


def test_no_checks_configured_lets_anyone_in():
    assert CallerAuth().check({}) == "anonymous"


def test_local_bearer_token():
    auth = CallerAuth(token="s3cret")
    assert auth.check({"Authorization": "Bearer s3cret"}) == "token"
    with pytest.raises(CallerRejected) as missing:
        auth.check({})
    assert missing.value.status == 401
    with pytest.raises(CallerRejected) as wrong:
        auth.check({"authorization": "Bearer nope"})
    assert wrong.value.status == 403


def test_google_id_token_with_the_right_audience(signer_and_certs_url):
    signer, certs_url = signer_and_certs_url
    auth = CallerAuth(audience=AUDIENCE, certs_url=certs_url)
    assert auth.check({"Authorization": f"Bearer {id_token(signer)}"}) == "scheduler@proj.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://another-service.a.run.app"}, "not valid"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "not valid"),
        ({"iss": "https://evil.example"}, "not Google"),
    ],
)
def test_google_id_token_rejections(signer_and_certs_url, claims, reason):
    signer, certs_url = signer_and_certs_url
    auth = CallerAuth(audience=AUDIENCE, certs_url=certs_url)
    with pytest.raises(CallerRejected, match=reason) as err:
        auth.check({"Authorization": f"Bearer {id_token(signer, **claims)}"})
    assert err.value.status == 403


def test_token_signed_by_another_key_is_rejected(signer_and_certs_url):
    _, certs_url = signer_and_certs_url
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    forged = id_token(crypt.RSASigner.from_string(pem, key_id="kid-1"))
    with pytest.raises(CallerRejected, match="not valid"):
        CallerAuth(audience=AUDIENCE, certs_url=certs_url).check({"Authorization": f"Bearer {forged}"})
