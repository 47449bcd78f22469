"""Sessions and logins: OAuth 2.0 (password, client credentials, refresh token, JWT bearer,
authorization code) and the SOAP partner ``login`` — with Salesforce's response shapes.

Access tokens look like Salesforce's (``<org id>!<opaque>``), expire after an idle period (a
request with an expired or unknown one gets 401 ``INVALID_SESSION_ID``), and a SOAP session id
works as a REST bearer token. The SOAP login response keeps Salesforce's element order, because
some clients read it by position.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sfpipe_simulator.errors import OAuthError, SoapFault, invalid_session

AUDIENCE = re.compile(r"^https://[A-Za-z0-9.-]+\.salesforce\.com/?$")
CODE_SECONDS = 600


@dataclass
class Identity:
    """Who the org is and who its integration user is."""

    org_id: str
    user_id: str
    username: str
    full_name: str
    email: str
    org_name: str


@dataclass
class Credentials:
    """What logins are checked against."""

    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str
    jwt_public_key: str | None
    session_seconds: int


@dataclass
class Session:
    """One issued access token."""

    token: str
    user_id: str
    username: str
    client_id: str | None
    issued: float
    last_used: float


class Auth:
    """Issues, checks and expires sessions; implements the login flows."""

    def __init__(self, identity: Identity, credentials: Credentials, lookup_user: Any = None) -> None:
        self.identity = identity
        self.credentials = credentials
        self._lookup_user = lookup_user
        self._sessions: dict[str, Session] = {}
        self._refresh: dict[str, tuple[str, str, str | None]] = {}
        self._codes: dict[str, tuple[str, str, str, float]] = {}
        self._lock = threading.Lock()
        self._public_key: Any = None

    # ------------------------------------------------------------------ sessions

    def issue(self, user_id: str | None = None, username: str | None = None, client_id: str | None = None) -> Session:
        """A new access token (the integration user by default)."""
        now = time.monotonic()
        token = f"{self.identity.org_id[:15]}!{secrets.token_urlsafe(72)}"
        session = Session(token, user_id or self.identity.user_id, username or self.identity.username, client_id,
                          now, now)  # fmt: skip
        with self._lock:
            self._sessions[token] = session
        return session

    def check(self, token: str | None) -> Session:
        """The session of a bearer token, refreshed; 401 INVALID_SESSION_ID when unknown or idle too long."""
        if not token:
            raise invalid_session()
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                raise invalid_session()
            if now - session.last_used > self.credentials.session_seconds:
                del self._sessions[token]
                raise invalid_session()
            session.last_used = now
        return session

    def expire_all(self) -> int:
        """Forced session expiry: every current token stops working."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
        return count

    def revoke(self, token: str) -> bool:
        """Revoke an access or refresh token."""
        with self._lock:
            found = self._sessions.pop(token, None) is not None
            found = self._refresh.pop(token, None) is not None or found
        return found

    # ------------------------------------------------------------------ OAuth

    def _client(self, form: dict[str, str], basic: str | None, need_secret: bool) -> str:
        client_id = form.get("client_id")
        secret = form.get("client_secret")
        if basic:
            try:
                decoded = base64.b64decode(basic, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "invalid client credentials") from None
            client_id, _, secret = decoded.partition(":")
        if not client_id or not hmac.compare_digest(client_id, self.credentials.client_id):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if need_secret and not hmac.compare_digest(secret or "", self.credentials.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")
        return client_id

    def _password_ok(self, username: str, password: str) -> bool:
        c = self.credentials
        return username.lower() == c.username.lower() and hmac.compare_digest(password, c.password + c.security_token)

    def token(self, form: dict[str, str], basic: str | None, instance_url: str) -> dict[str, Any]:
        """``POST /services/oauth2/token``."""
        grant = form.get("grant_type", "")
        if grant == "password":
            client_id = self._client(form, basic, need_secret=True)
            if not self._password_ok(form.get("username", ""), form.get("password", "")):
                raise OAuthError("invalid_grant", "authentication failure")
            session = self.issue(client_id=client_id)
            return self._token_response(session, instance_url, refresh=False)
        if grant == "client_credentials":
            client_id = self._client(form, basic, need_secret=True)
            return self._token_response(self.issue(client_id=client_id), instance_url, refresh=False)
        if grant == "refresh_token":
            client_id = self._client(form, basic, need_secret=bool(form.get("client_secret") or basic))
            with self._lock:
                found = self._refresh.get(form.get("refresh_token", ""))
            if found is None or found[2] != client_id:
                raise OAuthError("invalid_grant", "expired access/refresh token")
            user_id, username, _ = found
            return self._token_response(self.issue(user_id, username, client_id), instance_url, refresh=False)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt(form.get("assertion", ""), instance_url)
        if grant == "authorization_code":
            client_id = self._client(form, basic, need_secret=True)
            with self._lock:
                found_code = self._codes.pop(form.get("code", ""), None)
            if found_code is None or found_code[1] != client_id or time.monotonic() > found_code[3]:
                raise OAuthError("invalid_grant", "invalid authorization code")
            if form.get("redirect_uri") and form["redirect_uri"] != found_code[2]:
                raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")
            session = self.issue(found_code[0], self.identity.username, client_id)
            return self._token_response(session, instance_url, refresh=True)
        if not grant:
            raise OAuthError("invalid_request", "grant type not specified")
        raise OAuthError("unsupported_grant_type", "grant type not supported")

    def authorize(self, args: dict[str, str]) -> str:
        """``GET /services/oauth2/authorize`` (auto-approved): the redirect URL carrying a code."""
        if args.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response type not supported")
        client_id = args.get("client_id", "")
        if not hmac.compare_digest(client_id, self.credentials.client_id):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        redirect = args.get("redirect_uri", "")
        if not redirect.startswith(("http://", "https://")):
            raise OAuthError("redirect_uri_mismatch", "redirect_uri must be an http(s) URL")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = (self.identity.user_id, client_id, redirect, time.monotonic() + CODE_SECONDS)
        separator = "&" if "?" in redirect else "?"
        state = args.get("state")
        return f"{redirect}{separator}code={code}" + (f"&state={state}" if state else "")

    def _token_response(self, session: Session, instance_url: str, refresh: bool) -> dict[str, Any]:
        issued_at = str(int(time.time() * 1000))
        identity_url = f"{instance_url}/id/{self.identity.org_id}/{session.user_id}"
        signature = base64.b64encode(
            hmac.new(self.credentials.client_secret.encode(), (identity_url + issued_at).encode(),
                     hashlib.sha256).digest()
        ).decode()  # fmt: skip
        body: dict[str, Any] = {
            "access_token": session.token,
            "instance_url": instance_url,
            "id": identity_url,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
            "scope": "api refresh_token",
        }
        if refresh:
            token = f"5Aep{secrets.token_urlsafe(60)}"
            with self._lock:
                self._refresh[token] = (session.user_id, session.username, session.client_id)
            body["refresh_token"] = token
        return body

    def _jwt_key(self) -> Any:
        if self._public_key is not None:
            return self._public_key
        text = self.credentials.jwt_public_key
        if not text:
            raise OAuthError("invalid_grant", "invalid assertion: no certificate is configured for this app")
        if "-----BEGIN" not in text:
            text = Path(text).read_text()
        data = text.encode()
        if b"CERTIFICATE" in data:
            self._public_key = x509.load_pem_x509_certificate(data).public_key()
        else:
            self._public_key = serialization.load_pem_public_key(data)
        return self._public_key

    def _jwt(self, assertion: str, instance_url: str) -> dict[str, Any]:
        if not assertion:
            raise OAuthError("invalid_grant", "invalid assertion")
        try:
            claims = jwt.decode(
                assertion,
                self._jwt_key(),
                algorithms=["RS256"],
                options={"require": ["iss", "sub", "aud", "exp"], "verify_aud": False},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise OAuthError("invalid_grant", "invalid assertion") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if not any(AUDIENCE.match(str(a)) or str(a).rstrip("/") == instance_url for a in audiences):
            raise OAuthError("invalid_grant", "audience is invalid")
        if not hmac.compare_digest(str(claims["iss"]), self.credentials.client_id):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        username = str(claims["sub"])
        user_id = self._user_for(username)
        if user_id is None:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return self._token_response(self.issue(user_id, username, self.credentials.client_id), instance_url,
                                    refresh=False)  # fmt: skip

    def _user_for(self, username: str) -> str | None:
        if username.lower() == self.credentials.username.lower():
            return self.identity.user_id
        if self._lookup_user is None:
            return None
        found: str | None = self._lookup_user(username)
        return found

    def userinfo(self, session: Session, instance_url: str) -> dict[str, Any]:
        """``GET /services/oauth2/userinfo``: the OpenID Connect claims."""
        ident = self.identity
        base = f"{instance_url}/services/data/v{{version}}/"
        return {
            "sub": f"{instance_url}/id/{ident.org_id}/{session.user_id}",
            "user_id": session.user_id,
            "organization_id": ident.org_id,
            "preferred_username": session.username,
            "nickname": session.username.split("@")[0],
            "name": ident.full_name,
            "email": ident.email,
            "email_verified": True,
            "given_name": ident.full_name.split(" ")[0],
            "family_name": ident.full_name.split(" ")[-1],
            "zoneinfo": "America/Los_Angeles",
            "locale": "en_US",
            "language": "en_US",
            "active": True,
            "user_type": "STANDARD",
            "utcOffset": -28800000,
            "updated_at": "2024-01-01T00:00:00Z",
            "is_app_installed": True,
            "urls": {
                "enterprise": f"{instance_url}/services/Soap/c/{{version}}/{ident.org_id}",
                "partner": f"{instance_url}/services/Soap/u/{{version}}/{ident.org_id}",
                "rest": base,
                "sobjects": base + "sobjects/",
                "search": base + "search/",
                "query": base + "query/",
                "limits": base + "limits/",
                "profile": f"{instance_url}/{session.user_id}",
            },
        }

    # ------------------------------------------------------------------ SOAP

    def soap_login(self, body: bytes, instance_url: str, version: str) -> str:
        """The partner API ``login`` call: a session id and server URL, or a SOAP fault."""
        if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
            raise SoapFault("INVALID_SOAP_REQUEST", "DOCTYPE is disallowed in SOAP requests")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise SoapFault("INVALID_SOAP_REQUEST", f"Unable to parse the request body: {exc}") from None
        login = next((el for el in root.iter() if _local(el.tag) == "login"), None)
        if login is None:
            raise SoapFault("INVALID_OPERATION", "only the login operation is supported by this endpoint")
        values = {_local(child.tag): (child.text or "") for child in login}
        if "username" not in values or "password" not in values:
            raise SoapFault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.",
                            "LoginFault")  # fmt: skip
        if not self._password_ok(values["username"].strip(), values["password"]):
            raise SoapFault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.",
                            "LoginFault")  # fmt: skip
        session = self.issue()
        return self._soap_response(session, instance_url, version)

    def _soap_response(self, session: Session, instance_url: str, version: str) -> str:
        ident = self.identity
        e = escape
        user_info = "".join(
            f"<{name}>{e(str(value))}</{name}>" if value is not None else f'<{name} xsi:nil="true"/>'
            for name, value in (
                ("accessibilityMode", "false"),
                ("chatterExternal", "false"),
                ("currencySymbol", "$"),
                ("orgAttachmentFileSizeLimit", "5242880"),
                ("orgDefaultCurrencyIsoCode", "USD"),
                ("orgDefaultCurrencyLocale", "en_US"),
                ("orgDisallowHtmlAttachments", "false"),
                ("orgHasPersonAccounts", "false"),
                ("organizationId", ident.org_id),
                ("organizationMultiCurrency", "false"),
                ("organizationName", ident.org_name),
                ("profileId", None),
                ("roleId", None),
                ("sessionSecondsValid", str(self.credentials.session_seconds)),
                ("userDefaultCurrencyIsoCode", None),
                ("userEmail", ident.email),
                ("userFullName", ident.full_name),
                ("userId", session.user_id),
                ("userLanguage", "en_US"),
                ("userLocale", "en_US"),
                ("userName", session.username),
                ("userTimeZone", "America/Los_Angeles"),
                ("userType", "Standard"),
                ("userUiSkin", "Theme3"),
            )
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{e(instance_url)}/services/Soap/m/{version}/{ident.org_id}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired>"
            "<sandbox>false</sandbox>"
            f"<serverUrl>{e(instance_url)}/services/Soap/u/{version}/{ident.org_id}</serverUrl>"
            f"<sessionId>{e(session.token)}</sessionId>"
            f"<userId>{session.user_id}</userId>"
            f"<userInfo>{user_info}</userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
