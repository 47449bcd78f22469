"""Fault injection, deterministic by seed: the n-th API request gets the same fate on every run.

Each API request draws one number from a counter-based hash of (seed, request number); the
configured shares of 429 / 500 / 503 answers and of forced session expiries are slices of
[0, 1), so a client that sends the same sequence of requests sees the same faults. Latency is
added before the answer. ``query_timeout_rows`` makes queries (and Bulk jobs) whose result
exceeds that many rows fail with ``QUERY_TIMEOUT``, as large windows do on a busy org.

Per object, answers can also break on the way (a page cut in half, a CSV chunk cut short, a
connection dropped mid-body, a field of an unknown type in describe) or Bulk can refuse the
object. The org-level faults (late commits, formula drift, hard deletes) live in
:mod:`sfpipe_simulator.orgfaults`; their rates are configured here with the rest.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sfpipe.errors import describe_validation
from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.rng import mix, stream_key


class FaultConfig(BaseModel):
    """What goes wrong, and how often."""

    model_config = ConfigDict(extra="forbid")

    error_rate_429: float = Field(0.0, ge=0, le=1)
    """Share of API requests answered 429 (Retry-After: 1)."""
    error_rate_500: float = Field(0.0, ge=0, le=1)
    """Share answered 500 UNKNOWN_EXCEPTION."""
    error_rate_503: float = Field(0.0, ge=0, le=1)
    """Share answered 503 SERVER_UNAVAILABLE."""
    session_expiry_rate: float = Field(0.0, ge=0, le=1)
    """Share of requests whose session is expired on arrival (401 INVALID_SESSION_ID, token revoked)."""
    latency_ms: float = Field(0.0, ge=0, le=60_000)
    """Latency added to every API request."""
    latency_jitter_ms: float = Field(0.0, ge=0, le=60_000)
    """Extra latency, uniformly distributed in [0, jitter)."""
    query_timeout_rows: int | None = Field(None, ge=1)
    """Queries and Bulk jobs with more result rows than this fail with QUERY_TIMEOUT."""
    seed: int = Field(0, ge=0)
    """Seed of the fault sequence."""

    # answers that break on the way (per object, every time)
    malformed_json_objects: list[str] = Field(default_factory=list)
    """REST query pages of these objects arrive cut in half (malformed JSON)."""
    truncated_csv_objects: list[str] = Field(default_factory=list)
    """Bulk result chunks of these objects end early, at a line break (fewer rows than Sforce-NumberOfRecords)."""
    unknown_type_objects: list[str] = Field(default_factory=list)
    """Describe of these objects lists one more field, of a type no client knows (``hologram``)."""
    dropped_connection_objects: list[str] = Field(default_factory=list)
    """The first results chunk of each Bulk job of these objects is cut off mid-body (once per job)."""
    bulk_unsupported_objects: list[str] = Field(default_factory=list)
    """Bulk API 2.0 refuses query jobs on these objects, as Salesforce does for objects Bulk does not support."""

    # the org itself misbehaving (applied along with live activity; also injected through the admin API)
    late_commit_rate: float = Field(0.0, ge=0, le=1)
    """Share of live-activity operations followed by a transaction that commits late (backdated audit times)."""
    late_commit_seconds: float = Field(1_800.0, gt=0, le=14 * 86_400)
    """How far in the past a late transaction's SystemModstamp lies (more than an extractor's lookback)."""
    formula_drift_rate: float = Field(0.0, ge=0, le=1)
    """Share of live-activity operations followed by a formula field changing without a SystemModstamp bump."""
    hard_delete_rate: float = Field(0.0, ge=0, le=1)
    """Share of live-activity operations followed by a hard delete (a record purged from the recycle bin)."""

    def active(self) -> bool:
        """Whether any per-request fault is configured."""
        return bool(
            self.error_rate_429 or self.error_rate_500 or self.error_rate_503 or self.session_expiry_rate
            or self.latency_ms or self.latency_jitter_ms
        )  # fmt: skip

    def breaks(self, kind: str, sobject: str | None) -> bool:
        """Whether answers about ``sobject`` are damaged in this way (``kind``: malformed_json, truncated_csv…)."""
        if not sobject:
            return False
        names: list[str] = getattr(self, f"{kind}_objects")
        return sobject.lower() in {n.lower() for n in names}


@dataclass(frozen=True)
class Fate:
    """What happens to one request."""

    delay_seconds: float
    error: ApiError | None
    expire_session: bool


class Faults:
    """The current fault configuration and the request counter."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self._count = 0
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}

    def configure(self, changes: dict[str, Any], replace: bool = False) -> FaultConfig:
        """Apply a partial (or, with ``replace``, a full) configuration; restarts the sequence."""
        base = {} if replace else self.config.model_dump()
        try:
            config = FaultConfig.model_validate({**base, **changes})
        except ValidationError as exc:
            raise ApiError(400, "INVALID_FAULT_CONFIG", describe_validation(exc, "fault configuration")) from None
        with self._lock:
            self.config = config
            self._count = 0
        return config

    def next_fate(self) -> Fate:
        """The fate of the next API request."""
        config = self.config
        if not config.active():
            return Fate(0.0, None, False)
        with self._lock:
            self._count += 1
            n = self._count
        index = np.array([n], dtype=np.uint64)
        draw = float(mix(stream_key(config.seed, "faults", "kind"), index)[0] >> np.uint64(11)) / 2.0**53
        jitter = float(mix(stream_key(config.seed, "faults", "jitter"), index)[0] >> np.uint64(11)) / 2.0**53
        delay = (config.latency_ms + config.latency_jitter_ms * jitter) / 1000.0
        error = None
        expire = False
        edge = config.error_rate_429
        if draw < edge:
            error = ApiError(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests: try again later.")
        elif draw < (edge := edge + config.error_rate_500):
            error = ApiError(500, "UNKNOWN_EXCEPTION", f"An unexpected error occurred. Please include this ErrorId "
                             f"if you contact support: {n:010d}-{config.seed:05d} (-1)")  # fmt: skip
        elif draw < (edge := edge + config.error_rate_503):
            error = ApiError(503, "SERVER_UNAVAILABLE", "Service temporarily unavailable, try again later.")
        elif draw < edge + config.session_expiry_rate:
            expire = True
        if error is not None or expire:
            name = "session_expiry" if expire else str(error.status if error else "")
            with self._lock:
                self.injected[name] = self.injected.get(name, 0) + 1
        return Fate(delay, error, expire)

    def query_timeout(self) -> int | None:
        """The row budget of a query, if one is set."""
        return self.config.query_timeout_rows


def query_timeout_error() -> ApiError:
    """Salesforce's answer to a query that ran too long."""
    return ApiError(400, "QUERY_TIMEOUT", "Your query request was running for too long.")
