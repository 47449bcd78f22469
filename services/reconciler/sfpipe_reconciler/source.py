"""Salesforce's side of a reconciliation: Id-only listings and counts, as few API calls as possible.

- Small answers (a count, the Ids changed since the last clean comparison, a small object's
  listing) go five at a time in one ``composite`` request, which Salesforce counts as one API
  call; a listing longer than one page continues through its ``nextRecordsUrl``.
- A whole object's listing (``SELECT Id, SystemModstamp FROM X``, ``queryAll``) is one Bulk API
  2.0 job: create, a status poll or two, and result pages of tens of MB, streamed into the local
  listing through the extractor's Bulk reader (dropped connections resumed, truncated chunks
  refused). An object Bulk does not support is listed over REST instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from sfpipe.salesforce import soql
from sfpipe.salesforce.client import COMPOSITE_QUERIES, SalesforceClient
from sfpipe.salesforce.errors import (
    ApiLimitError,
    AuthError,
    BadResponseError,
    BulkJobFailedError,
    SalesforceFatalError,
)
from sfpipe.salesforce.types import FieldInfo
from sfpipe_extractor.bulk import BulkReader
from sfpipe_extractor.convert import PageConverter
from sfpipe_reconciler.listing import Listing

log = logging.getLogger(__name__)

NO_FALLBACK = (BadResponseError, ApiLimitError, AuthError)
"""Failures REST would meet as well: raised, never answered by reading over REST instead of Bulk."""
PARALLEL_CALLS = 4
"""Composite calls in flight at once (Salesforce allows 25 concurrent long requests; these are short)."""


@dataclass
class Query:
    """One query to send in a composite request."""

    ref: str
    text: str
    listing: tuple[str, str] | None = None
    """(object, version field) when the records are Ids to list; None for a ``COUNT()``."""


@dataclass
class Answer:
    """What a query returned: its total size and, for a listing, how many rows went into the listing."""

    total: int = 0
    listed: int = 0
    error: str | None = None


@dataclass
class Source:
    """Reads Ids and versions from Salesforce into a listing, counting the calls it makes."""

    client: SalesforceClient
    bulk_page_records: int | None = None
    calls_by_object: dict[str, float] = field(default_factory=dict)
    """API calls per object (a composite call is shared by the objects it served)."""

    @property
    def calls(self) -> int:
        """Requests sent so far by this client."""
        return self.client.requests_sent

    def _charge(self, sobject: str, calls: float) -> None:
        self.calls_by_object[sobject] = self.calls_by_object.get(sobject, 0.0) + calls

    # ------------------------------------------------------------------ composite

    def run(self, queries: Sequence[Query], listing: Listing) -> dict[str, Answer]:
        """Queries five to a composite call (queryAll); listings follow their further pages."""
        answers: dict[str, Answer] = {}
        step = COMPOSITE_QUERIES
        groups = [list(queries[start : start + step]) for start in range(0, len(queries), step)]

        def send(group: list[Query]) -> list[tuple[int, Any]]:
            return self.client.composite([(q.ref, f"queryAll/?q={quote(q.text, safe='')}") for q in group])

        # the composite calls are independent: a few at once; their answers go into the listing in order
        with ThreadPoolExecutor(max_workers=min(PARALLEL_CALLS, max(1, len(groups)))) as pool:
            results_by_group = list(pool.map(send, groups))
        for group, results in zip(groups, results_by_group, strict=True):
            share = 1.0 / len(group)
            for query, (status, body) in zip(group, results, strict=True):
                answer = answers[query.ref] = Answer()
                self._charge(query.listing[0] if query.listing else query.ref.split(":", 1)[0], share)
                if status != 200 or not isinstance(body, dict) or not isinstance(body.get("totalSize"), int):
                    answer.error = f"{query.text[:80]!r} answered {status}: {str(body)[:300]}"
                    continue
                answer.total = int(body["totalSize"])
                if query.listing is not None:
                    sobject, version = query.listing
                    answer.listed = self._list_pages(body, sobject, version, listing)
        return answers

    def _list_pages(self, body: dict[str, Any], sobject: str, version: str, listing: Listing) -> int:
        rows = 0
        page: Any = body
        while True:
            records = page.get("records") or []
            rows += listing.append(
                sobject,
                pa.array([r.get("Id") for r in records], pa.string()),
                _versions([r.get(version) for r in records]),
            )
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return rows
            before = self.calls
            page = self.client.request("GET", next_url)
            self._charge(sobject, self.calls - before)
            if not isinstance(page, dict):
                msg = f"{sobject}: a listing page is not a JSON object"
                raise BadResponseError(msg)

    # ------------------------------------------------------------------ whole objects

    def list_object(self, sobject: str, version: str, listing: Listing, where: str = "") -> tuple[int, str]:
        """Every ``(Id, version)`` of an object (queryAll) into the listing; returns (rows, API used)."""
        listing.reset(sobject)
        query = soql.select(sobject, ["Id", version], where)
        before = self.calls
        try:
            rows = self._bulk(sobject, version, query, listing)
            api = "bulk"
        except (BulkJobFailedError, SalesforceFatalError) as exc:
            if isinstance(exc, NO_FALLBACK):
                raise
            log.info("%s: Bulk API 2.0 refused the listing (%s); listing over REST", sobject, exc)
            listing.reset(sobject)
            rows = self._rest(sobject, version, query, listing)
            api = "rest"
        self._charge(sobject, self.calls - before)
        return rows, api

    def _bulk(self, sobject: str, version: str, query: str, listing: Listing) -> int:
        converter = PageConverter(sobject, [FieldInfo("Id", "id", nillable=False), FieldInfo(version, "datetime")])
        job = self.client.create_query_job(query, include_deleted=True)
        try:
            self.client.wait_for_query_job(job.id, first_poll=0.2)
            rows = 0
            reader = BulkReader(self.client, converter, max_records=self.bulk_page_records, readers=1)
            for batch in reader.batches(job.id):
                rows += listing.append(sobject, batch.column(0), batch.column(1))
            return rows
        finally:
            self.client.delete_query_job(job.id)

    def _rest(self, sobject: str, version: str, query: str, listing: Listing) -> int:
        rows = 0
        for page in self.client.query_pages(query, include_deleted=True):
            rows += listing.append(
                sobject,
                pa.array([r.get("Id") for r in page.records], pa.string()),
                _versions([r.get(version) for r in page.records]),
            )
        return rows


def _versions(values: list[Any]) -> pa.Array:
    from sfpipe.salesforce.client import parse_sf_datetime

    return pa.array([parse_sf_datetime(v) for v in values], pa.timestamp("ms", tz="UTC"))


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
