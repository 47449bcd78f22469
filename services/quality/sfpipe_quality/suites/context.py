"""What a suite needs to know about the run it checks, gathered before any check runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sfpipe.adapters.warehouse.base import TableRef

RAW = "sfpipe_raw"
STAGING = "sfpipe_staging"
MARTS = "sfpipe_marts"


def raw_table(sobject: str) -> TableRef:
    """The raw layer's table of an object (lower-case API name)."""
    return TableRef(RAW, sobject.lower())


@dataclass(frozen=True)
class ObjectWindow:
    """The last extract window of an object, from the run manifest."""

    window_from: datetime | None
    window_to: datetime
    rows: int


@dataclass(frozen=True)
class RunFacts:
    """The run under test and what the source says about it.

    Attributes:
        run_id: The run whose data is checked.
        windows: Per object API name, its extract window in this run's manifest.
        stages: Allowed Opportunity.StageName values.
        stages_from: Where the stages came from: ``describe`` or ``settings``.
        source_counts: Per object API name, the source's live record count (created before
            the window's end when the window is known).
        source_error: Why the source could not be counted, when it could not.
        tolerance: Share of the source count by which the raw layer may differ.
    """

    run_id: str
    windows: Mapping[str, ObjectWindow] = field(default_factory=dict)
    stages: tuple[str, ...] = ()
    stages_from: str = "settings"
    source_counts: Mapping[str, int] = field(default_factory=dict)
    source_error: str | None = None
    tolerance: float = 0.005
