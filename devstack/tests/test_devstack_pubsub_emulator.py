"""What Google's Pub/Sub emulator does and does not do, through the real client library.

These tests are the measurements behind docs/adr/0010-pubsub-emulator.md: if a new
emulator build changes one of them, the ADR (and the design that leans on it) needs a look.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from sfpipe_devstack.testing import pull_all, push_recorder

pytestmark = pytest.mark.integration

DEAD_LETTER_ATTRIBUTES = {
    "CloudPubSubDeadLetterSourceSubscription",
    "CloudPubSubDeadLetterSourceSubscriptionProject",
    "CloudPubSubDeadLetterSourceDeliveryCount",
    "CloudPubSubDeadLetterSourceTopicPublishTime",
}


def _quick_retry() -> dict[str, duration_pb2.Duration]:
    return {
        "minimum_backoff": duration_pb2.Duration(nanos=100_000_000),
        "maximum_backoff": duration_pb2.Duration(seconds=1),
    }


def test_publish_is_pushed_to_a_local_http_endpoint_and_a_2xx_acks_it(pubsub):
    topic = pubsub.create_topic("orders")
    with push_recorder(204) as endpoint:
        pubsub.subscriber.create_subscription(
            request={
                "name": pubsub.subscription("orders-push"),
                "topic": topic,
                "push_config": {"push_endpoint": endpoint.url},
            }
        )
        message_id = pubsub.publisher.publish(topic, b'{"n": 1}', kind="order", **{"ce-id": "e-1"}).result()
        pushes = endpoint.wait_for(1)
        time.sleep(3)  # an unacknowledged message would be pushed again within ~1 s
        assert len(endpoint.pushes) == 1
    push = pushes[0]
    assert push.body["subscription"] == pubsub.subscription("orders-push")
    assert push.message_id == message_id
    assert push.data == b'{"n": 1}'
    assert push.attributes == {"kind": "order", "ce-id": "e-1"}
    assert push.headers["Content-Type"] == "application/json"
    # the emulator sends no deliveryAttempt, even on a subscription with a dead-letter policy
    assert "deliveryAttempt" not in push.body


def test_push_to_an_endpoint_that_always_fails_dead_letters_after_max_attempts_and_loses_nothing(pubsub):
    topic = pubsub.create_topic("work")
    dead = pubsub.create_topic("work-dead")
    pubsub.subscriber.create_subscription(request={"name": pubsub.subscription("dead-pull"), "topic": dead})
    with push_recorder(503) as endpoint:
        pubsub.subscriber.create_subscription(
            request={
                "name": pubsub.subscription("work-push"),
                "topic": topic,
                "push_config": {"push_endpoint": endpoint.url},
                "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": 5},
            }
        )
        sent = {
            pubsub.publisher.publish(topic, f"m{i}".encode(), seq=str(i)).result(): f"m{i}".encode() for i in range(3)
        }
        dead_lettered = pull_all(pubsub.subscriber, pubsub.subscription("dead-pull"), expected=3, timeout=60)
        time.sleep(2)
        attempts = {mid: sum(1 for p in endpoint.pushes if p.message_id == mid) for mid in sent}
    assert attempts == dict.fromkeys(sent, 5)
    assert sorted(m.message.data for m in dead_lettered) == sorted(sent.values())
    for received in dead_lettered:
        attributes = dict(received.message.attributes)
        assert set(attributes) >= DEAD_LETTER_ATTRIBUTES
        assert attributes["CloudPubSubDeadLetterSourceSubscription"] == "work-push"
        assert attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] == pubsub.project
        assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
        assert "seq" in attributes  # the original attributes travel with it


def test_ordering_keys_arrive_in_order_on_a_pull_subscription(pubsub):
    topic = pubsub.create_topic("changes")
    sub = pubsub.subscription("changes-ordered")
    pubsub.subscriber.create_subscription(request={"name": sub, "topic": topic, "enable_message_ordering": True})
    futures = [
        pubsub.publisher.publish(topic, f"{key}:{i}".encode(), ordering_key=key)
        for i in range(60)
        for key in ("001A", "001B", "001C")
    ]
    for future in futures:
        future.result()
    received = pull_all(pubsub.subscriber, sub, expected=180, timeout=60)
    assert len(received) == 180
    for key in ("001A", "001B", "001C"):
        sequence = [int(m.message.data.decode().split(":")[1]) for m in received if m.message.ordering_key == key]
        assert sequence == list(range(60))


def test_an_unacked_pulled_message_is_redelivered_after_its_ack_deadline(pubsub):
    topic = pubsub.create_topic("slow")
    sub = pubsub.subscription("slow-pull")
    pubsub.subscriber.create_subscription(request={"name": sub, "topic": topic, "ack_deadline_seconds": 10})
    message_id = pubsub.publisher.publish(topic, b"hold").result()
    first = pull_all(pubsub.subscriber, sub, expected=1, ack=False)
    pulled_at = time.monotonic()
    assert [m.message.message_id for m in first] == [message_id]
    assert pull_all(pubsub.subscriber, sub, timeout=5, ack=False) == []  # leased: nobody else gets it
    again = pull_all(pubsub.subscriber, sub, expected=1, timeout=30, ack=True)
    assert [m.message.message_id for m in again] == [message_id]
    assert time.monotonic() - pulled_at >= 9


def test_retention_keeps_acked_messages_for_a_seek_back(pubsub):
    topic = pubsub.create_topic("replay")
    sub = pubsub.subscription("replay-pull")
    pubsub.subscriber.create_subscription(request={"name": sub, "topic": topic, "retain_acked_messages": True})
    before = timestamp_pb2.Timestamp()
    before.FromSeconds(int(time.time()) - 2)
    for i in range(3):
        pubsub.publisher.publish(topic, f"r{i}".encode()).result()
    assert len(pull_all(pubsub.subscriber, sub, expected=3)) == 3
    assert pull_all(pubsub.subscriber, sub, timeout=2) == []
    pubsub.subscriber.seek(request={"subscription": sub, "time": before})
    assert sorted(m.message.data for m in pull_all(pubsub.subscriber, sub, expected=3)) == [b"r0", b"r1", b"r2"]


def test_filters_are_stored_but_not_applied(pubsub):
    """Why sfpipe routes by topic (one topic per event type) and never by filter."""
    topic = pubsub.create_topic("mixed")
    sub = pubsub.subscription("only-a")
    pubsub.subscriber.create_subscription(request={"name": sub, "topic": topic, "filter": 'attributes.kind = "a"'})
    assert pubsub.subscriber.get_subscription(subscription=sub).filter == 'attributes.kind = "a"'
    pubsub.publisher.publish(topic, b"1", kind="a").result()
    pubsub.publisher.publish(topic, b"2", kind="b").result()
    kinds = sorted(m.message.attributes["kind"] for m in pull_all(pubsub.subscriber, sub, expected=2, timeout=10))
    assert kinds == ["a", "b"]


def test_get_subscription_reports_push_retry_and_dead_letter_settings(pubsub):
    """Emulator 0.8.20 reads these back (older builds returned them empty): convergence compares them."""
    topic = pubsub.create_topic("cfg")
    dead = pubsub.create_topic("cfg-dead")
    sub = pubsub.subscription("cfg-push")
    pubsub.subscriber.create_subscription(
        request={
            "name": sub,
            "topic": topic,
            "push_config": {"push_endpoint": "http://127.0.0.1:9/"},
            "retry_policy": {
                "minimum_backoff": duration_pb2.Duration(seconds=2),
                "maximum_backoff": duration_pb2.Duration(seconds=9),
            },
            "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": 7},
        }
    )
    live = pubsub.subscriber.get_subscription(subscription=sub)
    assert live.push_config.push_endpoint == "http://127.0.0.1:9/"
    assert live.retry_policy.minimum_backoff.total_seconds() == 2
    assert live.retry_policy.maximum_backoff.total_seconds() == 9
    assert live.dead_letter_policy.dead_letter_topic == dead
    assert live.dead_letter_policy.max_delivery_attempts == 7


def test_several_failing_pushes_under_a_retry_policy_stall(pubsub):
    """Why the devstack gives push subscriptions no retry policy (docs/adr/0010-pubsub-emulator.md).

    With a retry policy, messages that fail together stop being pushed after two or three
    attempts and are neither redelivered nor dead-lettered, even once the endpoint
    recovers. When an emulator build fixes this, this test fails: then push subscriptions
    can take the declared backoff again.
    """
    topic = pubsub.create_topic("stall")
    dead = pubsub.create_topic("stall-dead")
    pubsub.subscriber.create_subscription(request={"name": pubsub.subscription("stall-dead-pull"), "topic": dead})
    with push_recorder(500) as endpoint:
        pubsub.subscriber.create_subscription(
            request={
                "name": pubsub.subscription("stall-push"),
                "topic": topic,
                "push_config": {"push_endpoint": endpoint.url},
                "retry_policy": _quick_retry(),
                "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": 5},
            }
        )
        for i in range(4):
            pubsub.publisher.publish(topic, f"s{i}".encode()).result()
        time.sleep(15)
        endpoint.status = 204
        time.sleep(5)
        per_message = Counter(p.message_id for p in endpoint.pushes)
    dead_lettered = pull_all(pubsub.subscriber, pubsub.subscription("stall-dead-pull"), timeout=3)
    assert len(per_message) == 4
    assert max(per_message.values()) < 5
    assert dead_lettered == []
