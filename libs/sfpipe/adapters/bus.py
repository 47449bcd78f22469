"""The message bus: Google Cloud Pub/Sub (the emulator locally), through the real client.

Every sfpipe event goes to the one topic that the topology names for its type, as a
binary-mode CloudEvent (``ce-*`` attributes, JSON data). A publish returns only once
Pub/Sub has acknowledged it, so that a caller can checkpoint after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1
from google.api_core import exceptions as gexc

from sfpipe.errors import TransientError
from sfpipe.events import CloudEvent
from sfpipe.topology import Topology

log = logging.getLogger(__name__)


class EventPublisher:
    """Publishes sfpipe events (and raw messages) to Pub/Sub topics."""

    def __init__(self, client: pubsub_v1.PublisherClient, project: str, topology: Topology) -> None:
        self.client = client
        self.project = project
        self.topology = topology

    def topic_path(self, topic: str) -> str:
        """`projects/<p>/topics/<t>`."""
        return self.client.topic_path(self.project, topic)

    def publish_async(
        self,
        event: CloudEvent,
        *,
        topic: str | None = None,
        ordering_key: str | None = None,
        extra_attributes: Mapping[str, str] | None = None,
    ) -> Future[str]:
        """Start publishing an event; the future resolves to the message id."""
        topic_name = topic or self.topology.topic_for(event.type)
        attributes = {**event.attributes(), **(extra_attributes or {})}
        data = json.dumps(event.data, default=str, separators=(",", ":")).encode()
        kwargs: dict[str, Any] = {}
        if ordering_key:
            kwargs["ordering_key"] = ordering_key
        future: Future[str] = self.client.publish(self.topic_path(topic_name), data, **attributes, **kwargs)
        return future

    def publish(
        self,
        event: CloudEvent,
        *,
        topic: str | None = None,
        ordering_key: str | None = None,
        extra_attributes: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> str:
        """Publish one event and wait for Pub/Sub to acknowledge it."""
        future = self.publish_async(event, topic=topic, ordering_key=ordering_key, extra_attributes=extra_attributes)
        return self.wait([future], timeout=timeout)[0]

    def wait(self, futures: Iterable[Future[str]], timeout: float = 60.0) -> list[str]:
        """Wait for publishes; a failed one raises a transient error (the caller retries)."""
        ids = []
        for future in futures:
            try:
                ids.append(future.result(timeout=timeout))
            except (gexc.GoogleAPICallError, TimeoutError) as exc:
                msg = f"publish failed: {exc}"
                raise TransientError(msg) from exc
        return ids

    def resume(self, topic: str, ordering_key: str) -> None:
        """Re-enable publishing on an ordering key after a failed publish paused it."""
        self.client.resume_publish(self.topic_path(topic), ordering_key)
