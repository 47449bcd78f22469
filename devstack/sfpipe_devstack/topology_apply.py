"""Apply the topology file to Pub/Sub through the real admin API, and compare it with what is live.

Convergence reads each live subscription back and compares every setting the server
reports. Fields Pub/Sub cannot change in place (topic, message ordering) recreate the
subscription; the rest (push endpoint, ack deadline, retry and dead-letter policies,
retention) are changed with UpdateSubscription, which keeps the backlog. Push
subscriptions get no retry policy on the emulator (see :func:`subscription_request`).

Emulator 0.8.20 reports push, retry and dead-letter settings back; earlier builds were
seen returning them empty (docs/adr/0010-pubsub-emulator.md). So a fingerprint of each
declared request is also kept next to the local state: when the declaration changed
since the last apply, the mutable fields are written again even if the server reports
nothing to compare.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2

from sfpipe.topology import Subscription, Topic, Topology

log = logging.getLogger(__name__)

MUTABLE_FIELDS = (
    "ack_deadline_seconds",
    "push_config",
    "retry_policy",
    "dead_letter_policy",
    "message_retention_duration",
)
"""Subscription fields UpdateSubscription can change (the emulator accepts each)."""


@dataclass
class ApplyReport:
    """What applying the topology did."""

    created_topics: list[str] = field(default_factory=list)
    created_subscriptions: list[str] = field(default_factory=list)
    recreated_subscriptions: list[str] = field(default_factory=list)
    updated_subscriptions: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything was created or changed."""
        return bool(
            self.created_topics
            or self.created_subscriptions
            or self.recreated_subscriptions
            or self.updated_subscriptions
        )


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def _retention_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(text[:-1]) * units[text[-1]]


def subscription_request(
    project: str,
    topology: Topology,
    topic: Topic,
    sub: Subscription,
    push_endpoint: Callable[[str], str],
    retry_scale: float = 1.0,
    *,
    push_retry_policy: bool = False,
) -> dict[str, object]:
    """The CreateSubscription request for one declared subscription.

    A push subscription gets no retry policy unless ``push_retry_policy`` is set: on the
    emulator, several pushes failing together under a retry policy are never delivered
    again (docs/adr/0010-pubsub-emulator.md); without one it redelivers every second and
    dead-letters after ``max_delivery_attempts``. Pull subscriptions keep the declared
    backoff, scaled by ``retry_scale``.
    """
    d = topology.defaults
    request: dict[str, object] = {
        "name": f"projects/{project}/subscriptions/{sub.name}",
        "topic": f"projects/{project}/topics/{topic.name}",
        "ack_deadline_seconds": topology.ack_deadline(sub),
        "enable_message_ordering": sub.ordering,
        "message_retention_duration": _duration(_retention_seconds(sub.retention or d.message_retention)),
    }
    if push_retry_policy or not sub.push:
        request["retry_policy"] = {
            "minimum_backoff": _duration(max(0.0, d.retry_min_seconds * retry_scale)),
            "maximum_backoff": _duration(max(0.1, d.retry_max_seconds * retry_scale)),
        }
    if sub.push:
        request["push_config"] = {"push_endpoint": push_endpoint(sub.push)}
    if sub.dead_letter:
        request["dead_letter_policy"] = {
            "dead_letter_topic": f"projects/{project}/topics/{d.dead_letter_topic}",
            "max_delivery_attempts": d.max_delivery_attempts,
        }
    return request


def fingerprint(request: dict[str, object]) -> str:
    """A stable hash of a subscription request."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _seconds(value: Any) -> float:
    if isinstance(value, timedelta):
        return round(value.total_seconds(), 3)
    if isinstance(value, duration_pb2.Duration):
        return round(value.seconds + value.nanos / 1e9, 3)
    return 0.0


def _view(sub: pubsub_v1.types.Subscription) -> dict[str, Any]:
    """The comparable settings of a subscription (live, or built from a request)."""
    dead_letter = None
    if sub.dead_letter_policy.dead_letter_topic:
        dead_letter = (sub.dead_letter_policy.dead_letter_topic, sub.dead_letter_policy.max_delivery_attempts)
    return {
        "topic": sub.topic,
        "enable_message_ordering": bool(sub.enable_message_ordering),
        "ack_deadline_seconds": sub.ack_deadline_seconds,
        "push_config": sub.push_config.push_endpoint or None,
        "retry_policy": (_seconds(sub.retry_policy.minimum_backoff), _seconds(sub.retry_policy.maximum_backoff)),
        "dead_letter_policy": dead_letter,
        "message_retention_duration": _seconds(sub.message_retention_duration),
    }


def _describe(name: str, value: Any) -> str:
    if name == "push_config":
        return f"push to {value}" if value else "pull"
    if name == "retry_policy":
        return f"backoff {value[0]}s–{value[1]}s"
    if name == "dead_letter_policy":
        return f"dead-letter to {value[0].rsplit('/', 1)[-1]} after {value[1]} attempts" if value else "no dead-letter"
    if name == "message_retention_duration":
        return f"retention {value:.0f}s"
    if name == "ack_deadline_seconds":
        return f"ack deadline {value}s"
    if name == "enable_message_ordering":
        return f"ordering {'on' if value else 'off'}"
    return f"{name} {value}"


def compare(
    live: pubsub_v1.types.Subscription, request: dict[str, object], *, fields: tuple[str, ...] | None = None
) -> dict[str, tuple[Any, Any]]:
    """Fields where the live subscription differs from the request: name → (live, declared)."""
    declared = _view(pubsub_v1.types.Subscription(**request))
    current = _view(live)
    names = fields or tuple(declared)
    return {name: (current[name], declared[name]) for name in names if current[name] != declared[name]}


def _update(subscriber: pubsub_v1.SubscriberClient, request: dict[str, object], differing: set[str]) -> None:
    """Write the mutable fields in place: each declared one, and each live one to be cleared.

    A field the declaration leaves out is cleared by naming it in the mask without a
    value (the emulator rejects an empty dead-letter policy as a policy with no topic).
    """
    declared = {k: request[k] for k in MUTABLE_FIELDS if k in request}
    cleared = [k for k in MUTABLE_FIELDS if k not in request and k in differing]
    subscriber.update_subscription(
        request={
            "subscription": {"name": request["name"], **declared},
            "update_mask": {"paths": [*declared, *cleared]},
        }
    )


def apply_topology(
    topology: Topology,
    project: str,
    push_endpoint: Callable[[str], str],
    *,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    state_file: Path | None = None,
    retry_scale: float = 1.0,
    push_retry_policy: bool = False,
) -> ApplyReport:
    """Create what is missing and converge what changed; harmless to run twice."""
    report = ApplyReport()
    applied: dict[str, str] = {}
    if state_file is not None and state_file.exists():
        try:
            applied = json.loads(state_file.read_text())
        except ValueError:
            applied = {}
    for topic in topology.topics:
        try:
            publisher.create_topic(name=publisher.topic_path(project, topic.name))
            report.created_topics.append(topic.name)
        except gexc.AlreadyExists:
            pass
    for topic in topology.topics:
        for sub in topic.subscriptions:
            request = subscription_request(
                project, topology, topic, sub, push_endpoint, retry_scale, push_retry_policy=push_retry_policy
            )
            digest = fingerprint(request)
            name = str(request["name"])
            try:
                subscriber.create_subscription(request=request)
                report.created_subscriptions.append(sub.name)
            except gexc.AlreadyExists:
                live = subscriber.get_subscription(subscription=name)
                differences = compare(live, request)
                if {"topic", "enable_message_ordering"} & set(differences):
                    log.info("recreating %s: %s", sub.name, ", ".join(differences))
                    subscriber.delete_subscription(subscription=name)
                    subscriber.create_subscription(request=request)
                    report.recreated_subscriptions.append(sub.name)
                elif differences or applied.get(sub.name) not in (None, digest):
                    log.info("updating %s: %s", sub.name, ", ".join(differences) or "declaration changed")
                    _update(subscriber, request, set(differences))
                    report.updated_subscriptions.append(sub.name)
                else:
                    report.unchanged += 1
            applied[sub.name] = digest
    if state_file is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(applied, indent=2, sort_keys=True))
    return report


def live_differences(
    topology: Topology,
    project: str,
    *,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    push_endpoint: Callable[[str], str] | None = None,
    retry_scale: float | None = None,
    push_retry_policy: bool = False,
) -> list[str]:
    """Where the live Pub/Sub disagrees with the file (empty when they agree).

    Without ``push_endpoint`` only push against pull is compared, not the URL; without
    ``retry_scale`` the retry backoff is not compared (it depends on the scale applied).
    """
    problems: list[str] = []
    live_topics = {t.name.rsplit("/", 1)[-1] for t in publisher.list_topics(request={"project": f"projects/{project}"})}
    live_subs = {
        s.name.rsplit("/", 1)[-1]: s for s in subscriber.list_subscriptions(request={"project": f"projects/{project}"})
    }
    declared_topics = {t.name for t in topology.topics}
    for missing in sorted(declared_topics - live_topics):
        problems.append(f"topic {missing} is declared but not live")
    for extra in sorted(live_topics - declared_topics):
        problems.append(f"topic {extra} is live but not declared")
    declared_subs = {s.name: (t, s) for t in topology.topics for s in t.subscriptions}
    endpoint = push_endpoint or (lambda target: f"push:{target}")
    fields = [
        f
        for f in (
            "topic",
            "ack_deadline_seconds",
            "enable_message_ordering",
            "push_config",
            "dead_letter_policy",
            "message_retention_duration",
        )
    ]
    if retry_scale is not None:
        fields.append("retry_policy")
    for name, (topic, sub) in sorted(declared_subs.items()):
        live = live_subs.get(name)
        if live is None:
            problems.append(f"subscription {name} is declared but not live")
            continue
        request = subscription_request(
            project, topology, topic, sub, endpoint, retry_scale or 1.0, push_retry_policy=push_retry_policy
        )
        differences = compare(live, request, fields=tuple(fields))
        if push_endpoint is None and "push_config" in differences:
            live_push, declared_push = differences["push_config"]
            if bool(live_push) == bool(declared_push):
                del differences["push_config"]
        for field_name, (live_value, declared_value) in differences.items():
            problems.append(
                f"subscription {name}: live has {_describe(field_name, live_value)}, "
                f"declared {_describe(field_name, declared_value)}"
            )
    for extra in sorted(set(live_subs) - set(declared_subs)):
        problems.append(f"subscription {extra} is live but not declared")
    return problems
