"""The suites as data: names, severities, SQL in both dialects, applicability, events (no warehouse)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlglot

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe.errors import BadInputError
from sfpipe.events import EventType
from sfpipe_quality import publish
from sfpipe_quality import suites as registry
from sfpipe_quality.datasource import GxConnection
from sfpipe_quality.gx_runner import CheckResult
from sfpipe_quality.runner import QualityRun
from sfpipe_quality.spec import BATCH, Catalog, Check, Severity, TableChecks
from sfpipe_quality.suites import marts, raw, reconcile
from sfpipe_quality.suites.context import ObjectWindow, RunFacts

WINDOW = ObjectWindow(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), 12)


def everything() -> Catalog:
    """A catalog in which every table the suites know exists with every column they read."""
    columns: dict[TableRef, set[str]] = {}
    facts = RunFacts("r", {r.name: WINDOW for r in raw.OBJECTS}, ("Prospecting",), source_counts={"Opportunity": 1000})
    for name in registry.ORDER:
        full = registry.SUITES[name].suite(facts, Catalog({}))
        for table in full.tables:
            cols = columns.setdefault(table.table, set())
            cols.update({"Id", "IsDeleted", "_hard_deleted", "CreatedDate", *table.query_columns})
            for check in table.checks:
                cols.update(check.columns)
                for ref in check.reads:
                    columns.setdefault(ref, {"Id"})
    return Catalog({ref: frozenset(cols) for ref, cols in columns.items()})


FACTS = RunFacts(
    "20261101T000000Z-00c0ffee",
    {r.name: WINDOW for r in raw.OBJECTS},
    ("Prospecting", "Closed Won"),
    source_counts={r.name: 1000 for r in raw.OBJECTS},
)


def test_every_check_name_is_unique_and_prefixed_by_its_table():
    catalog = everything()
    for name in registry.ORDER:
        suite, _ = registry.build(name, FACTS, catalog)
        names = [c.name for c in suite.checks]
        assert len(names) == len(set(names)), name
        for table in suite.tables:
            for check in table.checks:
                assert check.name.startswith(table.table.table + "."), check.name
                assert check.severity in (Severity.ERROR, Severity.WARNING)
                assert check.description


def test_the_brief_checks_exist_with_their_severity():
    suite, _ = registry.build("raw", FACTS, everything())
    by_name = {c.name: c for c in suite.checks}
    assert by_name["opportunity.id_unique"].severity is Severity.ERROR
    assert by_name["opportunity.accountid_resolves"].severity is Severity.ERROR
    assert by_name["contact.accountid_resolves"].severity is Severity.ERROR
    assert by_name["opportunitylineitem.opportunityid_resolves"].severity is Severity.ERROR
    assert by_name["opportunity.ownerid_resolves"].severity is Severity.WARNING
    assert by_name["opportunity.stage_in_picklist"].kwargs["value_set"] == ["Prospecting", "Closed Won"]
    assert by_name["opportunity.fresh"].kwargs == {
        "column": "SystemModstamp",
        "min_value": WINDOW.window_from.isoformat(),
    }
    assert by_name["account.modstamp_not_before_created"].kwargs["or_equal"] is True


def test_freshness_needs_a_window_that_brought_rows():
    quiet = RunFacts("r", {"Opportunity": ObjectWindow(WINDOW.window_from, WINDOW.window_to, 0)}, ("x",))
    full = RunFacts("r", {"Opportunity": ObjectWindow(None, WINDOW.window_to, 50)}, ("x",))
    for facts in (quiet, full, RunFacts("r")):
        suite, _ = registry.build("raw", facts, everything())
        assert "opportunity.fresh" not in {c.name for c in suite.checks}


def _queries():
    catalog = everything()
    for name in registry.ORDER:
        suite, _ = registry.build(name, FACTS, catalog)
        for table in suite.tables:
            if table.query:
                yield table.query
            for check in table.checks:
                if "unexpected_rows_query" in check.kwargs:
                    yield check.kwargs["unexpected_rows_query"]


def test_suite_sql_is_bigquery_and_transpiles_for_duckdb_keeping_the_batch_placeholder():
    queries = list(_queries())
    assert len(queries) > 40
    duck = GxConnection("duckdb+sfpipe://", dialect="duckdb")
    for query in queries:
        bigquery = query.replace(BATCH, "(SELECT * FROM `sfpipe_raw.opportunity`)")
        sqlglot.parse_one(bigquery, read="bigquery")
        local = duck.sql(query)
        assert (BATCH in local) == (BATCH in query)
        sqlglot.parse_one(local.replace(BATCH, "(SELECT 1 AS Id)"), read="duckdb")


def test_reserved_table_names_are_quoted_in_both_dialects():
    query = raw.reference_query(
        everything(), TableRef("sfpipe_raw", "opportunity"), raw.Reference("X", "Order", Severity.ERROR)
    )
    assert "`sfpipe_raw.order`" in query
    assert '"sfpipe_raw"."order"' in GxConnection("duckdb+sfpipe://", dialect="duckdb").sql(query)


def test_references_look_only_at_live_children_by_the_columns_the_table_has():
    child = TableRef("sfpipe_raw", "opportunity")
    both = Catalog({child: frozenset({"Id", "IsDeleted", "_hard_deleted"})})
    neither = Catalog({child: frozenset({"Id"})})
    ref = raw.Reference("AccountId", "Account", Severity.ERROR)
    assert "NOT COALESCE(child.IsDeleted, FALSE) AND NOT COALESCE(child._hard_deleted, FALSE)" in raw.reference_query(
        both, child, ref
    )
    assert "AND TRUE AND" in raw.reference_query(neither, child, ref)


def test_applicability_skips_missing_tables_columns_and_read_tables_with_notes():
    table = TableRef("sfpipe_raw", "opportunity")
    checks = TableChecks(
        table,
        (
            Check(
                "opportunity.a", "ExpectColumnValuesToNotBeNull", {"column": "Amount"}, Severity.ERROR, "d", ("Amount",)
            ),
            Check("opportunity.b", "ExpectColumnValuesToNotBeNull", {"column": "Id"}, Severity.ERROR, "d", ("Id",)),
            Check(
                "opportunity.c",
                "UnexpectedRowsExpectation",
                {},
                Severity.ERROR,
                "d",
                (),
                (TableRef("sfpipe_raw", "x"),),
            ),
        ),
    )
    kept, notes = Catalog({table: frozenset({"id"})}).applicable(checks)
    assert kept is not None
    assert [c.name for c in kept.checks] == ["opportunity.b"]
    assert len(notes) == 2
    missing, notes = Catalog({}).applicable(checks)
    assert missing is None and "table missing" in notes[0]


def test_reconcile_bounds_and_window():
    assert reconcile.bounds(1000, 0.005) == (995, 1005)
    assert reconcile.bounds(0, 0.5) == (0, 0)
    assert reconcile.bounds(10, 0.0) == (10, 10)
    suite, _ = registry.build("reconcile", FACTS, everything())
    opportunity = next(t for t in suite.tables if t.table.table == "opportunity")
    assert "CreatedDate < TIMESTAMP '2026-11-01T00:00:00+00:00'" in (opportunity.query or "")
    (check,) = opportunity.checks
    assert check.kwargs == {"min_value": 995, "max_value": 1005}


def test_marts_reconcile_with_staging_in_one_query():
    suite = marts.suite(FACTS, Catalog({}))
    check = next(c for c in suite.checks if c.name == "salesforce__opportunity_enhanced.rows_match_staging")
    assert check.reads == (TableRef("sfpipe_staging", "stg_salesforce__opportunity"),)
    assert "CROSS JOIN" in check.kwargs["unexpected_rows_query"]


def test_unknown_suite_names_are_a_clear_error():
    assert registry.names(None) == ["raw", "marts", "reconcile"]
    assert registry.names(["reconcile", "raw"]) == ["raw", "reconcile"]
    with pytest.raises(BadInputError, match="expected some of"):
        registry.names(["raw", "nope"])


def _run(*results: CheckResult) -> QualityRun:
    return QualityRun("20261101T000000Z-00c0ffee", ["raw", "marts"], list(results))


def _result(check: str, success: bool, severity: Severity) -> CheckResult:
    return CheckResult("raw", "sfpipe_raw.opportunity", check, "expect_x", "Amount", severity, success, -1, 1)


def test_alerts_only_for_failed_errors_with_deterministic_ids():
    warning_only = _run(_result("a", True, Severity.ERROR), _result("b", False, Severity.WARNING))
    error = _run(_result("a", False, Severity.ERROR), _result("b", False, Severity.WARNING))

    quiet = publish.events(warning_only, None, seed="event-1")
    loud = publish.events(error, "gs://l/quality/x/docs/index.html", seed="event-1")

    assert [e.type for e in quiet] == [EventType.QUALITY_COMPLETED]
    assert [e.type for e in loud] == [EventType.QUALITY_COMPLETED, EventType.QUALITY_ALERT]
    assert [f["expectation"] for f in loud[1].data["failing"]] == ["a"]
    assert loud[0].data["suites"] == [
        {"suite": "raw", "passed": 0, "failed": 2},
        {"suite": "marts", "passed": 0, "failed": 0},
    ]
    assert quiet[0].id == loud[0].id == publish.events(error, None, seed="event-1")[0].id
    assert publish.events(error, None, seed="event-2")[0].id != loud[0].id


def test_result_rows_replace_the_runs_suites_in_parsable_bigquery_sql():
    run = _run(*[_result(f"c{i}", i % 2 == 0, Severity.ERROR) for i in range(1201)])

    statements = publish.results_statements(run, datetime(2026, 11, 1, tzinfo=UTC))

    assert statements[0].startswith(
        "DELETE FROM `sfpipe_ops.quality_results` WHERE run_id = '20261101T000000Z-00c0ffee'"
    )
    assert "suite IN ('raw', 'marts')" in statements[0]
    assert len(statements) == 1 + 3  # 500 rows per INSERT
    for statement in statements:
        sqlglot.parse_one(statement, read="bigquery")
