"""Dead-letter and alert counts on the real Pub/Sub emulator, read again and again without consuming."""

from __future__ import annotations

import pytest

from sfpipe.adapters.factory import publisher_client, subscriber_client
from sfpipe.config import load_settings
from sfpipe.topology import load_topology
from sfpipe_dashboard.app import create_app
from sfpipe_dashboard.backlog import BacklogUnavailable, DevstackBacklog, watched
from sfpipe_devstack.backlog import DEAD_LETTER_SOURCE
from sfpipe_devstack.emulators import free_port
from sfpipe_devstack.topology_apply import apply_topology

pytestmark = pytest.mark.integration


@pytest.fixture
def topology_applied(local_settings):
    topology = load_topology()
    publisher, subscriber = publisher_client(local_settings, ordering=False), subscriber_client(local_settings)
    apply_topology(
        topology, local_settings.project, lambda name: "http://127.0.0.1:9/", publisher=publisher, subscriber=subscriber
    )
    return topology, publisher, subscriber


def publish(publisher, project: str, topic: str, count: int, **attributes: str) -> None:
    for i in range(count):
        publisher.publish(publisher.topic_path(project, topic), f'{{"n": {i}}}'.encode(), **attributes).result()


def test_watched_subscriptions_are_dead_letters_then_alerts():
    names = watched(load_topology())
    assert names[0] == "dead-letter"
    assert set(names[1:]) == {
        s.name for t in load_topology().topics for s in t.subscriptions if s.name.endswith("-alerts")
    }


def test_counts_stay_put_however_often_they_are_read(local_settings, topology_applied):
    topology, publisher, subscriber = topology_applied
    project = local_settings.project
    publish(
        publisher,
        project,
        "sfpipe-dead-letter",
        2,
        **{DEAD_LETTER_SOURCE: f"projects/{project}/subscriptions/transform"},
    )
    publish(
        publisher, project, "sfpipe-dead-letter", 1, **{DEAD_LETTER_SOURCE: f"projects/{project}/subscriptions/loader"}
    )
    publish(publisher, project, "sfpipe-load-failed", 2, **{"ce-type": "sfpipe.load.failed"})

    source = DevstackBacklog(local_settings, topology)
    # more looks than max_delivery_attempts: a pull-and-nack count would dead-letter the alerts by now
    for _ in range(topology.defaults.max_delivery_attempts + 2):
        counts = {b.subscription: b.messages for b in source()}
        assert counts["dead-letter"] == 3
        assert counts["sfpipe-load-failed-alerts"] == 2
        assert counts["sfpipe-quality-alert-alerts"] == 0

    app = create_app(settings=load_settings(), cache_seconds=0)
    client = app.test_client()
    dead = client.get("/api/dead-letters").get_json()
    assert dead["state"] == "ok", dead
    assert (dead["data"]["total"], dead["data"]["dead_letter"], dead["data"]["alerts"]) == (5, 3, 2)
    by_sub = {s["subscription"]: s for s in dead["data"]["subscriptions"]}
    assert by_sub["dead-letter"]["by_source"] == {"loader": 1, "transform": 2}
    assert by_sub["dead-letter"]["kind"] == "dead-letter" and by_sub["sfpipe-load-failed-alerts"]["kind"] == "alerts"
    health = client.get("/api/summary").get_json()["health"]
    assert health["dead_letters"] == 5 and health["status"] == "attention"

    # a consumer still gets every alert, on its first delivery attempt
    path = subscriber.subscription_path(project, "sfpipe-load-failed-alerts")
    response = subscriber.pull(request={"subscription": path, "max_messages": 10, "return_immediately": True})
    assert len(response.received_messages) == 2
    assert {m.delivery_attempt for m in response.received_messages} == {1}


def test_a_stopped_emulator_is_an_empty_state_that_says_how_to_start_it(sfpipe_env, monkeypatch):
    monkeypatch.setenv("SFPIPE_PUBSUB_PORT", str(free_port()))
    settings = load_settings()
    with pytest.raises(BacklogUnavailable, match="sfpipe up"):
        DevstackBacklog(settings, load_topology())()
    panel = create_app(settings=settings, cache_seconds=0).test_client().get("/api/dead-letters").get_json()
    assert panel["state"] == "empty"
    assert "does not answer" in panel["message"] and "sfpipe up" in panel["message"]
