"""What the quality checks ask of Salesforce: record counts and a picklist.

Two questions only, so the checks depend on this small interface rather than on the whole
API client; the one implementation goes through sfpipe's Salesforce client (the same
code the extractor uses, against a real org or the simulator).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sfpipe.config import Settings

if TYPE_CHECKING:
    from sfpipe.salesforce.client import SalesforceClient


class Source(Protocol):
    """The source org, as far as the quality checks need it."""

    def count(self, sobject: str, *, created_before: datetime | None = None) -> int:
        """``SELECT COUNT() FROM <sobject>`` (live records), optionally created before a time."""
        ...

    def picklist(self, sobject: str, field: str) -> list[str] | None:
        """The active values of a picklist field from describe, or None when it has none."""
        ...


class SalesforceSource:
    """:class:`Source` over :class:`sfpipe.salesforce.client.SalesforceClient`."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client

    def count(self, sobject: str, *, created_before: datetime | None = None) -> int:
        """``COUNT()`` through the REST query resource (one request, no records fetched)."""
        from sfpipe.salesforce.soql import soql_datetime

        where = f"CreatedDate < {soql_datetime(created_before)}" if created_before is not None else ""
        return self.client.count(sobject, where)

    def picklist(self, sobject: str, field: str) -> list[str] | None:
        """Active picklist values from ``sobjects/X/describe``."""
        described = self.client.describe(sobject)
        for item in described.get("fields", []):
            if isinstance(item, dict) and item.get("name") == field:
                values = item.get("picklistValues") or []
                active = [str(v["value"]) for v in values if isinstance(v, dict) and v.get("active", True)]
                return active or None
        return None

    def close(self) -> None:
        """Release the HTTP session."""
        self.client.close()


def salesforce_source(settings: Settings) -> Source:
    """The configured org (the simulator locally)."""
    from sfpipe.salesforce.client import SalesforceClient

    return SalesforceSource(SalesforceClient.from_settings(settings))
