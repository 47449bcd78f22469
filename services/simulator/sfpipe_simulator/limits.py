"""Org limits: DailyApiRequests over a rolling 24 hours (enforced), Bulk 2.0 job counts, /limits."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.store import Clock

WINDOW_MINUTES = 24 * 60
BULK_QUERY_JOBS = 10_000


class _Rolling:
    """A count over the last 24 hours in one-minute buckets."""

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()
        self.total = 0

    def add(self, minute: int, n: int = 1) -> None:
        self.expire(minute)
        if self.buckets and self.buckets[-1][0] == minute:
            self.buckets[-1][1] += n
        else:
            self.buckets.append([minute, n])
        self.total += n

    def expire(self, minute: int) -> None:
        while self.buckets and self.buckets[0][0] <= minute - WINDOW_MINUTES:
            self.total -= self.buckets.popleft()[1]


class Limits:
    """The simulated org's API limits."""

    def __init__(self, daily_api_requests: int, clock: Clock) -> None:
        self.daily_max = daily_api_requests
        self.clock = clock
        self._api = _Rolling()
        self._bulk = _Rolling()
        self._lock = threading.Lock()

    def _minute(self) -> int:
        return int(self.clock.now().timestamp() // 60)

    def consume(self) -> None:
        """Count one API request, or refuse it with 403 REQUEST_LIMIT_EXCEEDED when the limit is used up."""
        minute = self._minute()
        with self._lock:
            self._api.expire(minute)
            if self._api.total >= self.daily_max:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self._api.add(minute)

    def bulk_job(self) -> None:
        """Count one Bulk 2.0 query job against its daily allowance."""
        minute = self._minute()
        with self._lock:
            self._bulk.expire(minute)
            if self._bulk.total >= BULK_QUERY_JOBS:
                raise ApiError(400, "LIMIT_EXCEEDED", "Max bulk v2 query jobs in the last 24 hours exceeded")
            self._bulk.add(minute)

    def used(self) -> int:
        """API requests in the last 24 hours."""
        with self._lock:
            self._api.expire(self._minute())
            return self._api.total

    def header(self) -> str:
        """The ``Sforce-Limit-Info`` header value."""
        return f"api-usage={self.used()}/{self.daily_max}"

    def reset(self) -> None:
        """Forget all usage (admin)."""
        with self._lock:
            self._api = _Rolling()
            self._bulk = _Rolling()

    def snapshot(self) -> dict[str, Any]:
        """``GET /limits``."""
        used = self.used()
        with self._lock:
            bulk = self._bulk.total

        def pair(maximum: int, remaining: int) -> dict[str, int]:
            return {"Max": maximum, "Remaining": max(0, remaining)}

        return {
            "ConcurrentAsyncGetReportInstances": pair(200, 200),
            "ConcurrentSyncReportRuns": pair(20, 20),
            "DailyApiRequests": pair(self.daily_max, self.daily_max - used),
            "DailyAsyncApexExecutions": pair(250_000, 250_000),
            "DailyBulkApiBatches": pair(15_000, 15_000),
            "DailyBulkV2QueryFileStorageMB": pair(976_562, 976_562),
            "DailyBulkV2QueryJobs": pair(BULK_QUERY_JOBS, BULK_QUERY_JOBS - bulk),
            "DailyDurableStreamingApiEvents": pair(1_000_000, 1_000_000),
            "DailyStreamingApiEvents": pair(1_000_000, 1_000_000),
            "DataStorageMB": pair(1_024_000, 1_024_000),
            "FileStorageMB": pair(1_024_000, 1_024_000),
            "HourlyPublishedPlatformEvents": pair(250_000, 250_000),
            "MonthlyPlatformEventsUsageEntitlement": pair(1_500_000, 1_500_000),
            "SingleEmail": pair(5_000, 5_000),
        }
