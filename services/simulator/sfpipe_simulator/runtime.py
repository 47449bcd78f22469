"""Everything a running simulator holds, in one object the HTTP layer and the admin API share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sfpipe_simulator.auth import Auth
from sfpipe_simulator.cursors import QueryCursors
from sfpipe_simulator.errors import not_found
from sfpipe_simulator.faults import Faults
from sfpipe_simulator.generator import OrgPlan
from sfpipe_simulator.limits import Limits
from sfpipe_simulator.store import Clock, OrgStore

if TYPE_CHECKING:
    from sfpipe_simulator.activity import ActivityEngine
    from sfpipe_simulator.bulk import BulkJobs
    from sfpipe_simulator.orgfaults import OrgFaults

MIN_VERSION = 31
MAX_VERSION = 66
_VERSION = re.compile(r"^v(\d{2})\.0$")
_SEASONS = ("Winter", "Spring", "Summer")


def version_label(major: int) -> str:
    """The release name of an API version (v32.0 is Winter '15)."""
    if major < 32:
        return "Summer '14"
    index = major - 32
    return f"{_SEASONS[index % 3]} '{15 + index // 3:02d}"


def versions() -> list[dict[str, str]]:
    """``GET /services/data``: every served API version."""
    return [
        {"label": version_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
        for v in range(MIN_VERSION, MAX_VERSION + 1)
    ]


def parse_version(text: str) -> str:
    """``v59.0`` → ``59.0``; an unserved version is an unknown resource (404)."""
    m = _VERSION.match(text)
    if m is None or not MIN_VERSION <= int(m.group(1)) <= MAX_VERSION:
        raise not_found()
    return f"{m.group(1)}.0"


@dataclass
class Runtime:
    """A running org: its plan, store, sessions, limits, cursors, jobs, faults and activity."""

    plan: OrgPlan
    store: OrgStore
    clock: Clock
    auth: Auth
    limits: Limits
    cursors: QueryCursors
    faults: Faults
    admin_token: str
    public_url: str | None = None
    bulk: BulkJobs | None = None
    activity: ActivityEngine | None = None
    org_faults: OrgFaults | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def org_id(self) -> str:
        """The organization Id."""
        return self.plan.org_id
