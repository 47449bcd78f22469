"""Each object's watermark in the state bucket, moved only with a generation precondition.

The document also keeps the field list of the last committed extract, so that a field
that appears in describe is reported once as a new column.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sfpipe.adapters.storage import ObjectStore
from sfpipe.errors import BadInputError, ConflictError, NotFoundError, TerminalError, describe_validation
from sfpipe.lake import watermark_uri


class WatermarkConflictError(TerminalError):
    """Another writer moved a watermark since this run read it: never overwrite silently."""


class WatermarkState(BaseModel):
    """What the state bucket keeps per object."""

    model_config = ConfigDict(extra="ignore")

    object: str
    watermark: datetime | None
    cursor_field: str | None = "SystemModstamp"
    run_id: str
    window_to: datetime | None = None
    fields: list[str] = Field(default_factory=list)
    schema_fingerprint: str | None = None
    updated_at: datetime


def read_state(store: ObjectStore, state_bucket: str, sobject: str) -> tuple[WatermarkState | None, int]:
    """The object's committed state and its generation (0 when there is none yet)."""
    uri = watermark_uri(state_bucket, sobject)
    try:
        raw, generation = store.get_bytes(uri)
    except NotFoundError:
        return None, 0
    try:
        return WatermarkState.model_validate_json(raw), generation
    except ValidationError as exc:
        raise BadInputError(describe_validation(exc, f"watermark {uri}"), field=uri) from None


def write_state(store: ObjectStore, state_bucket: str, state: WatermarkState, generation: int) -> int:
    """Write the state only if it is still at ``generation`` (0: only if absent); the new generation."""
    uri = watermark_uri(state_bucket, state.object)
    try:
        stored = store.put_bytes(
            uri,
            state.model_dump_json(indent=2).encode(),
            content_type="application/json",
            if_generation_match=generation,
        )
    except ConflictError as exc:
        msg = f"watermark of {state.object} was moved by another run since generation {generation}: {exc}"
        raise WatermarkConflictError(msg) from None
    return stored.generation
