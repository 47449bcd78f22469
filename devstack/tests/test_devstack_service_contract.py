"""The shared event-service wrapper receives real pushes from the emulator, end to end.

The topology file is applied to a project of this test's own with the ``transform`` push
route pointing at a trivial handler served by ``sfpipe.service.create_app``; events go
out through the library's ``EventPublisher``. This is the path every local service takes.
"""

from __future__ import annotations

import threading
import time

import pytest

from sfpipe.adapters.bus import EventPublisher
from sfpipe.config import load_settings
from sfpipe.errors import TerminalError, TransientError
from sfpipe.events import CloudEvent, EventType, LoadCompleted, make_event
from sfpipe.ids import new_run_id
from sfpipe.ops import PROCESSED_EVENTS, ensure_ops_tables
from sfpipe.service import EventService, HandlerContext, Outcome, create_app
from sfpipe.topology import load_topology
from sfpipe_devstack.testing import pull_all, serve_wsgi
from sfpipe_devstack.topology_apply import apply_topology

pytestmark = pytest.mark.integration


class Recorder:
    """A handler that records calls and fails on demand (by run id)."""

    def __init__(self) -> None:
        self.calls: list[CloudEvent] = []
        self.transient_once: set[str] = set()
        self.terminal: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, event: CloudEvent, ctx: HandlerContext) -> Outcome:
        with self.lock:
            self.calls.append(event)
        run_id = event.data["run_id"]
        if run_id in self.transient_once:
            self.transient_once.discard(run_id)
            raise TransientError("warehouse busy")
        if run_id in self.terminal:
            raise TerminalError("broken manifest")
        return Outcome(200, {"run_id": run_id})

    def runs(self) -> list[str]:
        with self.lock:
            return [e.data["run_id"] for e in self.calls]


def _wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def wired(pubsub, sfpipe_env, duckdb_warehouse, tmp_path):
    settings = load_settings()
    ensure_ops_tables(duckdb_warehouse)
    handler = Recorder()
    service = EventService(
        "transform",
        handler,
        accepts=[EventType.LOAD_COMPLETED],
        warehouse=lambda: duckdb_warehouse,
        settings=settings,
    )
    with serve_wsgi(create_app(service)) as url:
        apply_topology(
            load_topology(),
            pubsub.project,
            lambda target: url if target == "transform" else f"http://127.0.0.1:9/{target}",
            publisher=pubsub.publisher,
            subscriber=pubsub.subscriber,
            state_file=tmp_path / "topology-state.json",
            retry_scale=0.01,
        )
        publisher = EventPublisher(pubsub.publisher, pubsub.project, load_topology())
        yield handler, publisher, duckdb_warehouse


def _event(run_id: str, event_id: str | None = None) -> CloudEvent:
    data = LoadCompleted(run_id=run_id, manifest_uri=f"gs://lake/salesforce/_runs/{run_id}/_manifest.json", objects={})
    return make_event(EventType.LOAD_COMPLETED, data, service="loader", event_id=event_id)


def _processed(warehouse, key: str) -> list[str]:
    rows = warehouse.query(f"SELECT outcome FROM {PROCESSED_EVENTS.sql} WHERE `key` = '{key}'")
    return [str(v) for v in rows.column("outcome").to_pylist()]


def test_an_event_published_by_the_library_reaches_the_handler_once(wired):
    handler, publisher, warehouse = wired
    run_id = new_run_id()
    event = _event(run_id)
    publisher.publish(event)
    assert _wait(lambda: handler.runs() == [run_id])
    received = handler.calls[0]
    assert received.id == event.id
    assert received.type == "sfpipe.load.completed"
    assert received.source == "//sfpipe/loader"
    assert received.data == event.data
    assert received.delivery_attempt is None  # the emulator sends none; nothing may depend on it
    assert _wait(lambda: _processed(warehouse, event.id) == ["done"])
    time.sleep(2.5)  # a push answered 200 is acknowledged: no second delivery
    assert handler.runs() == [run_id]


def test_a_redelivered_event_is_acknowledged_without_running_again(wired):
    handler, publisher, warehouse = wired
    run_id = new_run_id()
    event = _event(run_id, event_id="same-event-id")
    publisher.publish(event)
    assert _wait(lambda: _processed(warehouse, "same-event-id") == ["done"])
    publisher.publish(event)  # a second message carrying the same event
    time.sleep(3)
    assert handler.runs() == [run_id]


def test_a_transient_failure_is_retried_until_it_succeeds(wired):
    handler, publisher, warehouse = wired
    run_id = new_run_id()
    handler.transient_once.add(run_id)
    event = _event(run_id)
    publisher.publish(event)
    assert _wait(lambda: _processed(warehouse, event.id) == ["done"])
    assert handler.runs() == [run_id, run_id]


def test_a_terminal_failure_is_dead_lettered_with_its_evidence(wired, pubsub):
    handler, publisher, warehouse = wired
    run_id = new_run_id()
    handler.terminal.add(run_id)
    event = _event(run_id)
    publisher.publish(event)
    # other subscriptions of the topic (the reconciler's) push to an address nobody serves here and
    # dead-letter the same event too: the transform's copy is the one this test is about
    dead: list = []
    deadline = time.monotonic() + 60
    while not any(_source(m) == "transform" for m in dead) and time.monotonic() < deadline:
        dead += pull_all(pubsub.subscriber, pubsub.subscription("dead-letter"), timeout=5)
    ours = [m for m in dead if _source(m) == "transform"]
    assert len(ours) == 1
    assert dict(ours[0].message.attributes)["ce-id"] == event.id
    assert handler.runs() == [run_id] * 5  # max_delivery_attempts
    assert _processed(warehouse, event.id) == ["failed"]


def _source(message) -> str:
    return dict(message.message.attributes).get("CloudPubSubDeadLetterSourceSubscription", "")
