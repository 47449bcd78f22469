"""Dead-letter and alert backlogs, counted with the devstack's helper without consuming a message.

:func:`sfpipe_devstack.backlog.count_backlog` snapshots a subscription, pulls to count and
seeks back (docs/adr/0081-dashboard-dead-letter-counts.md says why pull-and-nack is not
an option). The dashboard only adds a fast reachability check, so that a stopped
emulator costs the page a refused connection instead of a client's retry deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sfpipe.config import Settings
from sfpipe.topology import Topology

if TYPE_CHECKING:
    # The devstack is imported only where it is used: the Cloud Run image ships the library
    # and this package, not the devstack.
    from sfpipe_devstack.backlog import Backlog

BacklogSource = Callable[[], "list[Backlog]"]
"""Returns the backlog of each watched subscription; raises :class:`BacklogUnavailable` when it cannot."""


class BacklogUnavailable(Exception):
    """The backlog cannot be read here; the message says what would make it readable."""


def watched(topology: Topology) -> list[str]:
    """The subscriptions whose backlog needs a person: the dead-letter ones first, then the alerts."""
    dead_topic = topology.defaults.dead_letter_topic
    dead = [s.name for t in topology.topics if t.name == dead_topic for s in t.subscriptions]
    alerts = [s.name for t in topology.topics for s in t.subscriptions if s.name.endswith("-alerts")]
    return dead + alerts


class DevstackBacklog:
    """Counts on the local Pub/Sub emulator, one look at a time."""

    def __init__(
        self,
        settings: Settings,
        topology: Topology,
        *,
        subscriber: Callable[[], Any] | None = None,
        limit: int = 5000,
        timeout: float = 5.0,
    ) -> None:
        self.settings = settings
        self.subscriptions = watched(topology)
        self._make_subscriber = subscriber
        self._subscriber: Any = None
        self.limit = limit
        self.timeout = timeout
        self._lock = threading.Lock()

    def __call__(self) -> list[Backlog]:
        """Count each watched subscription (an overlapping look would see the other's held messages as gone)."""
        from sfpipe_devstack.backlog import count_backlog
        from sfpipe_devstack.emulators import port_open

        host, port = self.settings.host, self.settings.pubsub_port
        if not port_open(host, port, timeout=0.5):
            msg = f"the Pub/Sub emulator does not answer on {host}:{port}: `sfpipe up` starts the devstack"
            raise BacklogUnavailable(msg)
        with self._lock:
            if self._subscriber is None:
                if self._make_subscriber is not None:
                    self._subscriber = self._make_subscriber()
                else:
                    from sfpipe.adapters.factory import subscriber_client

                    self._subscriber = subscriber_client(self.settings)
            return [
                count_backlog(self._subscriber, self.settings.project, name, limit=self.limit, timeout=self.timeout)
                for name in self.subscriptions
            ]


def unavailable(reason: str) -> BacklogSource:
    """A source that always explains why there is no backlog to show."""

    def read() -> list[Backlog]:
        raise BacklogUnavailable(reason)

    return read
