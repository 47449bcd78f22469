"""Counting a subscription's backlog on the emulator without consuming it (``sfpipe status``)."""

from __future__ import annotations

import pytest

from sfpipe.topology import load_topology
from sfpipe_devstack.backlog import count_backlog, dead_letter_subscriptions, watched_subscriptions
from sfpipe_devstack.testing import pull_all


def test_watched_subscriptions_are_the_ops_alerts_and_dead_letter_ones():
    topology = load_topology()
    watched = watched_subscriptions(topology)
    assert "dead-letter" in watched
    assert "sfpipe-load-failed-alerts" in watched
    assert "sfpipe-extract-completed-ops" in watched
    assert not {"loader", "transform", "quality", "cdc-stream"} & set(watched)
    assert dead_letter_subscriptions(topology) == ["dead-letter"]


@pytest.mark.integration
def test_counting_many_times_neither_consumes_nor_dead_letters(pubsub):
    topic = pubsub.create_topic("events")
    dead = pubsub.create_topic("events-dead")
    sub = pubsub.subscription("events-ops")
    pubsub.subscriber.create_subscription(
        request={
            "name": sub,
            "topic": topic,
            "ack_deadline_seconds": 600,
            "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": 5},
        }
    )
    pubsub.subscriber.create_subscription(request={"name": pubsub.subscription("events-dead-pull"), "topic": dead})
    futures = [pubsub.publisher.publish(topic, f"e{i}".encode()) for i in range(250)]
    for future in futures:
        future.result()

    counts = [count_backlog(pubsub.subscriber, pubsub.project, "events-ops").messages for _ in range(7)]

    assert counts == [250] * 7  # more looks than max_delivery_attempts
    received = pull_all(pubsub.subscriber, sub, expected=250)
    assert len(received) == 250
    assert {m.delivery_attempt for m in received} == {1}
    assert pull_all(pubsub.subscriber, pubsub.subscription("events-dead-pull"), timeout=2) == []
    assert count_backlog(pubsub.subscriber, pubsub.project, "events-ops").messages == 0
    leftover = list(pubsub.subscriber.list_snapshots(request={"project": f"projects/{pubsub.project}"}))
    assert leftover == []


@pytest.mark.integration
def test_dead_letter_counts_by_source_and_a_cap(pubsub):
    dead = pubsub.create_topic("dead-topic")
    pubsub.subscriber.create_subscription(request={"name": pubsub.subscription("dead-letter"), "topic": dead})
    for source, n in (("loader", 3), ("transform", 2)):
        for _ in range(n):
            pubsub.publisher.publish(dead, b"x", CloudPubSubDeadLetterSourceSubscription=source).result()
    full = count_backlog(pubsub.subscriber, pubsub.project, "dead-letter")
    assert full.messages == 5
    assert full.by_source == {"loader": 3, "transform": 2}
    assert not full.capped
    capped = count_backlog(pubsub.subscriber, pubsub.project, "dead-letter", limit=4)
    assert capped.capped
    assert capped.shown == "≥4"
    assert count_backlog(pubsub.subscriber, pubsub.project, "dead-letter").messages == 5


@pytest.mark.integration
def test_a_missing_subscription_is_reported_not_raised(pubsub):
    result = count_backlog(pubsub.subscriber, pubsub.project, "nowhere")
    assert result.messages is None
    assert result.error is not None
    assert "nowhere" in result.error
