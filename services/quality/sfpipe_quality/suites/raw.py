"""The raw layer suite: is what the loader merged a faithful copy of the org?

Per object: Ids present, unique and shaped like Salesforce Ids; SystemModstamp not before
CreatedDate; money not negative, percentages within [0, 100]; references resolve;
Opportunity stages within the org's picklist; and the newest SystemModstamp not older
than the start of the object's last extract window (freshness).

Soft-deleted rows. The raw layer keeps deleted records (``IsDeleted``, ``_hard_deleted``)
as the source had them, so value checks (Ids, timestamps, amounts, stages) apply to every
row. Reference checks look only at live children: Salesforce cascades a parent's delete
to its children, and a deleted child may point at a parent that was emptied from the
recycle bin before the extractor saw it. A live child's parent may itself be soft-deleted
(the cascade of the children can arrive in the next window or CDC event), so any parent
row counts; a parent that never arrived is an orphan. Null references are allowed (a
Contact without an Account is a private contact).

Severity. Relationships the marts are built on (master-detail children, and the Account of
Opportunities and Contacts) are errors. Other lookups are warnings: a real org's
integration user may not see every User or Campaign that a record points at.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe_quality.spec import BATCH, Catalog, Check, Severity, Suite, TableChecks
from sfpipe_quality.suites.context import RunFacts, raw_table

VERSION = "1"
E, W = Severity.ERROR, Severity.WARNING


@dataclass(frozen=True)
class Reference:
    """A lookup or master-detail field and the object it points at."""

    column: str
    parent: str
    severity: Severity


@dataclass(frozen=True)
class ObjectRules:
    """What the raw suite checks on one object beyond the checks every object gets."""

    name: str
    references: tuple[Reference, ...] = ()
    money: tuple[str, ...] = ()
    percents: tuple[str, ...] = ()
    stage: bool = False


def _ref(column: str, parent: str, severity: Severity = W) -> Reference:
    return Reference(column, parent, severity)


OBJECTS: tuple[ObjectRules, ...] = (
    ObjectRules("UserRole", (_ref("ParentRoleId", "UserRole"),)),
    ObjectRules("User", (_ref("UserRoleId", "UserRole"), _ref("ManagerId", "User"))),
    ObjectRules(
        "Account",
        (_ref("ParentId", "Account"), _ref("OwnerId", "User")),
        money=("AnnualRevenue",),
    ),
    ObjectRules(
        "Contact",
        (_ref("AccountId", "Account", E), _ref("ReportsToId", "Contact"), _ref("OwnerId", "User")),
    ),
    ObjectRules(
        "Lead",
        (
            _ref("ConvertedAccountId", "Account"),
            _ref("ConvertedContactId", "Contact"),
            _ref("ConvertedOpportunityId", "Opportunity"),
        ),
        money=("AnnualRevenue",),
    ),
    ObjectRules(
        "Campaign",
        (_ref("ParentId", "Campaign"), _ref("OwnerId", "User")),
        money=("ExpectedRevenue", "BudgetedCost", "ActualCost"),
    ),
    ObjectRules(
        "Opportunity",
        (
            _ref("AccountId", "Account", E),
            _ref("OwnerId", "User"),
            _ref("CampaignId", "Campaign"),
            _ref("Pricebook2Id", "Pricebook2"),
        ),
        money=("Amount", "ExpectedRevenue"),
        percents=("Probability",),
        stage=True,
    ),
    ObjectRules("Product2"),
    ObjectRules("Pricebook2"),
    ObjectRules(
        "PricebookEntry",
        (_ref("Pricebook2Id", "Pricebook2", E), _ref("Product2Id", "Product2", E)),
        money=("UnitPrice",),
    ),
    ObjectRules(
        "OpportunityLineItem",
        (
            _ref("OpportunityId", "Opportunity", E),
            _ref("PricebookEntryId", "PricebookEntry", E),
            _ref("Product2Id", "Product2"),
        ),
        money=("UnitPrice", "TotalPrice", "ListPrice"),
        percents=("Discount",),
    ),
    ObjectRules(
        "OpportunityHistory",
        (_ref("OpportunityId", "Opportunity", E),),
        money=("Amount", "ExpectedRevenue"),
        percents=("Probability",),
        stage=True,
    ),
    ObjectRules("Task", (_ref("AccountId", "Account"), _ref("OwnerId", "User"))),
    ObjectRules("Event", (_ref("AccountId", "Account"), _ref("OwnerId", "User"))),
    ObjectRules(
        "CampaignMember",
        (_ref("CampaignId", "Campaign", E), _ref("ContactId", "Contact"), _ref("LeadId", "Lead")),
    ),
    ObjectRules("Case", (_ref("AccountId", "Account"), _ref("ContactId", "Contact"))),
    ObjectRules(
        "Order",
        (_ref("AccountId", "Account", E), _ref("Pricebook2Id", "Pricebook2"), _ref("OpportunityId", "Opportunity")),
        money=("TotalAmount",),
    ),
)


def live_condition(catalog: Catalog, table: TableRef, alias: str = "") -> str:
    """BigQuery SQL that keeps the rows Salesforce has not deleted (by the columns the table has)."""
    prefix = f"{alias}." if alias else ""
    parts = []
    if catalog.has(table, "IsDeleted"):
        parts.append(f"NOT COALESCE({prefix}IsDeleted, FALSE)")
    if catalog.has(table, "_hard_deleted"):
        parts.append(f"NOT COALESCE({prefix}_hard_deleted, FALSE)")
    return " AND ".join(parts) or "TRUE"


def reference_query(catalog: Catalog, child: TableRef, ref: Reference) -> str:
    """Live child rows whose reference points at no row of the parent's raw table."""
    parent = raw_table(ref.parent)
    return (
        f"SELECT child.Id, child.{ref.column} FROM {BATCH} AS child "
        f"LEFT JOIN {parent.sql} AS parent ON parent.Id = child.{ref.column} "
        f"WHERE child.{ref.column} IS NOT NULL AND {live_condition(catalog, child, 'child')} AND parent.Id IS NULL"
    )


def object_checks(rules: ObjectRules, facts: RunFacts, catalog: Catalog) -> TableChecks:
    """Every raw-suite check of one object."""
    table = raw_table(rules.name)
    t = table.table
    checks = [
        Check(
            f"{t}.id_not_null",
            "ExpectColumnValuesToNotBeNull",
            {"column": "Id"},
            E,
            "Every row has an Id.",
            ("Id",),
        ),
        Check(
            f"{t}.id_unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "Id"},
            E,
            "One row per Id: the loader's MERGE never duplicates a record.",
            ("Id",),
        ),
        Check(
            f"{t}.id_format",
            "UnexpectedRowsExpectation",
            {
                "unexpected_rows_query": (
                    f"SELECT Id FROM {BATCH} WHERE Id IS NOT NULL "
                    "AND (LENGTH(Id) NOT IN (15, 18) OR NOT REGEXP_CONTAINS(Id, '^[0-9A-Za-z]+$'))"
                )
            },
            W,
            "Ids look like Salesforce Ids (15 or 18 letters and digits).",
            ("Id",),
        ),
        Check(
            f"{t}.modstamp_not_before_created",
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {
                "column_A": "SystemModstamp",
                "column_B": "CreatedDate",
                "or_equal": True,
                "ignore_row_if": "either_value_is_missing",
            },
            E,
            "SystemModstamp is never earlier than CreatedDate.",
            ("SystemModstamp", "CreatedDate"),
        ),
    ]
    for column in rules.money:
        checks.append(
            Check(
                f"{t}.{column.lower()}_not_negative",
                "ExpectColumnValuesToBeBetween",
                {"column": column, "min_value": 0},
                E,
                f"{column} is not negative.",
                (column,),
            )
        )
    for column in rules.percents:
        checks.append(
            Check(
                f"{t}.{column.lower()}_percent",
                "ExpectColumnValuesToBeBetween",
                {"column": column, "min_value": 0, "max_value": 100},
                W,
                f"{column} is a percentage within [0, 100].",
                (column,),
            )
        )
    for ref in rules.references:
        checks.append(
            Check(
                f"{t}.{ref.column.lower()}_resolves",
                "UnexpectedRowsExpectation",
                {"unexpected_rows_query": reference_query(catalog, table, ref)},
                ref.severity,
                f"Every live {rules.name}'s {ref.column} resolves to a row of {raw_table(ref.parent)}.",
                (ref.column, "Id"),
                (raw_table(ref.parent),),
            )
        )
    if rules.stage and facts.stages:
        checks.append(
            Check(
                f"{t}.stage_in_picklist",
                "ExpectColumnValuesToBeInSet",
                {"column": "StageName", "value_set": list(facts.stages)},
                E,
                f"StageName is one of the org's OpportunityStage values (from {facts.stages_from}).",
                ("StageName",),
            )
        )
    window = facts.windows.get(rules.name)
    if window is not None and window.rows > 0 and window.window_from is not None:
        checks.append(
            Check(
                f"{t}.fresh",
                "ExpectColumnMaxToBeBetween",
                {"column": "SystemModstamp", "min_value": window.window_from.isoformat()},
                E,
                f"The newest SystemModstamp is not older than the start of the last extract window "
                f"({window.rows} rows extracted from {window.window_from.isoformat()}): the run's changes arrived.",
                ("SystemModstamp",),
            )
        )
    return TableChecks(table, tuple(checks))


def suite(facts: RunFacts, catalog: Catalog) -> Suite:
    """The raw layer suite for a run."""
    return Suite("raw", VERSION, tuple(object_checks(rules, facts, catalog) for rules in OBJECTS))


def tables() -> list[TableRef]:
    """Every table the raw suite may read."""
    return [raw_table(rules.name) for rules in OBJECTS]
