"""The replay checkpoint in the state bucket: one JSON object, replay id per channel.

Every write carries ``if_generation_match`` with the generation this process last read or wrote.
A second publisher on the same state (a rollout overlap, a stray local process) makes the other's
next write fail loudly instead of silently moving the position backwards or forwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sfpipe.adapters.storage import ObjectStore
from sfpipe.errors import ConflictError, NotFoundError, TerminalError
from sfpipe.lake import cdc_checkpoint_uri


class CheckpointConflict(TerminalError):
    """Another writer changed the checkpoint: this process must not continue from its own position."""


@dataclass
class Position:
    """Where a channel's subscription resumes, and the newest commit published before it."""

    replay_id: bytes
    commit_timestamp: datetime | None = None
    published: int = 0


class Checkpoints:
    """Reads and writes ``salesforce/cdc/checkpoint.json`` with generation preconditions."""

    def __init__(self, store: ObjectStore, state_bucket: str) -> None:
        self.store = store
        self.uri = cdc_checkpoint_uri(state_bucket)
        self.generation: int | None = None
        self.document: dict[str, Any] = {"channels": {}}
        self.writes = 0

    def load(self, channel: str) -> Position | None:
        """The channel's position (None before the first checkpoint); remembers the generation."""
        try:
            document, generation = self.store.get_json(self.uri)
        except NotFoundError:
            self.generation = 0
            self.document = {"channels": {}}
            return None
        self.generation = generation
        self.document = document if isinstance(document, dict) else {"channels": {}}
        entry = (self.document.get("channels") or {}).get(channel)
        if not entry:
            return None
        stamp = entry.get("commit_timestamp")
        return Position(
            replay_id=bytes.fromhex(entry["replay_id"]),
            commit_timestamp=datetime.fromisoformat(stamp) if stamp else None,
            published=int(entry.get("published") or 0),
        )

    def save(self, channel: str, position: Position) -> None:
        """Write the channel's position, only over the generation last seen."""
        if self.generation is None:
            self.load(channel)
        channels = dict(self.document.get("channels") or {})
        channels[channel] = {
            "replay_id": position.replay_id.hex(),
            "commit_timestamp": position.commit_timestamp.isoformat() if position.commit_timestamp else None,
            "published": position.published,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        document = {**self.document, "channels": channels}
        try:
            stored = self.store.put_json(self.uri, document, if_generation_match=self.generation)
        except ConflictError as exc:
            msg = f"the CDC checkpoint {self.uri} was changed by another writer: {exc}"
            raise CheckpointConflict(msg) from None
        self.generation = stored.generation
        self.document = document
        self.writes += 1
