"""The topology file applied to the emulator through the admin API: create, converge, detect drift."""

from __future__ import annotations

import pytest

from sfpipe.topology import load_topology
from sfpipe_devstack.testing import pull_all
from sfpipe_devstack.topology_apply import apply_topology, live_differences, subscription_request

pytestmark = pytest.mark.integration


def _endpoint(target: str) -> str:
    return f"http://127.0.0.1:9/{target}"


def _apply(pubsub, tmp_path, topology=None, endpoint=_endpoint):
    return apply_topology(
        topology or load_topology(),
        pubsub.project,
        endpoint,
        publisher=pubsub.publisher,
        subscriber=pubsub.subscriber,
        state_file=tmp_path / "topology-state.json",
        retry_scale=0.01,
    )


def _diff(pubsub, topology=None, endpoint=_endpoint):
    return live_differences(
        topology or load_topology(),
        pubsub.project,
        publisher=pubsub.publisher,
        subscriber=pubsub.subscriber,
        push_endpoint=endpoint,
        retry_scale=0.01,
    )


def test_apply_creates_everything_and_a_second_apply_changes_nothing(pubsub, tmp_path):
    topology = load_topology()
    first = _apply(pubsub, tmp_path)
    assert sorted(first.created_topics) == sorted(t.name for t in topology.topics)
    assert len(first.created_subscriptions) == sum(len(t.subscriptions) for t in topology.topics)
    assert _diff(pubsub) == []
    second = _apply(pubsub, tmp_path)
    assert not second.changed
    assert second.unchanged == len(first.created_subscriptions)

    loader = pubsub.subscriber.get_subscription(subscription=pubsub.subscription("loader"))
    assert loader.push_config.push_endpoint == "http://127.0.0.1:9/loader"
    assert loader.dead_letter_policy.dead_letter_topic == pubsub.topic("sfpipe-dead-letter")
    assert loader.dead_letter_policy.max_delivery_attempts == 5
    assert loader.ack_deadline_seconds == 600
    assert not loader.retry_policy.maximum_backoff  # push: no retry policy on the emulator (ADR 0010)
    ops = pubsub.subscriber.get_subscription(subscription=pubsub.subscription("sfpipe-load-completed-ops"))
    assert ops.retry_policy.minimum_backoff.total_seconds() == pytest.approx(0.1)
    assert ops.retry_policy.maximum_backoff.total_seconds() == pytest.approx(6.0)
    cdc = pubsub.subscriber.get_subscription(subscription=pubsub.subscription("cdc-stream"))
    assert not cdc.enable_message_ordering  # changes apply by commit number in any order (ADR 0096)
    assert cdc.ack_deadline_seconds == 60
    dead = pubsub.subscriber.get_subscription(subscription=pubsub.subscription("dead-letter"))
    assert not dead.dead_letter_policy.dead_letter_topic


def test_the_drift_check_fails_when_the_live_emulator_disagrees_with_the_file(pubsub, tmp_path):
    _apply(pubsub, tmp_path)
    assert _diff(pubsub) == []
    sub = pubsub.subscriber
    sub.delete_subscription(subscription=pubsub.subscription("sfpipe-quality-alert-alerts"))
    sub.modify_push_config(
        request={
            "subscription": pubsub.subscription("transform"),
            "push_config": {"push_endpoint": "http://elsewhere/"},
        }
    )
    sub.update_subscription(
        request={
            "subscription": {"name": pubsub.subscription("quality"), "ack_deadline_seconds": 42},
            "update_mask": {"paths": ["ack_deadline_seconds"]},
        }
    )
    sub.update_subscription(
        request={
            "subscription": {"name": pubsub.subscription("loader")},
            "update_mask": {"paths": ["dead_letter_policy"]},
        }
    )
    pubsub.create_topic("sfpipe-unplanned")
    problems = _diff(pubsub)
    assert "subscription sfpipe-quality-alert-alerts is declared but not live" in problems
    assert "topic sfpipe-unplanned is live but not declared" in problems
    assert any(p.startswith("subscription transform: live has push to http://elsewhere/") for p in problems)
    assert any(
        p.startswith("subscription quality: live has ack deadline 42s, declared ack deadline 600s") for p in problems
    )
    assert any(p.startswith("subscription loader: live has no dead-letter") for p in problems)
    assert len(problems) == 5

    report = _apply(pubsub, tmp_path)
    assert report.created_subscriptions == ["sfpipe-quality-alert-alerts"]
    assert sorted(report.updated_subscriptions) == ["loader", "quality", "transform"]
    assert _diff(pubsub) == ["topic sfpipe-unplanned is live but not declared"]


def test_a_changed_declaration_converges_in_place_and_keeps_the_backlog(pubsub, tmp_path):
    _apply(pubsub, tmp_path)
    ops = pubsub.subscription("sfpipe-load-failed-ops")
    pubsub.publisher.publish(pubsub.topic("sfpipe-load-failed"), b"waiting").result()

    changed = load_topology().model_copy(deep=True)
    changed.defaults.ack_deadline_seconds = 300
    assert _diff(pubsub, changed)  # the file now disagrees with what is live
    report = _apply(pubsub, tmp_path, changed)
    assert "sfpipe-load-failed-ops" in report.updated_subscriptions
    assert not report.recreated_subscriptions
    assert _diff(pubsub, changed) == []
    assert pubsub.subscriber.get_subscription(subscription=ops).ack_deadline_seconds == 300
    assert [m.message.data for m in pull_all(pubsub.subscriber, ops, expected=1)] == [b"waiting"]


def test_a_change_the_api_cannot_make_in_place_recreates_the_subscription(pubsub, tmp_path):
    _apply(pubsub, tmp_path)
    changed = load_topology().model_copy(deep=True)
    _, sub = changed.subscription("sfpipe-load-failed-ops")
    sub.ordering = True
    report = _apply(pubsub, tmp_path, changed)
    assert report.recreated_subscriptions == ["sfpipe-load-failed-ops"]
    assert pubsub.subscriber.get_subscription(
        subscription=pubsub.subscription("sfpipe-load-failed-ops")
    ).enable_message_ordering


def test_a_moved_service_port_updates_the_push_endpoint(pubsub, tmp_path):
    _apply(pubsub, tmp_path)
    moved = {"loader": "http://127.0.0.1:18320/"}

    def endpoint(target: str) -> str:
        return moved.get(target, _endpoint(target))

    report = _apply(pubsub, tmp_path, endpoint=endpoint)
    assert report.updated_subscriptions == ["loader"]
    live = pubsub.subscriber.get_subscription(subscription=pubsub.subscription("loader"))
    assert live.push_config.push_endpoint == "http://127.0.0.1:18320/"


def test_the_request_mirrors_the_file(pubsub):
    topology = load_topology()
    topic, sub = topology.subscription("transform")
    request = subscription_request(pubsub.project, topology, topic, sub, _endpoint, push_retry_policy=True)
    assert request["push_config"] == {"push_endpoint": "http://127.0.0.1:9/transform"}
    assert request["dead_letter_policy"] == {
        "dead_letter_topic": f"projects/{pubsub.project}/topics/sfpipe-dead-letter",
        "max_delivery_attempts": 5,
    }
    retry = request["retry_policy"]
    assert retry["minimum_backoff"].seconds == 10
    assert retry["maximum_backoff"].seconds == 600
