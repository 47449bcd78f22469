"""The ``eventbus.v1.PubSub`` servicer: auth, topics, schemas, and flow-controlled subscriptions.

A Subscribe stream reads the change log from its start position and sends at most as many
events as the client has requested (``num_requested`` adds up, capped at 100 outstanding, as at
Salesforce). When there is nothing to send for ``keepalive_seconds`` it sends an empty
FetchResponse; every response, keepalives included, carries the 8-byte replay id the
subscription stands at, so that a quiet client can checkpoint too.

Errors follow Salesforce: a gRPC status plus an ``error-code`` trailer (an unknown or expired
session is UNAUTHENTICATED with ``…service.auth.error``; a replay id outside the retention
window is INVALID_ARGUMENT with ``…replayid.corrupted``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import grpc

from sfpipe.salesforce.pubsub._generated import pubsub_api_pb2 as pb2
from sfpipe.salesforce.pubsub._generated import pubsub_api_pb2_grpc as pb2_grpc
from sfpipe.salesforce.pubsub.client import AUTH_ERROR, REPLAY_CORRUPTED
from sfpipe.salesforce.pubsub.events import to_avro
from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.pubsub_api import replay
from sfpipe_simulator.pubsub_api.schemas import Topic, encoder, resolve_topic, schemas_by_id

if TYPE_CHECKING:
    from sfpipe_simulator.runtime import Runtime
    from sfpipe_simulator.store import ChangeEvent

log = logging.getLogger(__name__)

MAX_OUTSTANDING = 100
TOPIC_NOT_FOUND = "sfdc.platform.eventbus.grpc.topic.not.found"
SCHEMA_NOT_FOUND = "sfdc.platform.eventbus.grpc.schema.not.found"
PUBLISH_DENIED = "sfdc.platform.eventbus.grpc.publish.not.allowed"
TOPIC_MISMATCH = "sfdc.platform.eventbus.grpc.subscription.topic.mismatch"
_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class PubSubConfig:
    """How the simulated Pub/Sub API behaves."""

    keepalive_seconds: float = 270.0
    """An empty FetchResponse follows this long without events (Salesforce: within 270 s)."""
    gap_every: int = 0
    """Send every Nth event (by log position) as its GAP_ event: header only, no fields."""
    overflow_every: int = 0
    """Send every Nth event as a GAP_OVERFLOW of its object (no record ids, no fields)."""


def _rpc_id() -> str:
    return uuid.uuid4().hex


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, error_code: str, message: str) -> NoReturn:
    rpc_id = _rpc_id()
    context.set_trailing_metadata((("error-code", error_code), ("rpc-id", rpc_id)))
    context.abort(code, f"{message} rpcId: {rpc_id}")
    raise AssertionError("unreachable")  # pragma: no cover - abort raises


class PubSubService(pb2_grpc.PubSubServicer):
    """Serves one simulated org's change log as the Salesforce Pub/Sub API."""

    def __init__(self, rt: Runtime, config: PubSubConfig | None = None) -> None:
        self.rt = rt
        self.config = config or PubSubConfig()
        self.stopping = threading.Event()
        self.subscriptions = 0
        self.events_sent = 0
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------ helpers

    def _authorize(self, context: grpc.ServicerContext) -> None:
        """The REST API's sessions: a missing, unknown or idle token is refused, so is another org's id."""
        metadata = {k.lower(): v for k, v in context.invocation_metadata()}
        token = metadata.get("accesstoken")
        try:
            self.rt.auth.check(str(token) if token else None)
        except ApiError:
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR,
                   "Authentication failed: the access token is missing, invalid or expired")  # fmt: skip
        tenant = str(metadata.get("tenantid") or "")
        if tenant[:15] != self.rt.org_id[:15]:
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR,
                   f"Authentication failed: tenantid {tenant!r} is not this org's id")  # fmt: skip
        if not metadata.get("instanceurl"):
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, "Authentication failed: no instanceurl")

    def _topic(self, name: str, context: grpc.ServicerContext) -> Topic:
        topic = resolve_topic(name)
        if topic is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, TOPIC_NOT_FOUND,
                   f"Topic {name!r} does not exist; change events are on /data/ChangeEvents "
                   "or /data/<Object>ChangeEvent")  # fmt: skip
        return topic

    def consumer_event(self, event: ChangeEvent) -> pb2.ConsumerEvent:
        """One change-log entry as a ConsumerEvent (Avro payload, 8-byte replay id)."""
        enc = encoder(event.entity)
        change_type = event.change_type
        values: dict[str, Any] = event.values
        record_ids = list(event.record_ids)
        changed, nulled, diff = event.changed_fields, event.nulled_fields, event.diff_fields
        position = event.replay_id
        if self.config.overflow_every and position % self.config.overflow_every == 0:
            change_type, values, record_ids, changed, nulled, diff = "GAP_OVERFLOW", {}, [], (), (), ()
        elif self.config.gap_every and position % self.config.gap_every == 0:
            change_type, values, changed, nulled, diff = f"GAP_{change_type}", {}, (), (), ()
        header = {
            "entityName": event.entity,
            "recordIds": record_ids,
            "changeType": change_type,
            "changeOrigin": event.change_origin,
            "transactionKey": event.transaction_key,
            "sequenceNumber": event.sequence_number,
            "commitTimestamp": to_avro(event.commit_timestamp, "datetime"),
            "commitNumber": event.commit_number,
            "commitUser": event.commit_user,
            "nulledFields": enc.bitmaps(nulled),
            "diffFields": enc.bitmaps(diff),
            "changedFields": enc.bitmaps(changed),
        }
        payload = enc.encode(header, values)
        event_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{self.rt.org_id}:{position}"))
        return pb2.ConsumerEvent(
            event=pb2.ProducerEvent(id=event_id, schema_id=enc.schema_id, payload=payload),
            replay_id=replay.to_bytes(position),
        )

    # ------------------------------------------------------------------ unary calls

    def GetTopic(self, request: pb2.TopicRequest, context: grpc.ServicerContext) -> pb2.TopicInfo:
        """A channel's description; change events can be subscribed to, not published."""
        self._authorize(context)
        topic = self._topic(request.topic_name, context)
        return pb2.TopicInfo(topic_name=topic.name, tenant_guid=self.rt.org_id, can_publish=False,
                             can_subscribe=True, schema_id=topic.schema_id, rpc_id=_rpc_id())  # fmt: skip

    def GetSchema(self, request: pb2.SchemaRequest, context: grpc.ServicerContext) -> pb2.SchemaInfo:
        """An event schema's JSON by id."""
        self._authorize(context)
        enc = schemas_by_id().get(request.schema_id)
        if enc is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, SCHEMA_NOT_FOUND, f"Schema {request.schema_id!r} not found")
        return pb2.SchemaInfo(schema_json=enc.schema_json, schema_id=enc.schema_id, rpc_id=_rpc_id())

    def Publish(self, request: pb2.PublishRequest, context: grpc.ServicerContext) -> pb2.PublishResponse:
        """Change events come from record changes only: publishing to them is refused."""
        self._authorize(context)
        topic = self._topic(request.topic_name, context)
        _abort(context, grpc.StatusCode.PERMISSION_DENIED, PUBLISH_DENIED,
               f"Publishing to {topic.name} is not allowed: change events are published by record changes")  # fmt: skip

    def PublishStream(
        self, request_iterator: Iterator[pb2.PublishRequest], context: grpc.ServicerContext
    ) -> Iterator[pb2.PublishResponse]:
        """As :meth:`Publish`, for the first request of the stream."""
        self._authorize(context)
        for request in request_iterator:
            yield self.Publish(request, context)

    def ManagedSubscribe(
        self, request_iterator: Iterator[pb2.ManagedFetchRequest], context: grpc.ServicerContext
    ) -> Iterator[pb2.ManagedFetchResponse]:
        """Managed subscriptions (a Salesforce beta) are not simulated."""
        self._authorize(context)
        _abort(context, grpc.StatusCode.UNIMPLEMENTED, "sfdc.platform.eventbus.grpc.managed.subscription.unsupported",
               "Managed subscriptions are not available in the simulator; use Subscribe")  # fmt: skip
        yield  # pragma: no cover

    # ------------------------------------------------------------------ Subscribe

    def _start_position(self, request: pb2.FetchRequest, context: grpc.ServicerContext) -> int:
        changes = self.rt.store.changes
        if request.replay_preset == pb2.ReplayPreset.EARLIEST:
            return max(0, changes.earliest() - 1)
        if request.replay_preset == pb2.ReplayPreset.CUSTOM:
            position = replay.from_bytes(request.replay_id)
            if position is None or position < changes.earliest() - 1 or position > changes.latest():
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, REPLAY_CORRUPTED,
                       "The Replay ID validation failed: it is not in this org's stream or is older than "
                       "the 72-hour retention window")  # fmt: skip
            return position
        return changes.latest()

    def Subscribe(
        self, request_iterator: Iterator[pb2.FetchRequest], context: grpc.ServicerContext
    ) -> Iterator[pb2.FetchResponse]:
        """Events after the start position, no more than requested, keepalives when quiet."""
        self._authorize(context)
        try:
            first = next(request_iterator)
        except StopIteration:
            return
        topic = self._topic(first.topic_name, context)
        position = self._start_position(first, context)
        state = _FlowControl(min(max(first.num_requested, 0), MAX_OUTSTANDING))
        reader = threading.Thread(target=state.read, args=(request_iterator, topic.name), daemon=True,
                                  name="sfpipe-pubsub-requests")  # fmt: skip
        reader.start()
        with self._count_lock:
            self.subscriptions += 1
        changes = self.rt.store.changes
        last_sent = time.monotonic()
        try:
            while context.is_active() and not self.stopping.is_set():
                if state.error:
                    _abort(context, grpc.StatusCode.INVALID_ARGUMENT, TOPIC_MISMATCH, state.error)
                if state.closed and state.pending == 0:
                    return
                if position < changes.earliest() - 1:
                    _abort(context, grpc.StatusCode.INVALID_ARGUMENT, REPLAY_CORRUPTED,
                           "The subscription fell behind the 72-hour retention window")  # fmt: skip
                pending = state.pending
                if pending > 0:
                    latest = changes.latest()
                    events = changes.read(position, pending, set(topic.entities) if topic.entities else None)
                    if events:
                        position = events[-1].replay_id if len(events) == pending else max(latest, events[-1].replay_id)
                        batch = [self.consumer_event(e) for e in events]
                        state.take(len(batch))
                        with self._count_lock:
                            self.events_sent += len(batch)
                        yield pb2.FetchResponse(events=batch, latest_replay_id=replay.to_bytes(position),
                                                rpc_id=_rpc_id(), pending_num_requested=state.pending)  # fmt: skip
                        last_sent = time.monotonic()
                        continue
                    position = max(position, latest)
                quiet = time.monotonic() - last_sent
                if quiet >= self.config.keepalive_seconds:
                    yield pb2.FetchResponse(latest_replay_id=replay.to_bytes(position), rpc_id=_rpc_id(),
                                            pending_num_requested=state.pending)  # fmt: skip
                    last_sent = time.monotonic()
                    continue
                wait = min(_POLL_SECONDS, self.config.keepalive_seconds - quiet)
                if pending > 0:
                    changes.wait(position, wait)
                else:
                    state.wait(wait)
        finally:
            with self._count_lock:
                self.subscriptions -= 1


class _FlowControl:
    """What a subscriber has requested and not yet received, fed by its FetchRequests."""

    def __init__(self, initial: int) -> None:
        self.pending = initial
        self.closed = False
        self.error: str | None = None
        self._cond = threading.Condition()

    def read(self, requests: Iterator[pb2.FetchRequest], topic: str) -> None:
        """Add each later request's ``num_requested`` (capped at 100 outstanding) until the stream ends."""
        try:
            for request in requests:
                with self._cond:
                    if request.topic_name and resolve_topic(request.topic_name) != resolve_topic(topic):
                        self.error = f"FetchRequest names topic {request.topic_name!r}; the stream is on {topic!r}"
                    self.pending = min(MAX_OUTSTANDING, self.pending + max(0, request.num_requested))
                    self._cond.notify_all()
        except grpc.RpcError:
            pass
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def take(self, count: int) -> None:
        """Events were sent."""
        with self._cond:
            self.pending = max(0, self.pending - count)

    def wait(self, timeout: float) -> None:
        """Until more is requested or the timeout passes."""
        with self._cond:
            self._cond.wait(timeout)
