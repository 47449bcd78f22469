"""``python -m sfpipe_simulator.pubsub_api``: the simulator's REST API and its Pub/Sub API together.

The org, ports and TLS come from the same ``SFPIPE_SIMULATOR_*`` settings as
``python -m sfpipe_simulator``; the Pub/Sub API listens on ``SFPIPE_SIMULATOR_GRPC_PORT``.
"""

from __future__ import annotations

import signal
import sys
import threading

from sfpipe.config import get_settings
from sfpipe.errors import SfpipeError
from sfpipe.logging import setup_logging


def main() -> int:
    """Serve until SIGTERM or SIGINT."""
    try:
        settings = get_settings()
    except SfpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging("simulator", settings)
    from sfpipe_simulator.pubsub_api.server import attach
    from sfpipe_simulator.server import Simulator, SimulatorConfig

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sim = Simulator(SimulatorConfig.from_settings(settings)).start()
    api = attach(sim, settings)
    print(f"simulator ready at {sim.url}; Pub/Sub API at {api.endpoint} ({api.security})", file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        api.stop()
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
