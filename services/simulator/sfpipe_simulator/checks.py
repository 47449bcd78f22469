"""Invariants of a simulated org, as SQL over one table (or view) per object.

Used by the tests on a generated org, on the live store after activity, and on a truth export:
each check returns the violations it found (empty = the invariant holds), so a failure names
the object, the rule and a few offending Ids.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from sfpipe_simulator.ids import KEY_PREFIXES, is_valid_id
from sfpipe_simulator.metadata import OBJECTS, OBJECTS_BY_NAME, STAGES, ObjectDef

STANDARD = tuple(o for o in OBJECTS if not o.name.endswith("__c"))
"""The default objects checked: the standard ones (every org has them)."""

SAMPLE = 5


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _violations(con: duckdb.DuckDBPyConnection, what: str, sql: str) -> list[str]:
    rows = con.execute(sql).fetchall()
    if not rows:
        return []
    ids = ", ".join(str(r[0]) for r in rows[:SAMPLE])
    return [f"{what}: {len(rows)}+ rows, e.g. {ids}"]


def check_references(con: duckdb.DuckDBPyConnection, objects: Iterable[ObjectDef] = STANDARD) -> list[str]:
    """Every reference to a simulated object points at an existing record of an allowed type."""
    out: list[str] = []
    for obj in objects:
        for f in obj.stored_fields:
            if f.type != "reference":
                continue
            targets = [t for t in f.reference_to if t.lower() in OBJECTS_BY_NAME]
            if not targets:
                continue
            union = " UNION ALL ".join(f"SELECT Id FROM {_q(t)}" for t in targets)
            sql = (
                f"SELECT s.Id FROM {_q(obj.name)} s WHERE s.{_q(f.name)} IS NOT NULL "
                f"AND s.{_q(f.name)} NOT IN ({union}) LIMIT 50"
            )
            out += _violations(con, f"{obj.name}.{f.name} points nowhere", sql)
    return out


def check_ids(con: duckdb.DuckDBPyConnection, objects: Iterable[ObjectDef] = STANDARD) -> list[str]:
    """Ids are unique, carry the object's key prefix and a valid case-safe suffix."""
    out: list[str] = []
    for obj in objects:
        prefix = KEY_PREFIXES[obj.name]
        out += _violations(
            con,
            f"{obj.name}.Id duplicated",
            f"SELECT Id FROM {_q(obj.name)} GROUP BY Id HAVING count(*) > 1 LIMIT 50",
        )
        out += _violations(
            con,
            f"{obj.name}.Id has the wrong prefix or length",
            f"SELECT Id FROM {_q(obj.name)} WHERE length(Id) <> 18 OR Id[1:3] <> '{prefix}' LIMIT 50",
        )
        bad = [r[0] for r in con.execute(f"SELECT Id FROM {_q(obj.name)} USING SAMPLE 200 ROWS").fetchall()
               if not is_valid_id(r[0])]  # fmt: skip
        if bad:
            out.append(f"{obj.name}.Id has an invalid suffix, e.g. {bad[:SAMPLE]}")
    return out


def check_audit_times(con: duckdb.DuckDBPyConnection, objects: Iterable[ObjectDef] = STANDARD) -> list[str]:
    """CreatedDate ≤ LastModifiedDate ≤ SystemModstamp wherever the fields exist."""
    out: list[str] = []
    for obj in objects:
        if obj.has_created_date and obj.has_last_modified:
            cond = "CreatedDate > LastModifiedDate OR LastModifiedDate > SystemModstamp"
        elif obj.has_created_date:
            cond = "CreatedDate > SystemModstamp"
        else:
            cond = "LastModifiedDate > SystemModstamp"
        nulls = " OR SystemModstamp IS NULL"
        out += _violations(con, f"{obj.name} audit times out of order",
                           f"SELECT Id FROM {_q(obj.name)} WHERE {cond}{nulls} LIMIT 50")  # fmt: skip
    return out


def _stage_values() -> str:
    rows = []
    for s in STAGES:
        name = s.name.replace("'", "''")
        rows.append(
            f"('{name}', {s.probability}, '{s.forecast_category}', '{s.forecast_category_name}', "
            f"{str(s.is_closed).lower()}, {str(s.is_won).lower()})"
        )
    return "VALUES " + ", ".join(rows)


def check_derivations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Stage-derived fields match the stage; prices and amounts add up; leads and cases agree."""
    stages = f"(SELECT * FROM ({_stage_values()}) t(name, probability, category, category_name, closed, won))"
    out = _violations(
        con,
        "Opportunity stage-derived fields differ from the stage metadata",
        f"""SELECT o.Id FROM Opportunity o LEFT JOIN {stages} s ON s.name = o.StageName
            WHERE s.name IS NULL OR o.IsClosed <> s.closed OR o.IsWon <> s.won
               OR o.Probability <> s.probability OR o.ForecastCategory <> s.category
               OR o.ForecastCategoryName <> s.category_name
               OR abs(coalesce(o.ExpectedRevenue, 0) - round(coalesce(o.Amount, 0) * o.Probability / 100, 2)) > 0.011
            LIMIT 50""",
    )
    out += _violations(
        con,
        "OpportunityHistory stage-derived fields differ from the stage metadata",
        f"""SELECT h.Id FROM OpportunityHistory h LEFT JOIN {stages} s ON s.name = h.StageName
            WHERE s.name IS NULL OR h.Probability <> s.probability OR h.ForecastCategory <> s.category LIMIT 50""",
    )
    out += _violations(
        con,
        "OpportunityLineItem TotalPrice <> Quantity x UnitPrice",
        "SELECT Id FROM OpportunityLineItem WHERE abs(TotalPrice - round(Quantity * UnitPrice, 2)) > 0.011 LIMIT 50",
    )
    out += _violations(
        con,
        "Opportunity Amount <> sum of its line items' TotalPrice",
        """SELECT o.Id FROM Opportunity o JOIN (
               SELECT OpportunityId, sum(TotalPrice) AS total, count(*) AS n FROM OpportunityLineItem
               WHERE NOT IsDeleted GROUP BY OpportunityId) i ON i.OpportunityId = o.Id
           WHERE NOT o.IsDeleted AND (abs(o.Amount - i.total) > 0.011 * i.n OR NOT o.HasOpportunityLineItem)
           LIMIT 50""",
    )
    out += _violations(
        con,
        "closed Opportunity with CloseDate before CreatedDate",
        "SELECT Id FROM Opportunity WHERE IsClosed AND CloseDate < CAST(CreatedDate AS DATE) LIMIT 50",
    )
    out += _violations(
        con,
        "Lead conversion fields inconsistent",
        """SELECT Id FROM Lead WHERE (IsConverted AND (ConvertedAccountId IS NULL OR ConvertedContactId IS NULL
               OR ConvertedDate IS NULL OR Status <> 'Closed - Converted'))
            OR (NOT IsConverted AND (ConvertedAccountId IS NOT NULL OR ConvertedContactId IS NOT NULL
               OR ConvertedOpportunityId IS NOT NULL OR Status = 'Closed - Converted')) LIMIT 50""",
    )
    out += _violations(
        con,
        "converted Lead whose contact is not at the converted account",
        """SELECT l.Id FROM Lead l JOIN Contact c ON c.Id = l.ConvertedContactId
           WHERE l.IsConverted AND c.AccountId IS DISTINCT FROM l.ConvertedAccountId LIMIT 50""",
    )
    out += _violations(
        con,
        "converted Lead whose opportunity is not at the converted account",
        """SELECT l.Id FROM Lead l JOIN Opportunity o ON o.Id = l.ConvertedOpportunityId
           WHERE l.IsConverted AND o.AccountId IS DISTINCT FROM l.ConvertedAccountId LIMIT 50""",
    )
    out += _violations(
        con,
        "Case IsClosed differs from its status",
        "SELECT Id FROM \"Case\" WHERE IsClosed <> (Status = 'Closed') OR (IsClosed AND ClosedDate IS NULL) LIMIT 50",
    )
    out += _violations(
        con,
        "Task IsClosed differs from its status",
        "SELECT Id FROM Task WHERE IsClosed <> (Status = 'Completed') LIMIT 50",
    )
    out += _violations(
        con,
        "Name differs from FirstName LastName",
        """SELECT Id FROM Contact WHERE Name <> trim(concat_ws(' ', FirstName, LastName))
           UNION ALL SELECT Id FROM Lead WHERE Name <> trim(concat_ws(' ', FirstName, LastName)) LIMIT 50""",
    )
    out += _violations(
        con,
        "child alive while its cascade parent is deleted",
        """SELECT c.Id FROM Contact c JOIN Account a ON a.Id = c.AccountId WHERE a.IsDeleted AND NOT c.IsDeleted
           UNION ALL SELECT o.Id FROM Opportunity o JOIN Account a ON a.Id = o.AccountId
                     WHERE a.IsDeleted AND NOT o.IsDeleted
           UNION ALL SELECT i.Id FROM OpportunityLineItem i JOIN Opportunity o ON o.Id = i.OpportunityId
                     WHERE o.IsDeleted AND NOT i.IsDeleted LIMIT 50""",
    )
    return out


def check_hierarchy(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every user but the top has a manager; role parents form a tree rooted at one role."""
    out = _violations(
        con,
        "role hierarchy has a cycle or several roots",
        """WITH RECURSIVE up(id, parent, depth) AS (
               SELECT Id, ParentRoleId, 0 FROM UserRole
               UNION ALL SELECT up.id, r.ParentRoleId, depth + 1 FROM up JOIN UserRole r ON r.Id = up.parent
               WHERE depth < 50)
           SELECT id FROM up WHERE depth >= 50
           UNION ALL SELECT 'roots' FROM (SELECT count(*) n FROM UserRole WHERE ParentRoleId IS NULL) WHERE n <> 1""",
    )
    out += _violations(
        con,
        "user with a role but no manager (other than the top role's head)",
        """SELECT u.Id FROM "User" u JOIN UserRole r ON r.Id = u.UserRoleId
           WHERE u.ManagerId IS NULL AND r.ParentRoleId IS NOT NULL LIMIT 50""",
    )
    return out


def check_all(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every invariant above."""
    return check_ids(con) + check_references(con) + check_audit_times(con) + check_derivations(con) + (
        check_hierarchy(con)
    )
