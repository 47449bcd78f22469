"""Identifiers that several services must agree on."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

RUN_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def new_run_id(now: datetime | None = None) -> str:
    """A run id: `YYYYMMDDTHHMMSSZ-<8 hex>`, sortable by time, unique by its suffix."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def is_run_id(value: str) -> bool:
    """Whether a string has the run id's form."""
    return bool(RUN_ID_PATTERN.match(value))
