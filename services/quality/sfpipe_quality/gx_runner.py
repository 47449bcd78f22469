"""Run suites with Great Expectations and turn its results into sfpipe's.

The only module that imports GX (about 3 s, so only when checks run). One ephemeral
context per run: a SQL datasource on the warehouse (see :mod:`sfpipe_quality.datasource`),
one batch and one GX suite per table, one checkpoint per run whose Data Docs are built
into a local folder for the caller to publish.

GX 1.24 on DuckDB needs one fix, applied in :func:`ensure_duckdb_persisted`: DuckDB must be
among GX's "persisted connection" dialects, or GX reads results after closing the
connection and every expectation fails with the error hidden in ``exception_info``
(great_expectations issue #11579). The GX version is pinned, and the clean-data test
fails if this stops working.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sfpipe_quality.datasource import GxConnection
from sfpipe_quality.spec import Check, Severity, Suite, TableChecks

log = logging.getLogger(__name__)

GX_VERSION = "1.24.1"
DATASOURCE = "warehouse"
SITE = "sfpipe"
SAMPLE_ROWS = 20


@dataclass
class CheckResult:
    """One check's outcome, in the shape of ``sfpipe_ops.quality_results``."""

    suite: str
    table: str
    check: str
    expectation: str
    column: str | None
    severity: Severity
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_error(self) -> bool:
        """A failed error-severity check: it raises an alert."""
        return not self.success and self.severity is Severity.ERROR


class _DuckDB(StrEnum):
    """DuckDB as GX names dialects (GX has no member for it)."""

    DUCKDB = "duckdb"


def ensure_duckdb_persisted() -> None:
    """Make GX keep one connection open for DuckDB, as it does for SQLite and BigQuery."""
    import great_expectations
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    if great_expectations.__version__ != GX_VERSION:
        log.warning("Great Expectations %s is not the pinned %s", great_expectations.__version__, GX_VERSION)
    if "duckdb" not in engine._PERSISTED_CONNECTION_DIALECTS:
        engine._PERSISTED_CONNECTION_DIALECTS = (*engine._PERSISTED_CONNECTION_DIALECTS, _DuckDB.DUCKDB)  # type: ignore[assignment]


def import_gx() -> Any:
    """Import GX quietly (no analytics, no progress bars) with the DuckDB fix applied."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    from sfpipe_quality import dbapi  # noqa: F401 - registers the duckdb+sfpipe dialect

    # GX pins this logger to INFO and logs each ephemeral docs folder there: noise for sfpipe.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    ensure_duckdb_persisted()
    return gx


@functools.cache
def _unexpected_rows_class() -> Any:
    """GX's UnexpectedRowsExpectation, always returning the rows it found.

    A checkpoint's result format overrides each expectation's, and only COMPLETE keeps the
    unexpected rows; but COMPLETE makes column expectations list every unexpected value.
    The rows are fetched anyway (GX reads at most ``MAX_RESULT_RECORDS`` of them), so this
    subclass keeps them whatever the format, and column expectations stay at 20 samples.
    """
    from great_expectations.expectations import UnexpectedRowsExpectation

    class SampledUnexpectedRows(UnexpectedRowsExpectation):
        """Unexpected rows, with a sample of them in the result."""

        def _get_result_format(self, runtime_configuration: dict[str, Any] | None = None) -> Any:
            return "COMPLETE"

    return SampledUnexpectedRows


SAMPLED_TYPE = "sampled_unexpected_rows"


def _severity(check: Check) -> str:
    return "critical" if check.severity is Severity.ERROR else "warning"


def _expectation(gx: Any, check: Check, suite: Suite, table: TableChecks, conn: GxConnection) -> Any:
    kwargs = dict(check.kwargs)
    if check.expectation == "UnexpectedRowsExpectation":
        kwargs["unexpected_rows_query"] = conn.sql(str(kwargs["unexpected_rows_query"]))
        cls = _unexpected_rows_class()
    else:
        cls = getattr(gx.expectations, check.expectation)
    return cls(
        **kwargs,
        severity=_severity(check),
        description=check.description,
        meta={
            "sfpipe_check": check.name,
            "sfpipe_suite": suite.name,
            "sfpipe_suite_version": suite.version,
            "sfpipe_table": str(table.table),
            "sfpipe_severity": str(check.severity),
        },
    )


@contextmanager
def _context(gx: Any, docs_dir: Path | None) -> Iterator[Any]:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name=SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    yield context


def _sample(result: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if result.get("partial_unexpected_list"):
        details["sample"] = result["partial_unexpected_list"][:SAMPLE_ROWS]
    rows = (result.get("details") or {}).get("unexpected_rows")
    if rows:
        details["sample"] = rows[:SAMPLE_ROWS]
    for key in ("element_count", "unexpected_percent", "missing_count"):
        if key in result and result[key] is not None:
            details[key] = result[key]
    return details


def _to_result(gx_result: Any) -> CheckResult:
    config = gx_result.expectation_config
    meta = config.meta or {}
    result = gx_result.result or {}
    kwargs = config.kwargs or {}
    details = _sample(result)
    exception = gx_result.exception_info or {}
    raised = [
        info.get("exception_message")
        for info in (exception.values() if "raised_exception" not in exception else [exception])
        if isinstance(info, dict) and info.get("raised_exception")
    ]
    if raised:
        details["error"] = str(raised[0])[:2000]
        log.error("check %s could not run: %s", meta.get("sfpipe_check"), raised[0])
    unexpected = result.get("unexpected_count")
    observed = result.get("observed_value")
    expectation = str(config.type)
    if expectation in (SAMPLED_TYPE, "unexpected_rows_expectation"):
        expectation = "unexpected_rows_expectation"
        unexpected = observed
    return CheckResult(
        suite=str(meta.get("sfpipe_suite")),
        table=str(meta.get("sfpipe_table")),
        check=str(meta.get("sfpipe_check")),
        expectation=expectation,
        column=kwargs.get("column") or kwargs.get("column_A"),
        severity=Severity(meta.get("sfpipe_severity", "error")),
        success=bool(gx_result.success),
        observed=observed,
        unexpected_count=int(unexpected) if unexpected is not None else None,
        details=details,
    )


def run(
    suites: Sequence[Suite],
    conn: GxConnection,
    run_id: str,
    *,
    docs_dir: Path | None = None,
) -> list[CheckResult]:
    """Validate every table of every suite; Data Docs go to ``docs_dir`` when given."""
    gx = import_gx()
    from great_expectations.core.run_identifier import RunIdentifier

    if not any(s.tables for s in suites):
        return []
    with _context(gx, docs_dir) as context:
        datasource = context.data_sources.add_sql(
            name=DATASOURCE, connection_string=conn.connection_string, kwargs=conn.kwargs, create_temp_table=False
        )
        definitions = []
        for suite in suites:
            for table in suite.tables:
                name = f"{suite.name}.{table.key}"
                if table.query is None:
                    asset = datasource.add_table_asset(
                        name=name, table_name=table.table.table, schema_name=table.table.dataset
                    )
                else:
                    asset = datasource.add_query_asset(name=name, query=conn.sql(table.query))
                batch = asset.add_batch_definition_whole_table(name)
                gx_suite = context.suites.add(
                    gx.ExpectationSuite(name=name, meta={"sfpipe_suite_version": suite.version})
                )
                for check in table.checks:
                    gx_suite.add_expectation(_expectation(gx, check, suite, table, conn))
                definitions.append(
                    context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=gx_suite))
                )
        # Data Docs are built once at the end: GX's UpdateDataDocsAction rebuilds the whole
        # site after every validation (quadratic in the number of tables).
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"sfpipe-{run_id}",
                validation_definitions=definitions,
                actions=[],
                result_format={"result_format": "BASIC", "partial_unexpected_count": SAMPLE_ROWS},
            )
        )
        outcome = checkpoint.run(run_id=RunIdentifier(run_name=run_id))
        if docs_dir is not None:
            context.build_data_docs(site_names=[SITE])
        results = [_to_result(item) for suite_result in outcome.run_results.values() for item in suite_result.results]
    order = {(s.name, c.name): i for i, (s, c) in enumerate((s, c) for s in suites for c in s.checks)}
    results.sort(key=lambda r: order.get((r.suite, r.check), len(order)))
    return results
