"""One quality run: gather the run's facts, pick the checks that apply, run them in the warehouse.

Everything here reads; writing results, Data Docs and events is :mod:`sfpipe_quality.publish`'s
job, so that the CLI can run checks without publishing and the handler can publish
exactly once per event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sfpipe import lake
from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse.base import TableRef, Warehouse
from sfpipe.config import Settings
from sfpipe.errors import NotFoundError, SfpipeError, TerminalError
from sfpipe.events import FailingExpectation, SuiteResult
from sfpipe_quality import suites as suite_registry
from sfpipe_quality.datasource import connection_for
from sfpipe_quality.gx_runner import CheckResult
from sfpipe_quality.source import Source
from sfpipe_quality.spec import Catalog, Severity, Suite
from sfpipe_quality.suites import raw
from sfpipe_quality.suites.context import ObjectWindow, RunFacts, raw_table

log = logging.getLogger(__name__)

SourceFactory = Callable[[], Source]
WindowsReader = Callable[[str], "dict[str, ObjectWindow] | None"]


@dataclass
class QualityRun:
    """What one run of the checks found."""

    run_id: str
    suites: list[str]
    results: list[CheckResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    statements: int = 0

    def summary(self) -> list[SuiteResult]:
        """Passed and failed counts per suite (the ``sfpipe.quality.completed`` data)."""
        out = []
        for name in self.suites:
            mine = [r for r in self.results if r.suite == name]
            out.append(
                SuiteResult(suite=name, passed=sum(r.success for r in mine), failed=sum(not r.success for r in mine))
            )
        return out

    def failing(self, severity: Severity | None = None) -> list[CheckResult]:
        """Failed checks, optionally of one severity."""
        return [r for r in self.results if not r.success and (severity is None or r.severity is severity)]

    def failing_expectations(self, severity: Severity | None = None) -> list[FailingExpectation]:
        """Failed checks as event data."""
        return [
            FailingExpectation(
                suite=r.suite,
                expectation=r.check,
                severity=r.severity.value,
                column=r.column,
                observed=r.observed if isinstance(r.observed, int | float | str | bool | None) else str(r.observed),
                unexpected_count=r.unexpected_count,
                table=r.table or None,
            )
            for r in self.failing(severity)
        ]


def manifest_windows(store: ObjectStore, bucket: str, run_id: str) -> dict[str, ObjectWindow] | None:
    """Each object's extract window in the run's manifest; None when the run has no manifest."""
    uri = lake.manifest_uri(bucket, run_id)
    try:
        raw_manifest, _ = store.get_bytes(uri)
    except NotFoundError:
        return None
    manifest = lake.parse_manifest(raw_manifest, uri)
    return {
        name: ObjectWindow(entry.window_from, entry.window_to, entry.rows) for name, entry in manifest.objects.items()
    }


class QualityChecker:
    """Runs the chosen suites for a run against one warehouse."""

    def __init__(
        self,
        warehouse: Warehouse,
        settings: Settings,
        *,
        store: ObjectStore | None = None,
        source: SourceFactory | None = None,
        windows: WindowsReader | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.settings = settings
        self.store = store
        self.source_factory = source
        self.windows_reader = windows
        if windows is None and store is not None:
            self.windows_reader = lambda run_id: manifest_windows(store, settings.lake_bucket, run_id)

    def catalog(self, tables: Sequence[TableRef]) -> Catalog:
        """Which of the tables exist, with their columns."""
        found = {}
        for ref in tables:
            schema = self.warehouse.table_schema(ref)
            if schema is not None:
                found[ref] = frozenset(schema.names)
        return Catalog(found)

    def facts(self, run_id: str, chosen: Sequence[str], catalog: Catalog, notes: list[str]) -> RunFacts:
        """The run's windows, the allowed stages and (for reconciliation) the source's counts."""
        windows: dict[str, ObjectWindow] = {}
        if self.windows_reader is not None:
            found = self.windows_reader(run_id)
            if found is None:
                notes.append(f"no manifest for run {run_id}: freshness checks skipped")
            else:
                windows = found
        else:
            notes.append("no lake to read the manifest from: freshness checks skipped")
        stages = tuple(s.strip() for s in self.settings.quality_opportunity_stages.split(",") if s.strip())
        stages_from = "settings"
        counts: dict[str, int] = {}
        source_error: str | None = None
        source: Source | None = None
        if self.source_factory is not None:
            try:
                source = self.source_factory()
                described = source.picklist("Opportunity", "StageName")
                if described:
                    stages, stages_from = tuple(described), "describe"
            except (SfpipeError, OSError) as exc:
                source_error = f"{type(exc).__name__}: {exc}"
                log.warning("cannot read the source's describe of Opportunity: %s", exc)
                source = None
        if "reconcile" in chosen:
            if source is None:
                source_error = source_error or "no source configured"
            else:
                counts, source_error = self._count(source, catalog, windows)
        if source is not None and hasattr(source, "close"):
            source.close()
        return RunFacts(
            run_id=run_id,
            windows=windows,
            stages=stages,
            stages_from=stages_from,
            source_counts=counts,
            source_error=source_error,
            tolerance=self.settings.quality_reconcile_tolerance,
        )

    @staticmethod
    def _count(source: Source, catalog: Catalog, windows: dict[str, ObjectWindow]) -> tuple[dict[str, int], str | None]:
        """The source's count of each object the raw layer has.

        An object the source refuses (a terminal error) is left out and named; an
        unreachable source (a transient error) stops the counting, since every other
        object would wait for the same retries.
        """
        counts: dict[str, int] = {}
        errors: list[str] = []
        for rules in raw.OBJECTS:
            if raw_table(rules.name) not in catalog.columns:
                continue
            window = windows.get(rules.name)
            # objects without CreatedDate (UserRole) are counted whole, on both sides
            dated = catalog.has(raw_table(rules.name), "CreatedDate")
            before = window.window_to if window is not None and dated else None
            try:
                counts[rules.name] = source.count(rules.name, created_before=before)
            except TerminalError as exc:
                errors.append(f"{rules.name}: {type(exc).__name__}: {exc}")
            except (SfpipeError, OSError) as exc:
                return {}, f"{type(exc).__name__}: {exc}"
        return counts, "; ".join(errors) or None

    def plan(self, run_id: str, chosen: Sequence[str]) -> tuple[list[Suite], RunFacts, list[str]]:
        """The suites restricted to what this warehouse has, the run's facts, and notes on what was skipped."""
        notes: list[str] = []
        catalog = self.catalog(suite_registry.tables(chosen))
        facts = self.facts(run_id, chosen, catalog, notes)
        built = []
        for name in chosen:
            suite, why = suite_registry.build(name, facts, catalog)
            built.append(suite)
            notes.extend(why)
        return built, facts, notes

    def run(self, run_id: str, chosen: Sequence[str] | None = None, *, docs_dir: Path | None = None) -> QualityRun:
        """Run the suites; nothing is written (see :mod:`sfpipe_quality.publish`)."""
        from sfpipe_quality import gx_runner

        started = time.monotonic()
        names = suite_registry.names(chosen)
        suites, facts, notes = self.plan(run_id, names)
        statements: list[str] = []
        conn = connection_for(self.warehouse, statements.append)
        results = gx_runner.run(suites, conn, run_id, docs_dir=docs_dir)
        if "reconcile" in names and facts.source_error:
            results.append(
                CheckResult(
                    suite="reconcile",
                    table="",
                    check="source.count_available",
                    expectation="source_count_available",
                    column=None,
                    severity=Severity.WARNING,
                    success=False,
                    observed=facts.source_error,
                    details={"error": facts.source_error},
                )
            )
        for note in notes:
            log.info("quality %s: %s", run_id, note)
        return QualityRun(
            run_id=run_id,
            suites=names,
            results=results,
            notes=notes,
            seconds=round(time.monotonic() - started, 3),
            statements=len(statements),
        )
