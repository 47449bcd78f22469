"""Who may start an extraction: a shared bearer token locally, a Google-signed ID token on Cloud Run.

On Cloud Run the service is deployed without public access, so Google's front end has
already checked the caller's ``run.invoker`` role; checking the ID token's audience here
as well means that a token minted for another service cannot be replayed against this one
even if the service is ever opened up.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sfpipe.config import Settings
from sfpipe.errors import SfpipeError

log = logging.getLogger(__name__)

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})


class CallerRejected(SfpipeError):
    """The request carries no credentials (401) or credentials that are not accepted (403)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class CallerAuth:
    """Checks a request's ``Authorization`` header."""

    token: str | None = None
    audience: str | None = None
    certs_url: str = GOOGLE_CERTS_URL
    issuers: frozenset[str] = GOOGLE_ISSUERS

    @classmethod
    def from_settings(cls, settings: Settings) -> CallerAuth:
        """The extractor's configured checks."""
        token = settings.extractor_token.get_secret_value() if settings.extractor_token else None
        auth = cls(token=token or None, audience=settings.extractor_audience or None)
        if not auth.enabled:
            log.warning("POST /runs accepts any caller: set SFPIPE_EXTRACTOR_TOKEN or SFPIPE_EXTRACTOR_AUDIENCE")
        return auth

    @property
    def enabled(self) -> bool:
        """Whether any check is configured."""
        return bool(self.token or self.audience)

    def check(self, headers: Mapping[str, str]) -> str:
        """The caller's identity, or :class:`CallerRejected`."""
        if not self.enabled:
            return "anonymous"
        lower = {k.lower(): v for k, v in headers.items()}
        header = lower.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            msg = "Authorization: expected 'Bearer <token>'"
            raise CallerRejected(msg, 401)
        credential = credential.strip()
        if self.token and hmac.compare_digest(credential.encode(), self.token.encode()):
            return "token"
        if self.audience:
            return self._verify_id_token(credential)
        msg = "Authorization: the bearer token is not accepted"
        raise CallerRejected(msg, 403)

    def _verify_id_token(self, credential: str) -> str:
        from google.auth import exceptions as gauth_exceptions
        from google.auth.transport import requests as gauth_requests
        from google.oauth2 import id_token

        try:
            claims: Mapping[str, Any] = id_token.verify_token(
                credential, gauth_requests.Request(), audience=self.audience, certs_url=self.certs_url
            )
        except (ValueError, gauth_exceptions.GoogleAuthError) as exc:
            msg = f"Authorization: the ID token is not valid for {self.audience}: {exc}"
            raise CallerRejected(msg, 403) from None
        if claims.get("iss") not in self.issuers:
            msg = f"Authorization: the ID token was issued by {claims.get('iss')!r}, not Google"
            raise CallerRejected(msg, 403)
        return str(claims.get("email") or claims.get("sub") or "google")
