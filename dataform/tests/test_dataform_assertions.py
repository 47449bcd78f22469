"""A deliberately broken raw row makes the right assertion fail, and only that one."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sfpipe_transform.rawschema import RawContract
from sfpipe_transform.seed import load_folder

ASSERTIONS = "sfpipe_assertions"


def edit_csv(path: Path, row_id: str, changes: dict[str, str], *, duplicate: bool = False) -> None:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    fields = list(rows[0])
    target = next(r for r in rows if r["Id"] == row_id)
    if duplicate:
        rows.append({**target, **changes})
    else:
        target.update(changes)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


BROKEN = [
    pytest.param(
        "opportunity.csv",
        "O3",
        {"Probability": "150"},
        False,
        "sfpipe_staging_stg_salesforce__opportunity_assertions_rowConditions",
        "probability IS NULL OR probability BETWEEN 0 AND 100",
        id="probability-out-of-range",
    ),
    pytest.param(
        "opportunity.csv",
        "O8",
        {"IsWon": "true"},
        False,
        "sfpipe_staging_stg_salesforce__opportunity_assertions_rowConditions",
        "NOT (is_won AND NOT is_closed)",
        id="won-but-open",
    ),
    pytest.param(
        "account.csv",
        "A1",
        {"Name": "Acme again"},
        True,
        "sfpipe_staging_stg_salesforce__account_assertions_uniqueKey_0",
        "account_id",
        id="duplicate-account-id",
    ),
    pytest.param(
        "user.csv",
        "U4",
        {"ManagerId": "U4"},
        False,
        "sfpipe_staging_stg_salesforce__user_assertions_rowConditions",
        "manager_id IS NULL OR manager_id <> user_id",
        id="own-manager",
    ),
    pytest.param(
        "lead.csv",
        "L1",
        {"ConvertedDate": "2024-05-03"},
        False,
        "sfpipe_staging_stg_salesforce__lead_assertions_rowConditions",
        "converted_date IS NULL OR is_converted",
        id="converted-date-without-conversion",
    ),
    pytest.param(
        "product2.csv",
        "P1",
        {"Name": ""},
        False,
        "sfpipe_staging_stg_salesforce__product_2_assertions_rowConditions",
        "product_2_name IS NOT NULL",
        id="product-without-name",
    ),
]


@pytest.mark.parametrize(("file", "row_id", "changes", "duplicate", "assertion", "condition"), BROKEN)
def test_broken_row_fails_its_assertion(
    golden_raw: Path,
    make_warehouse,
    project_dir: Path,
    contract: RawContract,
    run_transform,
    loaded_at,
    file: str,
    row_id: str,
    changes: dict[str, str],
    duplicate: bool,
    assertion: str,
    condition: str,
) -> None:
    edit_csv(golden_raw / file, row_id, changes, duplicate=duplicate)
    wh = make_warehouse()
    load_folder(wh, contract, golden_raw, ingested_at=loaded_at)
    result = run_transform(wh, project_dir)

    assert not result.succeeded
    failed = result.failed_actions
    assert [a.name for a in failed] == [f"{ASSERTIONS}.{assertion}"], result.reason
    assert condition in (failed[0].error or "")
    assert failed[0].error.startswith("1 row(s) violate it") or failed[0].error.startswith("2 row(s)")
    assert assertion in result.reason
    # the model itself was built; what reads it is held back, with the last good marts untouched
    statuses = {a.name: a.status for a in result.actions}
    parent = "sfpipe_staging." + assertion.split("_assertions_")[0].removeprefix("sfpipe_staging_")
    assert statuses[parent] == "succeeded"
    assert "skipped" in statuses.values()
    assert all(statuses[n] == "succeeded" for n in statuses if n.startswith("sfpipe_staging.stg_") and n != parent)


def test_assertion_failure_keeps_the_last_good_marts(
    golden_raw: Path, make_warehouse, project_dir: Path, contract: RawContract, run_transform, loaded_at
) -> None:
    wh = make_warehouse()
    load_folder(wh, contract, golden_raw, ingested_at=loaded_at)
    assert run_transform(wh, project_dir).succeeded
    before = wh.query("SELECT * FROM sfpipe_marts.salesforce__sales_snapshot").to_pylist()

    edit_csv(golden_raw / "opportunity.csv", "O3", {"Probability": "150", "Amount": "999999.00"})
    load_folder(wh, contract, golden_raw, ingested_at=loaded_at)
    result = run_transform(wh, project_dir)

    assert not result.succeeded
    statuses = {a.name: a.status for a in result.actions}
    assert statuses["sfpipe_marts.salesforce__sales_snapshot"] == "skipped"
    assert wh.query("SELECT * FROM sfpipe_marts.salesforce__sales_snapshot").to_pylist() == before
    violations = wh.query(
        f"SELECT * FROM {ASSERTIONS}.sfpipe_staging_stg_salesforce__opportunity_assertions_rowConditions"
    ).to_pylist()
    assert [v["opportunity_id"] for v in violations] == ["O3"]
