"""Apply the topology file to Pub/Sub through the real admin API, and compare it with what is live.

The emulator does not report push, retry or dead-letter settings back (FINDINGS), so
convergence compares what it does report (topics, each subscription's topic, ack
deadline, ordering) and, for the rest, a fingerprint of the declared configuration kept
next to the local state: a changed declaration recreates that subscription.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2

from sfpipe.topology import Subscription, Topic, Topology

log = logging.getLogger(__name__)


@dataclass
class ApplyReport:
    """What applying the topology did."""

    created_topics: list[str] = field(default_factory=list)
    created_subscriptions: list[str] = field(default_factory=list)
    recreated_subscriptions: list[str] = field(default_factory=list)
    unchanged: int = 0


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))


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
) -> dict[str, object]:
    """The CreateSubscription request for one declared subscription."""
    d = topology.defaults
    request: dict[str, object] = {
        "name": f"projects/{project}/subscriptions/{sub.name}",
        "topic": f"projects/{project}/topics/{topic.name}",
        "ack_deadline_seconds": topology.ack_deadline(sub),
        "enable_message_ordering": sub.ordering,
        "retry_policy": {
            "minimum_backoff": _duration(max(0.0, d.retry_min_seconds * retry_scale)),
            "maximum_backoff": _duration(max(0.1, d.retry_max_seconds * retry_scale)),
        },
        "message_retention_duration": _duration(_retention_seconds(sub.retention or d.message_retention)),
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


def apply_topology(
    topology: Topology,
    project: str,
    push_endpoint: Callable[[str], str],
    *,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    state_file: Path | None = None,
    retry_scale: float = 1.0,
) -> ApplyReport:
    """Create what is missing and recreate what changed; harmless to run twice."""
    report = ApplyReport()
    applied: dict[str, str] = {}
    if state_file is not None and state_file.exists():
        applied = json.loads(state_file.read_text())
    for topic in topology.topics:
        try:
            publisher.create_topic(name=publisher.topic_path(project, topic.name))
            report.created_topics.append(topic.name)
        except gexc.AlreadyExists:
            pass
    for topic in topology.topics:
        for sub in topic.subscriptions:
            request = subscription_request(project, topology, topic, sub, push_endpoint, retry_scale)
            digest = fingerprint(request)
            name = str(request["name"])
            try:
                subscriber.create_subscription(request=request)
                report.created_subscriptions.append(sub.name)
            except gexc.AlreadyExists:
                if applied.get(sub.name) not in (None, digest):
                    subscriber.delete_subscription(subscription=name)
                    subscriber.create_subscription(request=request)
                    report.recreated_subscriptions.append(sub.name)
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
) -> list[str]:
    """Where the live Pub/Sub disagrees with the file (empty when they agree)."""
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
    for name, (topic, sub) in sorted(declared_subs.items()):
        live = live_subs.get(name)
        if live is None:
            problems.append(f"subscription {name} is declared but not live")
            continue
        if live.topic.rsplit("/", 1)[-1] != topic.name:
            problems.append(f"subscription {name} is on topic {live.topic} instead of {topic.name}")
        if live.ack_deadline_seconds != topology.ack_deadline(sub):
            problems.append(
                f"subscription {name} has ack deadline {live.ack_deadline_seconds}s, declared {topology.ack_deadline(sub)}s"
            )
        if bool(live.enable_message_ordering) != sub.ordering:
            problems.append(f"subscription {name} ordering is {live.enable_message_ordering}, declared {sub.ordering}")
    for extra in sorted(set(live_subs) - set(declared_subs)):
        problems.append(f"subscription {extra} is live but not declared")
    return problems
