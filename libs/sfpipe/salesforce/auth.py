"""OAuth logins to Salesforce: client credentials (the default), username-password, JWT bearer.

Each flow only says which form to post to ``/services/oauth2/token``; the client sends it
through its one response classifier, so that a login gets the same retries on 5xx and the
same clear error on a refusal as any other call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sfpipe.salesforce.errors import BadResponseError

TOKEN_PATH = "/services/oauth2/token"


@dataclass(frozen=True)
class Token:
    """An access token and the instance it is valid on."""

    access_token: str = field(repr=False)
    instance_url: str
    org_id: str | None = None
    user_id: str | None = None
    issued_at: datetime | None = None
    token_type: str = "Bearer"

    @classmethod
    def from_response(cls, body: Any, url: str) -> Token:
        """Read a token response, with a clear error when a key Salesforce always sends is missing."""
        if not isinstance(body, dict):
            msg = f"token response from {url} is a {type(body).__name__}, expected a JSON object"
            raise BadResponseError(msg, url=url)
        for key in ("access_token", "instance_url"):
            if not isinstance(body.get(key), str) or not body[key]:
                msg = f"token response from {url} has no {key!r}; expected access_token and instance_url"
                raise BadResponseError(msg, url=url)
        org_id = user_id = None
        identity = body.get("id")
        if isinstance(identity, str) and identity.count("/") >= 2:
            org_id, user_id = identity.rstrip("/").rsplit("/", 2)[-2:]
        issued_at = None
        raw_issued = body.get("issued_at")
        if isinstance(raw_issued, str | int) and str(raw_issued).isdigit():
            issued_at = datetime.fromtimestamp(int(raw_issued) / 1000, UTC)
        return cls(
            access_token=body["access_token"],
            instance_url=body["instance_url"].rstrip("/"),
            org_id=org_id,
            user_id=user_id,
            issued_at=issued_at,
            token_type=str(body.get("token_type") or "Bearer"),
        )


class Authenticator(Protocol):
    """One OAuth flow: the token URL and the form to post there."""

    @property
    def login_url(self) -> str:
        """The login host (My Domain, or the simulator)."""
        ...

    def token_form(self) -> dict[str, str]:
        """The form fields of the token request (a fresh assertion each time for JWT)."""
        ...


@dataclass(frozen=True)
class ClientCredentials:
    """OAuth 2.0 client credentials: a connected app that runs as its configured user."""

    login_url: str
    client_id: str
    client_secret: str = field(repr=False)

    def token_form(self) -> dict[str, str]:
        """``grant_type=client_credentials`` with the app's key and secret."""
        return {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}


@dataclass(frozen=True)
class PasswordLogin:
    """OAuth username-password flow (no refresh token; kept for orgs that allow nothing else)."""

    login_url: str
    client_id: str
    client_secret: str = field(repr=False)
    username: str
    password: str = field(repr=False)
    security_token: str = field(default="", repr=False)

    def token_form(self) -> dict[str, str]:
        """``grant_type=password``; the security token is appended to the password as Salesforce expects."""
        return {
            "grant_type": "password",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "username": self.username,
            "password": self.password + self.security_token,
        }


@dataclass(frozen=True)
class JwtBearer:
    """OAuth JWT bearer flow: an assertion signed with the connected app's private key."""

    login_url: str
    client_id: str
    username: str
    private_key: str = field(repr=False)
    audience: str = "https://login.salesforce.com"
    lifetime_seconds: int = 180

    def token_form(self) -> dict[str, str]:
        """A freshly signed RS256 assertion (``iss`` = consumer key, ``sub`` = user)."""
        import jwt

        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.username, "aud": self.audience, "exp": now + self.lifetime_seconds}
        assertion = jwt.encode(claims, self.private_key, algorithm="RS256")
        return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
