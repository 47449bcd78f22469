"""Errors of the Salesforce API client, each saying whether trying again can help.

They sit under sfpipe's error tree (:mod:`sfpipe.errors`) so that a service maps them to
status codes without knowing Salesforce: a rate limit or a 5xx is a ``TransientError``,
a rejected query or a malformed body is a ``TerminalError``.
"""

from __future__ import annotations

from sfpipe.errors import SfpipeError, TerminalError, TransientError


class SalesforceError(SfpipeError):
    """An error from (or about) a Salesforce API call."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.url = url


class SalesforceTransientError(SalesforceError, TransientError):
    """429, 5xx, a dropped connection: the same call may succeed later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, error_code=error_code, url=url)
        self.retry_after = retry_after


class SessionExpiredError(SalesforceTransientError):
    """401 ``INVALID_SESSION_ID``: log in again and repeat the call."""


class SalesforceFatalError(SalesforceError, TerminalError):
    """Any other 4xx: repeating the same call gives the same answer."""


class AuthError(SalesforceFatalError):
    """The login was refused (wrong client id or secret, user not allowed, no such flow)."""


class QueryTimeoutError(SalesforceFatalError):
    """``QUERY_TIMEOUT``: the query was too expensive; a narrower window may pass."""


class ApiLimitError(SalesforceFatalError):
    """The org's daily API request budget (or sfpipe's share of it) is used up."""


class BadResponseError(SalesforceFatalError):
    """A 2xx whose body is not what the API promises: malformed JSON, truncated CSV, missing keys."""


class BulkJobFailedError(SalesforceFatalError):
    """A Bulk API 2.0 query job ended ``Failed`` or ``Aborted``, or never finished."""

    def __init__(self, message: str, *, job_id: str | None = None, url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.job_id = job_id


class UnknownFieldTypeError(SalesforceFatalError):
    """Describe returned a field type that sfpipe cannot map to a column type."""
