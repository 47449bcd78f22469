"""Count a subscription's backlog on the Pub/Sub emulator without consuming it.

The emulator has no metrics API, so the messages have to be pulled to be counted. Two
obvious ways are wrong (measured on emulator 0.8.20, docs/adr/0010-pubsub-emulator.md):

- pull, then ``modify_ack_deadline(0)``: every count raises each message's delivery
  attempt, and after ``max_delivery_attempts`` counts the message is dead-lettered;
- seek a fresh subscription to a snapshot of the watched one: it receives nothing.

What works: snapshot the subscription, pull everything without acknowledging it, then
seek the subscription back to the snapshot. Every message returns to the backlog with its
delivery attempt reset, and nothing was acknowledged, so a crash half-way only delays
the held messages until their ack deadline passes.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from sfpipe.topology import Topology

DEAD_LETTER_SOURCE = "CloudPubSubDeadLetterSourceSubscription"
SNAPSHOT_PREFIX = "sfpipe-status-"


@dataclass
class Backlog:
    """Undelivered messages of one subscription."""

    subscription: str
    messages: int | None = None
    capped: bool = False
    by_source: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def shown(self) -> str:
        """The count as text (``≥ N`` when the count stopped at its limit)."""
        if self.error is not None:
            return "?"
        return f"≥{self.messages}" if self.capped else str(self.messages)


def count_backlog(
    subscriber: pubsub_v1.SubscriberClient,
    project: str,
    subscription: str,
    *,
    limit: int = 5000,
    timeout: float = 10.0,
) -> Backlog:
    """Count a pull subscription's backlog and put every message back."""
    result = Backlog(subscription)
    sub_path = subscriber.subscription_path(project, subscription)
    snapshot = subscriber.snapshot_path(project, f"{SNAPSHOT_PREFIX}{subscription}-{uuid.uuid4().hex[:8]}")
    try:
        subscriber.create_snapshot(request={"name": snapshot, "subscription": sub_path}, timeout=timeout)
    except gexc.GoogleAPICallError as exc:
        result.error = f"cannot snapshot {subscription}: {exc.message}"
        return result
    sources: Counter[str] = Counter()
    seen: set[str] = set()
    try:
        while len(seen) < limit:
            response = subscriber.pull(
                request={
                    "subscription": sub_path,
                    "max_messages": min(1000, limit - len(seen)),
                    "return_immediately": True,
                },
                timeout=timeout,
            )
            fresh = [m for m in response.received_messages if m.message.message_id not in seen]
            if not fresh:
                break
            for received in fresh:
                seen.add(received.message.message_id)
                source = received.message.attributes.get(DEAD_LETTER_SOURCE)
                if source:
                    sources[source] += 1
        result.messages = len(seen)
        result.capped = len(seen) >= limit
        result.by_source = dict(sources)
    except gexc.GoogleAPICallError as exc:
        result.error = f"cannot pull {subscription}: {exc.message}"
    finally:
        try:
            subscriber.seek(request={"subscription": sub_path, "snapshot": snapshot}, timeout=timeout)
        finally:
            subscriber.delete_snapshot(request={"snapshot": snapshot}, timeout=timeout)
    return result


def watched_subscriptions(topology: Topology) -> list[str]:
    """The pull subscriptions people read: every ``*-ops``, ``*-alerts`` and the dead-letter ones."""
    dead_letter = topology.defaults.dead_letter_topic
    names = []
    for topic in topology.topics:
        for sub in topic.subscriptions:
            if sub.push:
                continue
            if topic.name == dead_letter or sub.name.endswith(("-ops", "-alerts")):
                names.append(sub.name)
    return names


def dead_letter_subscriptions(topology: Topology) -> list[str]:
    """The subscriptions on the dead-letter topic."""
    for topic in topology.topics:
        if topic.name == topology.defaults.dead_letter_topic:
            return [s.name for s in topic.subscriptions]
    return []
