"""The event contracts between sfpipe's services (DESIGN.md §4), in one module.

Every event is a CloudEvents 1.0 envelope whose ``data`` is one of the pydantic models
below. The same event reaches a handler in three shapes — an Eventarc binary-mode
CloudEvent, a structured CloudEvent, or a Pub/Sub push envelope (locally, from the
emulator) — and :func:`parse_http` turns each into one :class:`CloudEvent`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sfpipe.errors import BadInputError, describe_validation
from sfpipe.ids import is_run_id

SPEC_VERSION = "1.0"
GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"
GCS_DELETED = "google.cloud.storage.object.v1.deleted"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


class EventType(StrEnum):
    """sfpipe's own event types; each has one topic (see ``topology.yaml``)."""

    EXTRACT_COMPLETED = "sfpipe.extract.completed"
    LOAD_COMPLETED = "sfpipe.load.completed"
    LOAD_FAILED = "sfpipe.load.failed"
    TRANSFORM_COMPLETED = "sfpipe.transform.completed"
    TRANSFORM_FAILED = "sfpipe.transform.failed"
    QUALITY_COMPLETED = "sfpipe.quality.completed"
    QUALITY_ALERT = "sfpipe.quality.alert"
    CDC_CHANGE = "sfpipe.cdc.change"
    RECONCILE_ALERT = "sfpipe.reconcile.alert"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunData(_Data):
    """Data that every sfpipe event carries."""

    run_id: str

    @field_validator("run_id")
    @classmethod
    def _run_id_form(cls, value: str) -> str:
        if not is_run_id(value):
            msg = "expected a run id like 20260101T000000Z-0a1b2c3d"
            raise ValueError(msg)
        return value


class ObjectExtract(_Data):
    """What one object contributed to an extract run."""

    window_from: datetime | None
    window_to: datetime
    rows: int = Field(ge=0)
    files: int = Field(ge=0)


class ExtractCompleted(RunData):
    """The extractor finished a run and wrote its manifest."""

    manifest_uri: str
    objects: dict[str, ObjectExtract]
    failed: dict[str, str] = Field(default_factory=dict)


class ObjectLoad(_Data):
    """What loading one object changed in the raw layer."""

    inserted: int = Field(ge=0)
    updated: int = Field(ge=0)
    deleted: int = Field(ge=0)
    seconds: float = Field(ge=0)
    path: Literal["warehouse", "beam", "cdc"] = "warehouse"


class LoadCompleted(RunData):
    """The loader merged a run into the raw layer."""

    manifest_uri: str
    objects: dict[str, ObjectLoad]


class LoadFailed(RunData):
    """The loader could not load a run (or some of its objects)."""

    manifest_uri: str
    reason: str
    objects: dict[str, str] = Field(default_factory=dict)
    loaded: dict[str, ObjectLoad] = Field(default_factory=dict)


class ActionReport(_Data):
    """One Dataform action's outcome."""

    name: str
    kind: str = "table"
    status: Literal["succeeded", "failed", "skipped"]
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None


class TransformCompleted(RunData):
    """Dataform built every action of a run."""

    actions: list[ActionReport]
    invocation: str | None = None


class TransformFailed(RunData):
    """A Dataform action or assertion failed."""

    reason: str
    actions: list[ActionReport] = Field(default_factory=list)
    invocation: str | None = None


class SuiteResult(_Data):
    """One expectation suite's totals."""

    suite: str
    passed: int = Field(ge=0)
    failed: int = Field(ge=0)


class FailingExpectation(_Data):
    """An expectation that did not hold."""

    suite: str
    expectation: str
    severity: Literal["error", "warning"]
    column: str | None = None
    observed: Any = None
    unexpected_count: int | None = None
    table: str | None = None


class QualityCompleted(RunData):
    """The quality checks of a run finished (whatever their outcome)."""

    suites: list[SuiteResult]
    docs_uri: str | None = None


class QualityAlert(RunData):
    """At least one error-severity expectation failed."""

    failing: list[FailingExpectation]


class ChangeType(StrEnum):
    """Salesforce's change event types, gap events included."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    UNDELETE = "UNDELETE"
    GAP_CREATE = "GAP_CREATE"
    GAP_UPDATE = "GAP_UPDATE"
    GAP_DELETE = "GAP_DELETE"
    GAP_UNDELETE = "GAP_UNDELETE"
    GAP_OVERFLOW = "GAP_OVERFLOW"


class CdcChange(RunData):
    """One Salesforce change event, decoded, as the cdc-publisher forwards it."""

    entity: str
    change_type: ChangeType
    record_ids: list[str]
    changed_fields: list[str] = Field(default_factory=list)
    nulled_fields: list[str] = Field(default_factory=list)
    diff_fields: list[str] = Field(default_factory=list)
    values: dict[str, Any] = Field(default_factory=dict)
    commit_timestamp: datetime
    commit_number: int
    transaction_key: str
    sequence_number: int = 0
    replay_id: str | None = None
    commit_user: str | None = None
    """The user whose transaction made the change (``LastModifiedById`` of a delete)."""
    field_types: dict[str, str] = Field(default_factory=dict)
    """Salesforce type of each field in ``values`` (from the event schema), to type new columns."""


class ReconcileAlert(RunData):
    """Reconciliation found a difference that repair could not close."""

    objects: dict[str, dict[str, int]]


class StorageObject(BaseModel):
    """The part of a GCS object resource that handlers use."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    bucket: str
    name: str
    generation: int
    size: int | None = None
    content_type: str | None = Field(default=None, alias="contentType")

    @property
    def uri(self) -> str:
        """`gs://bucket/name`."""
        return f"gs://{self.bucket}/{self.name}"

    @property
    def key(self) -> str:
        """The idempotency key of an object event: bucket, name and generation."""
        return f"{self.bucket}/{self.name}#{self.generation}"


DATA_MODELS: dict[str, type[BaseModel]] = {
    EventType.EXTRACT_COMPLETED: ExtractCompleted,
    EventType.LOAD_COMPLETED: LoadCompleted,
    EventType.LOAD_FAILED: LoadFailed,
    EventType.TRANSFORM_COMPLETED: TransformCompleted,
    EventType.TRANSFORM_FAILED: TransformFailed,
    EventType.QUALITY_COMPLETED: QualityCompleted,
    EventType.QUALITY_ALERT: QualityAlert,
    EventType.CDC_CHANGE: CdcChange,
    EventType.RECONCILE_ALERT: ReconcileAlert,
    GCS_FINALIZED: StorageObject,
    GCS_DELETED: StorageObject,
}


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope with JSON data."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime | None = None
    subject: str | None = None
    datacontenttype: str | None = "application/json"
    data: Any = None
    delivery_attempt: int | None = None
    ordering_key: str | None = None

    def model_data(self) -> BaseModel:
        """The data as its typed model; a clear error names the bad field."""
        model = DATA_MODELS.get(self.type)
        if model is None:
            msg = f"unknown event type {self.type!r}; expected one of {sorted(DATA_MODELS)}"
            raise BadInputError(msg, field="type")
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise BadInputError(describe_validation(exc, f"{self.type} data"), field="data") from None

    @property
    def idempotency_key(self) -> str:
        """The key a handler records so that a redelivery does nothing (DESIGN.md §4)."""
        if self.type in (GCS_FINALIZED, GCS_DELETED) and isinstance(self.data, Mapping):
            try:
                return StorageObject.model_validate(self.data).key
            except ValidationError:
                return self.id
        return self.id

    def attributes(self) -> dict[str, str]:
        """Pub/Sub message attributes of the binary content mode."""
        attrs = {
            "ce-specversion": self.specversion,
            "ce-type": self.type,
            "ce-source": self.source,
            "ce-id": self.id,
            "ce-time": (self.time or datetime.now(UTC)).isoformat(),
        }
        if self.subject:
            attrs["ce-subject"] = self.subject
        return attrs


def make_event(
    event_type: EventType | str,
    data: BaseModel,
    *,
    service: str,
    subject: str | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """Build an sfpipe event from its typed data."""
    return CloudEvent(
        id=event_id or uuid.uuid4().hex,
        source=f"//sfpipe/{service}",
        type=str(event_type),
        time=datetime.now(UTC),
        subject=subject,
        data=data.model_dump(mode="json"),
    )


def _decode_json(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{what} is not valid JSON ({exc}); expected a JSON document"
        raise BadInputError(msg, field=what) from None


def _require(mapping: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        msg = f"{what} has no {key!r}; expected a {what} with {key!r} set"
        raise BadInputError(msg, field=key)
    return mapping[key]


def from_pubsub_message(
    message: Mapping[str, Any],
    *,
    subscription: str | None = None,
    delivery_attempt: int | None = None,
) -> CloudEvent:
    """A CloudEvent from a Pub/Sub message (push envelope `message` or a pulled message).

    The message is either sfpipe's binary mode (``ce-*`` attributes, JSON data) or a GCS
    notification (``eventType``, ``bucketId``, ``objectId``, ``objectGeneration``).
    """
    attributes: Mapping[str, str] = message.get("attributes") or {}
    raw = message.get("data") or ""
    if isinstance(raw, str):
        try:
            payload = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            msg = "message.data is not base64; expected the base64 of the event's JSON data"
            raise BadInputError(msg, field="message.data") from None
    else:
        payload = bytes(raw)
    message_id = message.get("messageId") or message.get("message_id") or ""
    ordering_key = message.get("orderingKey") or message.get("ordering_key") or None
    if "ce-type" in attributes:
        return _validated(
            {
                "specversion": attributes.get("ce-specversion", SPEC_VERSION),
                "id": attributes.get("ce-id") or message_id,
                "source": attributes.get("ce-source", ""),
                "type": attributes["ce-type"],
                "time": attributes.get("ce-time"),
                "subject": attributes.get("ce-subject"),
                "data": _decode_json(payload, "message.data"),
                "delivery_attempt": delivery_attempt,
                "ordering_key": ordering_key,
            }
        )
    if "eventType" in attributes:
        kind = attributes["eventType"]
        ce_type = {"OBJECT_FINALIZE": GCS_FINALIZED, "OBJECT_DELETE": GCS_DELETED}.get(kind)
        if ce_type is None:
            msg = f"GCS notification eventType {kind!r} is not handled; expected OBJECT_FINALIZE"
            raise BadInputError(msg, field="attributes.eventType")
        bucket = _require(attributes, "bucketId", "GCS notification")
        name = _require(attributes, "objectId", "GCS notification")
        generation = _require(attributes, "objectGeneration", "GCS notification")
        resource = _decode_json(payload, "message.data") or {}
        data = {**resource, "bucket": bucket, "name": name, "generation": generation}
        return _validated(
            {
                "id": message_id or f"{bucket}/{name}#{generation}",
                "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
                "type": ce_type,
                "time": attributes.get("eventTime"),
                "subject": f"objects/{name}",
                "data": data,
                "delivery_attempt": delivery_attempt,
            }
        )
    msg = (
        "Pub/Sub message has no event attributes; expected CloudEvent attributes "
        "(ce-type, ce-id, ce-source) or a GCS notification (eventType, bucketId, objectId)"
    )
    raise BadInputError(msg, field="message.attributes")


def _validated(fields: dict[str, Any]) -> CloudEvent:
    try:
        return CloudEvent.model_validate(fields)
    except ValidationError as exc:
        raise BadInputError(describe_validation(exc, "CloudEvent"), field="envelope") from None


def parse_http(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Turn any of the delivery shapes sfpipe accepts into one CloudEvent.

    - binary mode: ``ce-*`` headers, the body is the data (Eventarc, sfpipe's own calls);
    - structured mode: ``Content-Type: application/cloudevents+json``;
    - Pub/Sub push: ``{"message": {...}, "subscription": ...}`` (the local emulator).

    An Eventarc event that wraps a Pub/Sub message (``messagePublished``) is unwrapped to
    the sfpipe event inside it.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    content_type = lower.get("content-type", "")
    if "ce-type" in lower:
        event = _validated(
            {
                "specversion": lower.get("ce-specversion", SPEC_VERSION),
                "id": lower.get("ce-id", ""),
                "source": lower.get("ce-source", ""),
                "type": lower["ce-type"],
                "time": lower.get("ce-time"),
                "subject": lower.get("ce-subject"),
                "datacontenttype": content_type or "application/json",
                "data": _decode_json(body, "body"),
            }
        )
    else:
        envelope = _decode_json(body, "body")
        if not isinstance(envelope, dict):
            msg = "body is not a JSON object; expected a CloudEvent or a Pub/Sub push envelope"
            raise BadInputError(msg, field="body")
        if "message" in envelope and "specversion" not in envelope:
            message = envelope["message"]
            if not isinstance(message, dict):
                msg = "Pub/Sub push envelope: 'message' must be an object"
                raise BadInputError(msg, field="message")
            attempt = envelope.get("deliveryAttempt")
            return from_pubsub_message(
                message,
                subscription=envelope.get("subscription"),
                delivery_attempt=int(attempt) if attempt is not None else None,
            )
        if "specversion" in envelope or content_type.startswith("application/cloudevents+json"):
            event = _validated(envelope)
        else:
            msg = (
                "body is not an event; expected a CloudEvent (specversion, id, source, type) "
                "or a Pub/Sub push envelope (message)"
            )
            raise BadInputError(msg, field="body")
    if event.type == PUBSUB_PUBLISHED and isinstance(event.data, dict) and "message" in event.data:
        return from_pubsub_message(event.data["message"], subscription=event.data.get("subscription"))
    return event


def from_cloudevents_sdk(event: Any) -> CloudEvent:
    """Convert the ``cloudevents`` SDK object that functions-framework passes to a handler."""
    attrs = dict(event.get_attributes())
    data = event.get_data()
    if isinstance(data, bytes | bytearray):
        data = _decode_json(bytes(data), "data")
    parsed = _validated({**attrs, "data": data})
    if parsed.type == PUBSUB_PUBLISHED and isinstance(data, dict) and "message" in data:
        return from_pubsub_message(data["message"], subscription=data.get("subscription"))
    return parsed
