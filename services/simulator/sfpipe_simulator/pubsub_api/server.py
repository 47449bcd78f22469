"""Serving the Pub/Sub API next to the simulator's REST API.

:func:`start_pubsub_api` serves a running simulator's :class:`Runtime` on a gRPC port, with TLS
from the simulator's own certificate (the CA that verifies the REST API verifies this too),
gRPC local credentials, or a plain channel. :func:`attach` does the same from ``SFPIPE_*``
settings for a started :class:`~sfpipe_simulator.server.Simulator`; it is the one call the
simulator's start-up makes.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import grpc

from sfpipe.salesforce.pubsub._generated import pubsub_api_pb2_grpc as pb2_grpc
from sfpipe_simulator.pubsub_api.service import PubSubConfig, PubSubService

if TYPE_CHECKING:
    from sfpipe.config import Settings
    from sfpipe_simulator.runtime import Runtime
    from sfpipe_simulator.server import Simulator

log = logging.getLogger(__name__)

Security = Literal["tls", "local", "insecure"]
MAX_MESSAGE = 64 << 20


@dataclass
class PubSubApiServer:
    """A running Pub/Sub API: where it listens and how to stop it."""

    server: grpc.Server
    service: PubSubService
    host: str
    port: int
    security: Security
    ca_file: Path | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` for a client channel."""
        return f"{self.host}:{self.port}"

    def stop(self, grace: float = 1.0) -> None:
        """End open streams and stop serving."""
        self.service.stopping.set()
        self.server.stop(grace).wait(grace + 5)


def start_pubsub_api(
    rt: Runtime,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    security: Security = "tls",
    tls_folder: Path | None = None,
    config: PubSubConfig | None = None,
    max_workers: int = 64,
) -> PubSubApiServer:
    """Serve the Pub/Sub API of a runtime; ``port=0`` picks a free port."""
    service = PubSubService(rt, config)
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sfpipe-pubsub"),
        options=[("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)],
    )
    pb2_grpc.add_PubSubServicer_to_server(service, server)
    address = f"{host}:{port}"
    ca_file: Path | None = None
    if security == "insecure":
        bound = server.add_insecure_port(address)
    elif security == "local":
        bound = server.add_secure_port(address, grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP))
    else:
        from sfpipe_simulator.tls import ensure_certificate

        folder = tls_folder or Path(rt.extra.get("data_dir") or ".") / "tls"
        ca_file, cert, key = ensure_certificate(folder, [host])
        credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
        bound = server.add_secure_port(address, credentials)
    if not bound:
        msg = f"could not listen on {address} for the Pub/Sub API"
        raise OSError(msg)
    server.start()
    log.info("Pub/Sub API (%s) serving org %s on %s:%s", security, rt.org_id, host, bound)
    return PubSubApiServer(server, service, host, bound, security, ca_file)


def attach(sim: Simulator, settings: Settings) -> PubSubApiServer:
    """The Pub/Sub API of a started simulator, on ``SFPIPE_SIMULATOR_GRPC_PORT`` (TLS as the REST API)."""
    if sim.runtime is None:
        msg = "the simulator is not started"
        raise RuntimeError(msg)
    config = PubSubConfig(
        keepalive_seconds=settings.simulator_pubsub_keepalive_seconds,
        gap_every=settings.simulator_pubsub_gap_every,
        overflow_every=settings.simulator_pubsub_overflow_every,
    )
    security: Security = "tls" if sim.config.tls else "insecure"
    folder = sim.ca_file.parent if sim.ca_file else None
    return start_pubsub_api(sim.runtime, sim.config.host, settings.simulator_grpc_port, security=security,
                            tls_folder=folder, config=config)  # fmt: skip
