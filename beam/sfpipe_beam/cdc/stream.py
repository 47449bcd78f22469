"""The local CDC stream: pulls of ``cdc-stream``, applied to the raw layer in micro-batches.

Messages are buffered until ``SFPIPE_CDC_STREAM_MAX_BATCH`` arrived or the oldest has waited
``SFPIPE_CDC_STREAM_MAX_WAIT_SECONDS``; the batch goes through the same transform functions as
the Dataflow pipeline (:mod:`sfpipe_beam.cdc.changes`) and one warehouse transaction
(:class:`~sfpipe_beam.cdc.apply.CdcApplier`), and only then is every message of it acknowledged.
A crash between the commit and the acknowledgement redelivers messages the raw layer already
holds, which the column versions make a no-op. A message that cannot be parsed is refused (nack)
so that Pub/Sub dead-letters it after its attempts.

Beam's local streaming runner is not used here: ADR 0094 has the measurements.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sfpipe.errors import TransientError
from sfpipe.ids import new_run_id
from sfpipe_beam.cdc.apply import ApplyResult, CdcApplier
from sfpipe_beam.cdc.changes import Change, from_message

if TYPE_CHECKING:
    from sfpipe.adapters.warehouse.base import Warehouse
    from sfpipe.config import Settings

log = logging.getLogger(__name__)

APPLY_ATTEMPTS = 5
PULL_SECONDS = 2.0
"""Longest a pull waits for messages: also how long stopping may wait for the pull in flight."""


@dataclass
class StreamMetrics:
    """What the stream's ``/healthz`` and ``/metrics`` report."""

    started_at: float = field(default_factory=time.time)
    state: str = "starting"
    received: int = 0
    applied: int = 0
    batches: int = 0
    rejected: int = 0
    retries: int = 0
    last_error: str | None = None
    last_lag_ms: float | None = None
    last_batch_seconds: float | None = None
    lags_ms: list[float] = field(default_factory=list, repr=False)
    stages_ms: list[tuple[float, float, float]] = field(default_factory=list, repr=False)
    """(commit → published, published → pulled, pulled → committed in the warehouse) per change, when kept."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (without the lag samples)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("lags_ms", "stages_ms")}
        out["uptime_seconds"] = round(time.time() - self.started_at, 3)
        return out


class MicroBatcher:
    """Messages in, batches out: the buffer between the pull's callbacks and the applying thread."""

    def __init__(self, max_batch: int, max_wait: float) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._items: list[Any] = []
        self._first: float | None = None
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def add(self, item: Any) -> None:
        """One more message (called from the pulling thread)."""
        with self._cond:
            if not self._items:
                self._first = time.monotonic()
            self._items.append(item)
            if len(self._items) >= self.max_batch:
                self._cond.notify_all()

    def take(self, stop: threading.Event, poll: float = 0.05) -> list[Any]:
        """The next batch: full, or the oldest message waited long enough; empty when stopping."""
        with self._cond:
            while not stop.is_set():
                if self._items:
                    waited = time.monotonic() - (self._first or time.monotonic())
                    if len(self._items) >= self.max_batch or waited >= self.max_wait:
                        break
                    self._cond.wait(min(poll, self.max_wait - waited))
                else:
                    self._cond.wait(poll)
            batch, self._items = self._items[: self.max_batch], self._items[self.max_batch :]
            self._first = time.monotonic() if self._items else None
            return batch


@dataclass(frozen=True)
class Pulled:
    """One pulled message and the ack id that settles it."""

    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    published_at: float = 0.0
    """When Pub/Sub accepted it (epoch seconds)."""
    pulled_at: float = 0.0
    """When this stream received it (epoch seconds)."""


def parse(messages: Sequence[Pulled]) -> tuple[list[Change], list[Pulled], list[Pulled]]:
    """Changes of the parsable messages, those messages, and the ones to refuse."""
    changes: list[Change] = []
    good: list[Pulled] = []
    bad: list[Pulled] = []
    for message in messages:
        try:
            changes.extend(from_message(message.data, message.attributes))
            good.append(message)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("refusing CDC message %s: %s", message.message_id, exc)
            bad.append(message)
    return changes, good, bad


class CdcStream:
    """Pulls ``cdc-stream`` and applies it until stopped.

    One thread pulls (synchronous pulls of up to a batch each, so that no Python runs per message
    before it is needed) into the micro-batcher; the caller's thread applies batches and then
    acknowledges them in bulk.
    """

    def __init__(
        self,
        settings: Settings,
        warehouse: Warehouse,
        subscriber: Any,
        *,
        subscription: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.subscriber = subscriber
        self.subscription = subscriber.subscription_path(settings.project,
                                                         subscription or settings.cdc_stream_subscription)  # fmt: skip
        self.applier = CdcApplier(warehouse)
        self.batcher = MicroBatcher(settings.cdc_stream_max_batch, settings.cdc_stream_max_wait_seconds)
        self.run_id = run_id or new_run_id()
        self.metrics = StreamMetrics()
        self.stop_event = threading.Event()
        self.keep_lags = False
        self._pull_error: BaseException | None = None

    def stop(self) -> None:
        """Finish the batch in hand and stop pulling."""
        self.stop_event.set()

    def _pull_loop(self) -> None:
        from google.api_core import exceptions as gexc

        delay = 0.1
        while not self.stop_event.is_set():
            if len(self.batcher) >= 2 * self.batcher.max_batch:
                time.sleep(0.01)  # the applier is behind: let unacknowledged messages wait at Pub/Sub
                continue
            try:
                response = self.subscriber.pull(
                    request={"subscription": self.subscription, "max_messages": min(self.batcher.max_batch, 1_000)},
                    timeout=PULL_SECONDS,
                )
                delay = 0.1
            except (gexc.DeadlineExceeded, gexc.ServiceUnavailable, gexc.InternalServerError, gexc.Aborted) as exc:
                self.metrics.last_error = str(exc)[:500]
                self.stop_event.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            except BaseException as exc:  # noqa: BLE001 - handed to the applying thread, which raises it
                self._pull_error = exc
                self.stop_event.set()
                return
            now = time.time()
            for received in response.received_messages:
                m = received.message
                self.metrics.received += 1
                published = m.publish_time.timestamp() if m.publish_time else 0.0
                self.batcher.add(Pulled(received.ack_id, m.message_id, bytes(m.data), dict(m.attributes), published,
                                        now))  # fmt: skip

    def _settle(self, messages: Sequence[Pulled], *, ack: bool) -> None:
        ids = [m.ack_id for m in messages]
        for start in range(0, len(ids), 2_500):
            chunk = ids[start : start + 2_500]
            if ack:
                self.subscriber.acknowledge(request={"subscription": self.subscription, "ack_ids": chunk})
            else:
                self.subscriber.modify_ack_deadline(
                    request={"subscription": self.subscription, "ack_ids": chunk, "ack_deadline_seconds": 0}
                )

    def apply_batch(self, messages: Sequence[Pulled]) -> ApplyResult | None:
        """Parse, apply in one transaction (retrying transient failures), then acknowledge."""
        changes, good, bad = parse(messages)
        if bad:
            self._settle(bad, ack=False)
        self.metrics.rejected += len(bad)
        if not good:
            return None
        started = time.monotonic()
        delay = 0.2
        for attempt in range(APPLY_ATTEMPTS):
            try:
                result = self.applier.apply(changes, run_id=self.run_id)
                break
            except TransientError as exc:
                self.metrics.retries += 1
                self.metrics.last_error = str(exc)[:500]
                if attempt == APPLY_ATTEMPTS - 1:
                    self._settle(good, ack=False)
                    raise
                time.sleep(delay)
                delay *= 2
        self._settle(good, ack=True)
        self.metrics.batches += 1
        self.metrics.applied += len(good)
        self.metrics.last_batch_seconds = time.monotonic() - started
        if result.lag_ms:
            self.metrics.last_lag_ms = max(result.lag_ms)
            if self.keep_lags:
                self.metrics.lags_ms.extend(result.lag_ms)
                self._keep_stages(good, changes, result)
        return result

    def _keep_stages(self, messages: Sequence[Pulled], changes: Sequence[Change], result: ApplyResult) -> None:
        """Where each change's latency went: to Pub/Sub, to this stream, to the warehouse commit."""
        assert result.applied_at is not None
        applied = result.applied_at.timestamp()
        commits = {c.event_id: c.commit_timestamp.timestamp() for c in changes}
        for m in messages:
            commit = commits.get(m.attributes.get("ce-id", ""))
            if commit is None or not m.published_at:
                continue
            stages = (m.published_at - commit, m.pulled_at - m.published_at, applied - m.pulled_at)
            self.metrics.stages_ms.append((stages[0] * 1000, stages[1] * 1000, stages[2] * 1000))

    def run(self) -> None:
        """Pull and apply until :meth:`stop`; a failed pull or a persistent apply failure raises."""
        self.applier.ensure()
        puller = threading.Thread(target=self._pull_loop, name="sfpipe-cdc-pull", daemon=True)
        puller.start()
        self.metrics.state = "streaming"
        try:
            while not self.stop_event.is_set():
                batch = self.batcher.take(self.stop_event)
                if batch:
                    self.apply_batch(batch)
            if self._pull_error is not None:
                raise self._pull_error
        finally:
            self.stop_event.set()
            # a pull in flight returns within PULL_SECONDS; what it brings stays unacknowledged and is
            # redelivered after the ack deadline, so stopping need not wait longer than that
            puller.join(PULL_SECONDS)
            self.metrics.state = "stopped"


def build(settings: Settings) -> CdcStream:
    """A stream on the factory's warehouse and subscriber."""
    from sfpipe.adapters.factory import subscriber_client, warehouse

    return CdcStream(settings, warehouse(settings), subscriber_client(settings))
