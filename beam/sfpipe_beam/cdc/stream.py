"""The local CDC stream: a streaming pull of ``cdc-stream``, applied to the raw layer in micro-batches.

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
    from google.cloud.pubsub_v1.subscriber.message import Message

    from sfpipe.adapters.warehouse.base import Warehouse
    from sfpipe.config import Settings

log = logging.getLogger(__name__)

APPLY_ATTEMPTS = 5


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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (without the lag samples)."""
        out = {k: v for k, v in self.__dict__.items() if k != "lags_ms"}
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

    def add(self, item: Any) -> None:
        """One more message (called from the subscriber's callback threads)."""
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


def parse(messages: Sequence[Message]) -> tuple[list[Change], list[Message], list[Message]]:
    """Changes of the parsable messages, those messages, and the ones to refuse."""
    changes: list[Change] = []
    good: list[Message] = []
    bad: list[Message] = []
    for message in messages:
        try:
            changes.extend(from_message(message.data, message.attributes))
            good.append(message)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("refusing CDC message %s: %s", message.message_id, exc)
            bad.append(message)
    return changes, good, bad


class CdcStream:
    """Pulls ``cdc-stream`` and applies it until stopped."""

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

    def stop(self) -> None:
        """Finish the batch in hand and stop pulling."""
        self.stop_event.set()

    def _callback(self, message: Message) -> None:
        self.metrics.received += 1
        self.batcher.add(message)

    def apply_batch(self, messages: Sequence[Message]) -> ApplyResult | None:
        """Parse, apply in one transaction (retrying transient failures), then acknowledge."""
        changes, good, bad = parse(messages)
        for message in bad:
            message.nack()
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
                    for message in good:
                        message.nack()
                    raise
                time.sleep(delay)
                delay *= 2
        for message in good:
            message.ack()
        self.metrics.batches += 1
        self.metrics.applied += len(good)
        self.metrics.last_batch_seconds = time.monotonic() - started
        if result.lag_ms:
            self.metrics.last_lag_ms = max(result.lag_ms)
            if self.keep_lags:
                self.metrics.lags_ms.extend(result.lag_ms)
        return result

    def run(self) -> None:
        """Pull and apply until :meth:`stop`; a failed pull or a persistent apply failure raises."""
        from google.cloud import pubsub_v1

        self.applier.ensure()
        flow = pubsub_v1.types.FlowControl(max_messages=max(2 * self.batcher.max_batch, 1_000),
                                           max_bytes=512 << 20)  # fmt: skip
        future = self.subscriber.subscribe(self.subscription, callback=self._callback, flow_control=flow)
        self.metrics.state = "streaming"
        try:
            while not self.stop_event.is_set():
                if future.done():
                    future.result()
                batch = self.batcher.take(self.stop_event)
                if batch:
                    self.apply_batch(batch)
        finally:
            future.cancel()
            try:
                future.result(timeout=10)
            except Exception:  # noqa: BLE001 - the pull was cancelled on purpose; its ending error is expected
                log.debug("streaming pull ended")
            self.metrics.state = "stopped"


def build(settings: Settings) -> CdcStream:
    """A stream on the factory's warehouse and subscriber."""
    from sfpipe.adapters.factory import subscriber_client, warehouse

    return CdcStream(settings, warehouse(settings), subscriber_client(settings))
