import hashlib
from datetime import UTC, datetime

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sfpipe_simulator import checks
from sfpipe_simulator.cli import simulator
from sfpipe_simulator.generator import OrgPlan, iter_batches, write_parquet
from sfpipe_simulator.metadata import OBJECTS, STAGES, STANDARD_OBJECTS

STANDARD = [o for o in OBJECTS if o.name in STANDARD_OBJECTS]


def _digest(folder):
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _views(folder):
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    for obj in STANDARD:
        con.execute(f"CREATE VIEW \"{obj.name}\" AS SELECT * FROM read_parquet('{folder}/{obj.name}/*.parquet')")
    return con


@pytest.fixture(scope="module")
def org_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("org")
    write_parquet(OrgPlan.build(7, 20_000), folder)
    return folder


@pytest.mark.parametrize("scale", [1_000, 1_234, 50_000, 10_000_000])
def test_counts_add_up_to_the_scale(scale):
    plan = OrgPlan.build(3, scale)
    assert sum(plan.counts.values()) == scale
    assert set(plan.counts) == {o.name for o in OBJECTS}
    assert plan.objects == STANDARD_OBJECTS and plan.counts["Wide__c"] == 0
    assert all(plan.counts[n] > 0 for n in plan.objects)
    assert plan.counts["Contact"] > plan.counts["Account"] > plan.counts["User"]


def test_scale_out_of_range_is_refused():
    with pytest.raises(ValueError, match="between 1,000 and 10,000,000"):
        OrgPlan.build(1, 999)


def test_same_seed_and_scale_give_identical_bytes(tmp_path):
    write_parquet(OrgPlan.build(11, 5_000), tmp_path / "a")
    write_parquet(OrgPlan.build(11, 5_000), tmp_path / "b")
    write_parquet(OrgPlan.build(12, 5_000), tmp_path / "c")
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert len(a) == len(STANDARD) + 1
    assert a["Account/part-00000.parquet"] != c["Account/part-00000.parquet"]


def test_chunks_are_independent_of_chunk_size():
    plan = OrgPlan.build(5, 3_000)
    obj = next(o for o in OBJECTS if o.name == "Opportunity")
    whole = next(iter_batches(plan, obj, chunk_rows=10_000))
    pieces = list(iter_batches(plan, obj, chunk_rows=37))
    joined = [r for batch in pieces for r in batch.to_pylist()]
    assert joined == whole.to_pylist()


def test_parquet_schema_is_describe(org_dir):
    for obj in STANDARD:
        schema = pq.read_schema(org_dir / obj.name / "part-00000.parquet")
        assert schema.names == [f.name for f in obj.stored_fields]
        assert schema.remove_metadata() == obj.arrow_schema()


def test_generated_org_keeps_every_invariant(org_dir):
    con = _views(org_dir)
    assert checks.check_all(con) == []


def test_checks_do_catch_a_broken_org(org_dir):
    con = _views(org_dir)
    con.execute("CREATE TABLE broken AS SELECT * FROM Opportunity")
    con.execute("UPDATE broken SET IsWon = NOT IsWon WHERE Id = (SELECT min(Id) FROM broken)")
    con.execute("UPDATE broken SET AccountId = '001000000000000AAA' WHERE Id = (SELECT max(Id) FROM broken)")
    con.execute("DROP VIEW Opportunity")
    con.execute("ALTER TABLE broken RENAME TO Opportunity")
    problems = checks.check_derivations(con) + checks.check_references(con)
    assert any("stage-derived" in p for p in problems)
    assert any("Opportunity.AccountId points nowhere" in p for p in problems)


def test_every_stage_and_soft_deletes_occur(org_dir):
    con = _views(org_dir)
    stages = {r[0] for r in con.execute("SELECT DISTINCT StageName FROM Opportunity").fetchall()}
    assert stages == {s.name for s in STAGES}
    deleted, recent = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE SystemModstamp >= TIMESTAMPTZ '2025-12-17 00:00:00+00') "
        "FROM Account WHERE IsDeleted"
    ).fetchone()
    assert deleted > 0 and deleted == recent  # recycle bin: deleted within 15 days of as_of
    converted = con.execute("SELECT count(*) FROM Lead WHERE IsConverted").fetchone()[0]
    assert converted > 0
    polymorphic = con.execute("SELECT count(DISTINCT WhoId[1:3]) FROM Task WHERE WhoId IS NOT NULL").fetchone()[0]
    assert polymorphic == 2  # contacts and leads


def test_history_ends_at_as_of(org_dir):
    con = _views(org_dir)
    latest = con.execute("SELECT max(SystemModstamp) FROM Account").fetchone()[0]
    assert latest < datetime(2026, 1, 1, tzinfo=UTC)


def test_amounts_are_lognormal_like(org_dir):
    con = _views(org_dir)
    median, mean = con.execute(
        "SELECT median(Amount), avg(Amount) FROM Opportunity WHERE NOT HasOpportunityLineItem"
    ).fetchone()
    assert 10_000 < median < 50_000
    assert mean > median  # right-skewed


def test_cli_generate_writes_the_org(tmp_path):
    result = CliRunner().invoke(simulator, ["generate", "--seed", "3", "--scale", "2000", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "wrote 2,000 records of 17 objects" in result.output
    assert (tmp_path / "_org.json").exists()
    rows = sum(pq.read_metadata(p).num_rows for p in tmp_path.rglob("*.parquet"))
    assert rows == 2_000


def test_cli_rejects_bad_scale(tmp_path):
    result = CliRunner().invoke(simulator, ["generate", "--scale", "12", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "12 is not in the range" in result.output


def test_per_object_counts_replace_the_share_and_keep_references(tmp_path):
    plan = OrgPlan.build(4, 2_000, counts={"opportunity": 900, "Wide__c": 40})
    default = OrgPlan.build(4, 2_000)
    assert plan.counts["Opportunity"] == 900 and plan.counts["Wide__c"] == 40
    assert {k: v for k, v in plan.counts.items() if k not in ("Opportunity", "Wide__c")} == {
        k: v for k, v in default.counts.items() if k not in ("Opportunity", "Wide__c")
    }
    assert "Wide__c" in plan.objects
    write_parquet(plan, tmp_path / "org")
    con = _views(tmp_path / "org")
    wide = next(o for o in OBJECTS if o.name == "Wide__c")
    con.execute(f"CREATE VIEW \"Wide__c\" AS SELECT * FROM read_parquet('{tmp_path}/org/Wide__c/*.parquet')")
    assert checks.check_all(con) == []
    assert checks.check_references(con, [wide]) == [] and checks.check_ids(con, [wide]) == []
    assert con.execute('SELECT count(*) FROM "Opportunity"').fetchone()[0] == 900
    assert pq.read_schema(tmp_path / "org" / "Wide__c" / "part-00000.parquet").names == [f.name for f in wide.stored_fields]
    assert len(wide.stored_fields) > 800


def test_counts_are_checked():
    from sfpipe_simulator.generator import parse_counts

    assert parse_counts(["Opportunity=1_000", "Wide__c=5,Account=7"]) == {"Opportunity": 1000, "Wide__c": 5, "Account": 7}
    for bad in ("Opportunity", "Nope=3", "Opportunity=-1", "Opportunity=x"):
        with pytest.raises(ValueError, match="counts"):
            parse_counts(bad)


def test_formula_field_shows_the_accounts_industry(org_dir):
    con = _views(org_dir)
    differ = con.execute(
        'SELECT count(*) FROM "Opportunity" o JOIN "Account" a ON a.Id = o.AccountId '
        "WHERE o.Account_Industry__c IS DISTINCT FROM a.Industry"
    ).fetchone()[0]
    assert differ == 0
    assert con.execute('SELECT count(DISTINCT Account_Industry__c) FROM "Opportunity"').fetchone()[0] > 5
