"""The marts suite: do the Dataform marts (fivetran/dbt_salesforce's names) add up?

One row per key in every mart; the enhanced marts have exactly as many rows as the
staging model they enrich (a join that drops or fans out rows shows here); win
percentages are within [0, 100]; bookings are never negative; the sales snapshot is one
row. Marts and staging are rebuilt together by one Dataform invocation, so their counts
are compared in one query, on one snapshot.
"""

from __future__ import annotations

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe_quality.spec import BATCH, Catalog, Check, Severity, Suite, TableChecks
from sfpipe_quality.suites.context import MARTS, STAGING, RunFacts

VERSION = "1"
E, W = Severity.ERROR, Severity.WARNING

WIN_PERCENTS = ("win_percent_this_month", "win_percent_this_quarter", "total_win_percent")
BOOKINGS = ("total_bookings_amount", "bookings_amount_closed_this_month", "bookings_amount_closed_this_quarter")


def mart(name: str) -> TableRef:
    """A mart table."""
    return TableRef(MARTS, name)


def staging(name: str) -> TableRef:
    """A staging table."""
    return TableRef(STAGING, name)


def _unique(table: TableRef, key: str) -> list[Check]:
    t = table.table
    return [
        Check(
            f"{t}.{key}_not_null",
            "ExpectColumnValuesToNotBeNull",
            {"column": key},
            E,
            f"Every row has a {key}.",
            (key,),
        ),
        Check(f"{t}.{key}_unique", "ExpectColumnValuesToBeUnique", {"column": key}, E, f"One row per {key}.", (key,)),
    ]


def _reconciles(table: TableRef, other: TableRef) -> Check:
    query = (
        f"SELECT m.row_count AS mart_rows, s.row_count AS staging_rows "
        f"FROM (SELECT COUNT(*) AS row_count FROM {BATCH}) AS m "
        f"CROSS JOIN (SELECT COUNT(*) AS row_count FROM {other.sql}) AS s "
        f"WHERE m.row_count != s.row_count"
    )
    return Check(
        f"{table.table}.rows_match_staging",
        "UnexpectedRowsExpectation",
        {"unexpected_rows_query": query},
        E,
        f"As many rows as {other}: enriching joins neither drop nor duplicate records.",
        (),
        (other,),
    )


def _percents(table: TableRef) -> list[Check]:
    return [
        Check(
            f"{table.table}.{column}_in_range",
            "ExpectColumnValuesToBeBetween",
            {"column": column, "min_value": 0, "max_value": 100},
            E,
            f"{column} is a percentage within [0, 100] (or NULL when nothing closed).",
            (column,),
        )
        for column in WIN_PERCENTS
    ]


def _bookings(table: TableRef) -> list[Check]:
    return [
        Check(
            f"{table.table}.{column}_not_negative",
            "ExpectColumnValuesToBeBetween",
            {"column": column, "min_value": 0},
            E,
            f"{column} is never negative.",
            (column,),
        )
        for column in BOOKINGS
    ]


def suite(facts: RunFacts, catalog: Catalog) -> Suite:
    """The marts suite (the facts are not needed: the marts are checked against staging)."""
    opportunity = mart("salesforce__opportunity_enhanced")
    contact = mart("salesforce__contact_enhanced")
    line_item = mart("salesforce__opportunity_line_item_enhanced")
    owner = mart("salesforce__owner_performance")
    manager = mart("salesforce__manager_performance")
    snapshot = mart("salesforce__sales_snapshot")
    daily = mart("salesforce__daily_activity")
    history = mart("salesforce__opportunity_daily_history")
    tables = (
        TableChecks(
            opportunity,
            (*_unique(opportunity, "opportunity_id"), _reconciles(opportunity, staging("stg_salesforce__opportunity"))),
        ),
        TableChecks(
            contact, (*_unique(contact, "contact_id"), _reconciles(contact, staging("stg_salesforce__contact")))
        ),
        TableChecks(
            line_item,
            (
                *_unique(line_item, "opportunity_line_item_id"),
                _reconciles(line_item, staging("stg_salesforce__opportunity_line_item")),
            ),
        ),
        TableChecks(owner, (*_unique(owner, "owner_id"), *_percents(owner), *_bookings(owner))),
        TableChecks(manager, (*_unique(manager, "manager_id"), *_percents(manager), *_bookings(manager))),
        TableChecks(
            snapshot,
            (
                Check(
                    f"{snapshot.table}.one_row",
                    "ExpectTableRowCountToEqual",
                    {"value": 1},
                    E,
                    "The snapshot is exactly one row.",
                ),
                *_percents(snapshot),
                *_bookings(snapshot),
            ),
        ),
        TableChecks(daily, tuple(_unique(daily, "date_day"))),
        TableChecks(history, tuple(_unique(history, "opportunity_day_id"))),
    )
    return Suite("marts", VERSION, tables)


def tables() -> list[TableRef]:
    """Every table the marts suite may read."""
    return [t.table for t in suite(RunFacts(run_id=""), Catalog({})).tables] + [
        staging("stg_salesforce__opportunity"),
        staging("stg_salesforce__contact"),
        staging("stg_salesforce__opportunity_line_item"),
    ]
