"""``python -m sfpipe_simulator``: serve the org that the ``SFPIPE_SIMULATOR_*`` settings describe."""

from __future__ import annotations

import sys

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
    from sfpipe_simulator.server import SimulatorConfig, serve_forever

    serve_forever(SimulatorConfig.from_settings(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
