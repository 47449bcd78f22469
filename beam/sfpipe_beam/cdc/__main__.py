"""``python -m sfpipe_beam.cdc``: the local CDC stream into the raw layer, with ``/healthz``."""

from __future__ import annotations

import sys

from sfpipe.config import get_settings
from sfpipe.errors import SfpipeError
from sfpipe.logging import setup_logging


def main() -> int:
    """Run until SIGTERM / SIGINT."""
    try:
        settings = get_settings()
    except SfpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging("cdc-stream", settings)
    from sfpipe_beam.cdc.service import run_service

    try:
        run_service(settings)
    except SfpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
