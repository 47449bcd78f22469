"""Replay ids on the wire: the change log's position as 8 big-endian bytes.

Clients treat them as opaque bytes (Salesforce's are too); the simulator's happen to be the
log position, so that a replay id maps straight back to where a subscription resumes.
"""

from __future__ import annotations

REPLAY_BYTES = 8


def to_bytes(position: int) -> bytes:
    """A log position as a replay id."""
    return int(position).to_bytes(REPLAY_BYTES, "big")


def from_bytes(replay_id: bytes) -> int | None:
    """A replay id as a log position (None when it is not one of ours)."""
    if len(replay_id) != REPLAY_BYTES:
        return None
    return int.from_bytes(replay_id, "big")
