"""The suites against a real DuckDB warehouse: clean data passes, each kind of bad data fails one check."""

from __future__ import annotations

import pytest

from sfpipe_quality.runner import QualityRun
from sfpipe_quality.spec import Severity

BAD_ACCOUNT = "001" + "8" * 15
NEW_OPPORTUNITY = "006" + "9" * 15


def failing(run: QualityRun) -> set[str]:
    return {r.check for r in run.failing()}


def test_clean_org_passes_every_check_of_every_suite(org):
    run = org.check()

    assert run.suites == ["raw", "marts", "reconcile"]
    assert failing(run) == set(), [(r.check, r.observed, r.details) for r in run.failing()]
    # a silent GX failure (every expectation false, the error only in exception_info) would show here
    assert not [r.check for r in run.results if "error" in r.details]
    by_suite = {s.suite: s for s in run.summary()}
    assert by_suite["raw"].passed >= 100
    assert by_suite["marts"].passed >= 30
    assert by_suite["reconcile"].passed == 17
    checks = {r.check for r in run.results}
    for expected in (
        "opportunity.id_unique",
        "opportunity.id_not_null",
        "opportunity.accountid_resolves",
        "contact.accountid_resolves",
        "opportunitylineitem.opportunityid_resolves",
        "opportunity.modstamp_not_before_created",
        "opportunity.amount_not_negative",
        "opportunity.stage_in_picklist",
        "opportunity.fresh",
        "salesforce__owner_performance.total_win_percent_in_range",
        "salesforce__manager_performance.total_bookings_amount_not_negative",
        "salesforce__opportunity_enhanced.rows_match_staging",
        "salesforce__opportunity_enhanced.opportunity_id_unique",
        "salesforce__sales_snapshot.one_row",
        "opportunity.rows_match_source",
    ):
        assert expected in checks


def _duplicate_id(org):
    oid = org.one_id("opportunity")
    org.sql(f"INSERT INTO sfpipe_raw.opportunity SELECT * FROM sfpipe_raw.opportunity WHERE Id = '{oid}'")


def _orphan_opportunity(org):
    oid = org.one_id("opportunity")
    org.sql(
        "INSERT INTO sfpipe_raw.opportunity SELECT * REPLACE "
        f"('{NEW_OPPORTUNITY}' AS Id, '{BAD_ACCOUNT}' AS AccountId) FROM sfpipe_raw.opportunity WHERE Id = '{oid}'"
    )


def _negative_amount(org):
    oid = org.one_id("opportunity", "Amount IS NOT NULL")
    org.sql(f"UPDATE sfpipe_raw.opportunity SET Amount = -125.5 WHERE Id = '{oid}'")


def _stale_opportunities(org):
    # the last window brought opportunity changes, but the raw layer's newest is 10 days older
    org.sql(
        "UPDATE sfpipe_raw.opportunity SET SystemModstamp = SystemModstamp - INTERVAL 10 DAY, "
        "CreatedDate = CreatedDate - INTERVAL 10 DAY"
    )


def _unknown_stage(org):
    oid = org.one_id("opportunity")
    org.sql(f"UPDATE sfpipe_raw.opportunity SET StageName = 'Closed Maybe' WHERE Id = '{oid}'")


@pytest.mark.parametrize(
    ("inject", "expected"),
    [
        (_duplicate_id, {"opportunity.id_unique"}),
        (_orphan_opportunity, {"opportunity.accountid_resolves"}),
        (_negative_amount, {"opportunity.amount_not_negative"}),
        (_stale_opportunities, {"opportunity.fresh"}),
        (_unknown_stage, {"opportunity.stage_in_picklist"}),
    ],
    ids=["duplicate-ids", "orphan-opportunity", "negative-amount", "stale-data", "unknown-stage"],
)
def test_bad_data_fails_exactly_the_matching_check(org, inject, expected):
    inject(org)

    run = org.check()

    assert failing(run) == expected
    (result,) = run.failing()
    assert result.severity is Severity.ERROR
    assert result.suite == "raw"
    assert result.table == "sfpipe_raw.opportunity"


def test_failures_carry_counts_and_samples(org):
    _orphan_opportunity(org)
    _negative_amount(org)

    run = org.check(["raw"])

    by_check = {r.check: r for r in run.failing()}
    orphan = by_check["opportunity.accountid_resolves"]
    assert orphan.unexpected_count == 1
    assert orphan.details["sample"] == [{"Id": NEW_OPPORTUNITY, "AccountId": BAD_ACCOUNT}]
    negative = by_check["opportunity.amount_not_negative"]
    assert negative.column == "Amount"
    assert negative.unexpected_count == 1
    assert negative.details["sample"] == [-125.5]


def test_soft_deleted_children_of_missing_parents_are_not_orphans(org):
    oid = org.one_id("opportunity")
    org.sql(
        "INSERT INTO sfpipe_raw.opportunity SELECT * REPLACE "
        f"('{NEW_OPPORTUNITY}' AS Id, '{BAD_ACCOUNT}' AS AccountId, TRUE AS IsDeleted) "
        f"FROM sfpipe_raw.opportunity WHERE Id = '{oid}'"
    )

    assert failing(org.check(["raw"])) == set()


def test_live_child_of_a_soft_deleted_parent_resolves(org):
    account = org.session.fetch("SELECT AccountId FROM sfpipe_raw.opportunity WHERE NOT IsDeleted LIMIT 1")
    org.sql(f"UPDATE sfpipe_raw.account SET IsDeleted = TRUE WHERE Id = '{account.column(0)[0].as_py()}'")

    assert "opportunity.accountid_resolves" not in failing(org.check(["raw"]))


def test_hard_deleted_rows_are_not_live(org):
    oid = org.one_id("opportunity")
    org.sql(
        "INSERT INTO sfpipe_raw.opportunity SELECT * REPLACE "
        f"('{NEW_OPPORTUNITY}' AS Id, '{BAD_ACCOUNT}' AS AccountId, TRUE AS _hard_deleted) "
        f"FROM sfpipe_raw.opportunity WHERE Id = '{oid}'"
    )

    assert failing(org.check(["raw"])) == set()


def test_a_warning_fails_without_being_an_error(org):
    cid = org.one_id("contact")
    org.sql(
        f"INSERT INTO sfpipe_raw.contact SELECT * REPLACE ('not an id!' AS Id) FROM sfpipe_raw.contact WHERE Id = '{cid}'"
    )

    run = org.check(["raw"])

    assert failing(run) == {"contact.id_format"}
    assert run.failing(Severity.ERROR) == []
    assert run.failing(Severity.WARNING)[0].severity is Severity.WARNING


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "UPDATE sfpipe_marts.salesforce__owner_performance SET total_win_percent = 150 "
            "WHERE owner_id = (SELECT min(owner_id) FROM sfpipe_marts.salesforce__owner_performance)",
            {"salesforce__owner_performance.total_win_percent_in_range"},
        ),
        (
            "UPDATE sfpipe_marts.salesforce__manager_performance SET bookings_amount_closed_this_month = -1",
            {"salesforce__manager_performance.bookings_amount_closed_this_month_not_negative"},
        ),
        (
            "DELETE FROM sfpipe_marts.salesforce__contact_enhanced "
            "WHERE contact_id = (SELECT min(contact_id) FROM sfpipe_marts.salesforce__contact_enhanced)",
            {"salesforce__contact_enhanced.rows_match_staging"},
        ),
        (
            "INSERT INTO sfpipe_marts.salesforce__opportunity_enhanced "
            "SELECT * FROM sfpipe_marts.salesforce__opportunity_enhanced LIMIT 1",
            # a duplicated key is also one row too many against staging
            {
                "salesforce__opportunity_enhanced.opportunity_id_unique",
                "salesforce__opportunity_enhanced.rows_match_staging",
            },
        ),
        (
            "INSERT INTO sfpipe_marts.salesforce__sales_snapshot SELECT * FROM sfpipe_marts.salesforce__sales_snapshot",
            {"salesforce__sales_snapshot.one_row"},
        ),
    ],
    ids=["win-percent", "negative-bookings", "dropped-row", "duplicate-key", "two-snapshots"],
)
def test_bad_marts_fail_exactly_the_matching_checks(org, statement, expected):
    org.sql(statement)

    run = org.check(["marts"])

    assert failing(run) == expected


def test_raw_rows_missing_from_the_source_count_fail_reconciliation(org):
    org.sql(
        "DELETE FROM sfpipe_raw.contact WHERE Id IN "
        "(SELECT Id FROM sfpipe_raw.contact WHERE NOT IsDeleted ORDER BY Id LIMIT 100)"
    )

    run = org.check(["reconcile"])

    assert failing(run) == {"contact.rows_match_source"}
    (result,) = run.failing()
    assert result.observed == org.counts["Contact"] - 100
    # both sides count records created before the window's end
    assert ("Contact", sample_window_end(org)) in org.source.asked


def sample_window_end(org):
    from sfpipe_quality import sample_org

    return sample_org.AS_OF


def test_stage_picklist_comes_from_describe_when_the_source_has_it(org):
    org.source.stages = ["Prospecting", "Closed Won", "Closed Lost"]

    run = org.check(["raw"])

    assert "opportunity.stage_in_picklist" in failing(run)
    assert "opportunityhistory.stage_in_picklist" in failing(run)


def test_an_unreachable_source_is_a_warning_not_an_alert(org):
    from sfpipe.errors import TransientError

    def down():
        raise TransientError("connection refused")

    run = org.check(["raw", "reconcile"], source=down)

    assert failing(run) == {"source.count_available"}
    assert run.failing(Severity.ERROR) == []
    assert "connection refused" in run.failing()[0].observed


def test_checks_are_pushed_down_never_pulling_a_table(org_factory):
    big = org_factory(60_000)
    # 10,000 bad rows: the check reports them all but reads a sample
    big.sql(
        "UPDATE sfpipe_raw.opportunitylineitem SET TotalPrice = -1 WHERE Id IN "
        "(SELECT Id FROM sfpipe_raw.opportunitylineitem ORDER BY Id LIMIT 10000)"
    )
    big.session.rows = big.session.largest = 0

    run = big.check()

    assert failing(run) == {"opportunitylineitem.totalprice_not_negative"}
    assert run.failing()[0].unexpected_count == 10_000
    assert len(run.failing()[0].details["sample"]) == 20
    # the largest table has over 10,000 rows; no query handed more than one 1,000-row batch to Python
    assert big.size.counts["OpportunityLineItem"] > 10_000
    assert big.session.largest <= 1_000
    assert big.session.rows < 10_000


def test_missing_tables_and_columns_skip_their_checks_with_a_note(org):
    org.sql("DROP TABLE sfpipe_raw.campaignmember", "ALTER TABLE sfpipe_raw.opportunity DROP COLUMN Probability")

    run = org.check(["raw"])

    checks = {r.check for r in run.results}
    assert not any(c.startswith("campaignmember.") for c in checks)
    assert "opportunity.probability_percent" not in checks
    assert any("campaignmember" in n and "missing" in n for n in run.notes)
    assert any("opportunity.probability_percent" in n for n in run.notes)
    assert failing(run) == set()
