"""What a transform run reports, whichever backend ran it (local runner or the Dataform API)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from sfpipe.events import ActionReport, TransformCompleted, TransformFailed


@dataclass
class TransformResult:
    """Every action's outcome, and the run's."""

    run_id: str
    as_of: dt.date
    actions: list[ActionReport] = field(default_factory=list)
    invocation: str | None = None
    compile_seconds: float = 0.0
    seconds: float = 0.0
    error: str | None = None

    @property
    def failed_actions(self) -> list[ActionReport]:
        """Actions that failed (not the ones skipped because of them)."""
        return [a for a in self.actions if a.status == "failed"]

    @property
    def succeeded(self) -> bool:
        """True when the run built everything and every assertion held."""
        return self.error is None and all(a.status == "succeeded" for a in self.actions)

    @property
    def reason(self) -> str:
        """One line that says why the run failed (empty when it did not)."""
        if self.succeeded:
            return ""
        if self.error:
            return self.error
        failed = self.failed_actions
        skipped = sum(1 for a in self.actions if a.status == "skipped")
        parts = [f"{a.name}: {a.error or 'failed'}" for a in failed[:5]]
        more = f" (+{len(failed) - 5} more)" if len(failed) > 5 else ""
        tail = f"; {skipped} action(s) skipped" if skipped else ""
        return f"{len(failed)} action(s) failed: " + "; ".join(parts) + more + tail

    @property
    def rows(self) -> int:
        """Rows written by tables and incremental merges."""
        return sum(a.rows or 0 for a in self.actions if a.kind in ("table", "incremental") and a.status == "succeeded")

    def completed_event(self) -> TransformCompleted:
        """The `sfpipe.transform.completed` data."""
        return TransformCompleted(run_id=self.run_id, actions=self.actions, invocation=self.invocation)

    def failed_event(self) -> TransformFailed:
        """The `sfpipe.transform.failed` data."""
        return TransformFailed(
            run_id=self.run_id, reason=self.reason[:4000], actions=self.actions, invocation=self.invocation
        )


@dataclass(frozen=True)
class TransformRequest:
    """What to run: for which run, as of which date, with which options."""

    run_id: str
    as_of: dt.date
    full_refresh: bool = False
    actions: tuple[str, ...] = ()
    include_dependencies: bool = False
    extra_vars: tuple[tuple[str, str], ...] = ()

    @property
    def compile_vars(self) -> dict[str, str]:
        """The compile vars of the run: as_of first, then the caller's."""
        return {"as_of": self.as_of.isoformat(), **dict(self.extra_vars)}


class Transformer(Protocol):
    """Runs the Dataform project for a run: the local runner or the Dataform API."""

    name: str

    def run(self, request: TransformRequest) -> TransformResult:
        """Compile and execute the graph; a failed action is reported, not raised."""
        ...
