"""The event topology as data: topics, subscriptions, push routes and retry policy.

One declarative file (``topology.yaml``) is the source; the devstack applies it to the
Pub/Sub emulator and the Terraform mirrors it. Services only ask it which topic an event
type goes to, so that no topic name is spelt in two places.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sfpipe.errors import ConfigError


class Defaults(BaseModel):
    """Values every subscription takes unless it says otherwise."""

    model_config = ConfigDict(extra="forbid")

    ack_deadline_seconds: int = Field(600, ge=10, le=600)
    retry_min_seconds: float = Field(10, ge=0, le=600)
    retry_max_seconds: float = Field(600, ge=0, le=600)
    max_delivery_attempts: int = Field(5, ge=5, le=100)
    dead_letter_topic: str = "sfpipe-dead-letter"
    message_retention: str = "7d"


class Subscription(BaseModel):
    """One subscription; ``push`` names the local service it delivers to."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=3)
    push: str | None = None
    ordering: bool = False
    dead_letter: bool = True
    ack_deadline_seconds: int | None = Field(None, ge=10, le=600)
    retention: str | None = None


class Topic(BaseModel):
    """One topic and the subscriptions on it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=3)
    event_type: str | None = None
    description: str | None = None
    subscriptions: list[Subscription] = Field(default_factory=list)


class Topology(BaseModel):
    """The whole topology file."""

    model_config = ConfigDict(extra="forbid")

    defaults: Defaults = Field(default_factory=Defaults)
    topics: list[Topic]

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        names = [t.name for t in self.topics]
        if len(set(names)) != len(names):
            msg = "topic names must be unique"
            raise ValueError(msg)
        subs = [s.name for t in self.topics for s in t.subscriptions]
        if len(set(subs)) != len(subs):
            msg = "subscription names must be unique"
            raise ValueError(msg)
        if self.defaults.dead_letter_topic not in names:
            msg = f"dead-letter topic {self.defaults.dead_letter_topic!r} is not declared"
            raise ValueError(msg)
        types = [t.event_type for t in self.topics if t.event_type]
        if len(set(types)) != len(types):
            msg = "each event type must have exactly one topic"
            raise ValueError(msg)
        return self

    def topic_for(self, event_type: str) -> str:
        """The topic an event type is published to."""
        for topic in self.topics:
            if topic.event_type == event_type:
                return topic.name
        msg = f"no topic for event type {event_type!r} in the topology"
        raise ConfigError(msg)

    def subscription(self, name: str) -> tuple[Topic, Subscription]:
        """A subscription and its topic, by name."""
        for topic in self.topics:
            for sub in topic.subscriptions:
                if sub.name == name:
                    return topic, sub
        msg = f"no subscription {name!r} in the topology"
        raise ConfigError(msg)

    def ack_deadline(self, sub: Subscription) -> int:
        """The subscription's ack deadline."""
        return sub.ack_deadline_seconds or self.defaults.ack_deadline_seconds


def parse_topology(text: str, source: str = "topology") -> Topology:
    """Validate a topology document."""
    try:
        raw: Any = yaml.safe_load(text)
        return Topology.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        msg = f"{source} is not a valid topology: {exc}"
        raise ConfigError(msg) from None


@functools.cache
def load_topology(path: Path | None = None) -> Topology:
    """The topology that ships with the library, or one from a file."""
    if path is not None:
        return parse_topology(path.read_text(), str(path))
    text = resources.files("sfpipe").joinpath("topology.yaml").read_text()
    return parse_topology(text, "sfpipe/topology.yaml")


LAKE_NOTIFICATIONS_TOPIC = "sfpipe-lake-notifications"
MANIFEST_PREFIX = "salesforce/_runs/"
