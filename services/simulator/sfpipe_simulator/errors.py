"""Errors in the shapes Salesforce answers with: REST arrays, OAuth objects, SOAP faults."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape


class ApiError(Exception):
    """A REST error: HTTP status plus ``[{"message", "errorCode", "fields"?}]``."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        """The JSON body."""
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            entry["fields"] = self.fields
        return [entry]


class OAuthError(Exception):
    """An OAuth token-endpoint error: ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """The JSON body."""
        return {"error": self.error, "error_description": self.description}


class SoapFault(Exception):
    """A SOAP fault of the partner API (HTTP 500, as SOAP 1.1 and Salesforce answer faults)."""

    def __init__(self, code: str, message: str, fault_type: str = "UnexpectedErrorFault") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fault_type = fault_type

    def body(self) -> str:
        """The SOAP envelope."""
        code = escape(self.code)
        message = escape(self.message)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><soapenv:Fault>"
            f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>"
            f'<detail><sf:{self.fault_type} xsi:type="sf:{self.fault_type}">'
            f"<sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{message}</sf:exceptionMessage>"
            f"</sf:{self.fault_type}></detail>"
            "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )


def not_found() -> ApiError:
    """Salesforce's answer to an unknown resource."""
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_session() -> ApiError:
    """An unknown or expired token."""
    return ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
