"""Which local processes the devstack runs: a declarative list, read at each ``sfpipe up``.

A service is started only when its package can be run (``python -m sfpipe_<name>`` needs a
``__main__`` module). A service that appears later is picked up without touching this
file's code: it is already listed, and ``find_spec`` finds its ``__main__`` once it exists.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from sfpipe.config import Settings


@dataclass(frozen=True)
class ServiceSpec:
    """One local service: how to run it, where it listens and how to ask whether it is ready."""

    name: str
    """Service name as it appears in the topology's push routes and in ``sfpipe status``."""

    module: str
    """Module run as ``python -m <module>``."""

    port_setting: str
    """Settings attribute holding the port that answers ``health_path``."""

    health_path: str = "/healthz"
    """Path that answers 200 once the service is ready."""

    scheme: str = "http"
    """`https` for a service that only speaks TLS (the simulator, as Salesforce clients require)."""

    extra_port_settings: tuple[str, ...] = field(default_factory=tuple)
    """Other ports the service opens (checked for being free before it starts)."""

    def port(self, settings: Settings) -> int:
        """The service's HTTP port under these settings."""
        return int(getattr(settings, self.port_setting))

    def ports(self, settings: Settings) -> dict[str, int]:
        """Every port the service opens, by setting name."""
        names = (self.port_setting, *self.extra_port_settings)
        return {name: int(getattr(settings, name)) for name in names}

    @property
    def runnable(self) -> bool:
        """Whether the package exists with a ``__main__`` (the service has been built)."""
        try:
            return importlib.util.find_spec(f"{self.module}.__main__") is not None
        except ModuleNotFoundError:
            return False


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "simulator", "sfpipe_simulator", "simulator_port", extra_port_settings=("simulator_grpc_port",), scheme="https"
    ),
    ServiceSpec("extractor", "sfpipe_extractor", "extractor_port"),
    ServiceSpec("loader", "sfpipe_loader", "loader_port"),
    ServiceSpec("transform", "sfpipe_transform", "transform_port"),
    ServiceSpec("quality", "sfpipe_quality", "quality_port"),
    ServiceSpec("cdc-publisher", "sfpipe_cdc_publisher", "cdc_publisher_port"),
    ServiceSpec("cdc-stream", "sfpipe_beam.cdc", "cdc_stream_port"),
    ServiceSpec("reconciler", "sfpipe_reconciler", "reconciler_port"),
    ServiceSpec("dashboard", "sfpipe_dashboard", "dashboard_port"),
)
"""Every service of DESIGN.md §2 that runs as a local process, in start order."""


def service(name: str) -> ServiceSpec:
    """A service by name (push routes in the topology name services this way)."""
    for spec in SERVICES:
        if spec.name == name:
            return spec
    msg = f"no local service named {name!r}; known: {', '.join(s.name for s in SERVICES)}"
    raise KeyError(msg)


def runnable_services(specs: tuple[ServiceSpec, ...] = SERVICES) -> list[ServiceSpec]:
    """The services that exist as runnable packages right now."""
    return [spec for spec in specs if spec.runnable]


def push_endpoint(settings: Settings, target: str) -> str:
    """The URL a push subscription delivers to for the service named ``target``."""
    return f"http://{settings.host}:{service(target).port(settings)}/"
