"""The Dataform project itself: it compiles offline from a clean clone, and its contract holds."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe_transform.compiler import CompiledGraph
from sfpipe_transform.rawschema import RawContract

STAGING = {
    "account",
    "opportunity",
    "user",
    "user_role",
    "contact",
    "lead",
    "task",
    "event",
    "opportunity_line_item",
    "product_2",
    "order",
    "campaign",
}
MARTS = {
    "salesforce__opportunity_enhanced",
    "salesforce__sales_snapshot",
    "salesforce__owner_performance",
    "salesforce__manager_performance",
    "salesforce__contact_enhanced",
    "salesforce__daily_activity",
    "salesforce__opportunity_line_item_enhanced",
    "salesforce__opportunity_daily_history",
}


def tracked_files(project_dir: Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "."],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in out if (project_dir / f).exists()]


@pytest.mark.slow
def test_compile_offline_from_a_clean_clone(project_dir: Path, tmp_path: Path) -> None:
    """Only the files git knows, `npm ci`, then `dataform compile` with no network."""
    clone = tmp_path / "dataform"
    files = tracked_files(project_dir)
    assert "package-lock.json" in files and "workflow_settings.yaml" in files
    assert not any(f.startswith("node_modules/") for f in files)
    for name in files:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project_dir / name, clone / name)
    settings = yaml.safe_load((clone / "workflow_settings.yaml").read_text())
    assert "dataformCoreVersion" not in settings
    assert json.loads((clone / "package.json").read_text())["dependencies"]["@dataform/core"] == "3.0.62"

    # npm ci may reach the registry (as `make npm` does); the compile must not need any network
    subprocess.run(["npm", "ci", "--prefer-offline", "--loglevel=error"], cwd=clone, check=True, timeout=600)
    compile_cmd = [str(clone / "node_modules" / ".bin" / "dataform"), "compile", "--json", "--vars=as_of=2024-05-15"]
    if os.geteuid() == 0 and shutil.which("unshare"):
        compile_cmd = ["unshare", "--net", *compile_cmd]  # a network namespace with no interface at all
    proc = subprocess.run(compile_cmd, cwd=clone, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    graph = CompiledGraph.from_json(json.loads(proc.stdout))
    assert {a.target.table for a in graph.actions.values() if a.kind in ("table", "incremental")} >= MARTS


def test_every_model_is_there_with_its_assertions(compiled: CompiledGraph) -> None:
    tables = {a.target.table: a for a in compiled.actions.values() if a.kind in ("table", "incremental")}
    assert {f"stg_salesforce__{s}" for s in STAGING} <= set(tables)
    assert set(tables) >= MARTS
    for action in tables.values():
        expected = "sfpipe_staging" if action.target.table.startswith(("stg_", "int_")) else "sfpipe_marts"
        assert action.target.dataset == expected
        checks = {
            a.target.table.rsplit("_assertions_", 1)[1] for a in compiled.actions.values() if a.parent == action.name
        }
        assert {"uniqueKey_0", "rowConditions"} <= checks, action.name


def test_raw_layer_is_declared_not_built(compiled: CompiledGraph, contract: RawContract) -> None:
    declared = {a.target for a in compiled.actions.values() if a.kind == "declaration"}
    assert declared == {TableRef("sfpipe_raw", t) for t in contract.tables()}


def test_large_tables_are_partitioned_and_clustered(compiled: CompiledGraph) -> None:
    by_table = {a.target.table: a for a in compiled.actions.values()}
    history = by_table["salesforce__opportunity_daily_history"]
    assert history.kind == "incremental"
    assert history.partition_by == "date_day" and history.cluster_by == ("opportunity_id",)
    assert history.unique_key == ("opportunity_id", "date_day")
    assert any("DELETE FROM" in op for op in history.incremental_pre_ops)
    for name in (
        "stg_salesforce__task",
        "stg_salesforce__event",
        "stg_salesforce__opportunity",
        "salesforce__opportunity_enhanced",
    ):
        assert by_table[name].partition_by and by_table[name].cluster_by, name


def test_as_of_makes_the_project_deterministic(project_dir: Path, compiled: CompiledGraph) -> None:
    sql = "\n".join(a.query for a in compiled.actions.values())
    assert "DATE '2024-05-15'" in sql
    assert "CURRENT_DATE" not in sql and "CURRENT_TIMESTAMP" not in sql


def test_as_of_must_be_a_date(project_dir: Path) -> None:
    from sfpipe.errors import BadInputError
    from sfpipe_transform.compiler import DataformCli

    with pytest.raises(BadInputError, match="as_of must be a date"):
        DataformCli(project_dir).compile({"as_of": "last-tuesday"})


def test_required_raw_columns_are_exactly_what_the_project_reads(
    compiled: CompiledGraph, contract: RawContract, make_warehouse, project_dir: Path, run_transform
) -> None:
    """Each listed column is read by the SQL, and the project runs on tables with only those columns."""
    readers: dict[str, str] = {}
    for action in compiled.actions.values():
        for dep in action.dependencies:
            if dep.startswith("sfpipe_raw."):
                readers[dep.split(".", 1)[1]] = readers.get(dep.split(".", 1)[1], "") + "\n" + action.query
                readers[dep.split(".", 1)[1]] += "\n".join(action.pre_ops + action.incremental_pre_ops)
    for table, schema in contract.tables().items():
        listed = contract.change_logs[table][1] if table in contract.change_logs else schema.names
        unused = [c for c in listed if c not in contract.metadata and not re.search(rf"\b{c}\b", readers[table])]
        assert not unused, f"{table}: listed but never read: {unused}"

    wh = make_warehouse()
    for table, schema in contract.tables().items():
        wh.create_table(TableRef("sfpipe_raw", table), schema)
    result = run_transform(wh, project_dir)
    assert result.succeeded, result.reason
