"""Live activity, the change log, the admin API and the truth export."""

import time

import pytest
import requests

from sfpipe_simulator import checks
from sfpipe_simulator.server import Simulator, SimulatorConfig
from sfpipe_simulator.store import RETENTION

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """A small org after 400 live changes."""
    with Simulator(SimulatorConfig(seed=11, scale=3_000, data_dir=tmp_path_factory.mktemp("busy"))) as sim:
        sim.runtime.activity.apply(400)
        yield sim


def test_activity_keeps_every_invariant(busy):
    with busy.store.reader() as cur:
        assert checks.check_all(cur) == []


def test_activity_makes_every_kind_of_change(busy):
    applied = busy.runtime.activity.status()["applied"]
    for kind in ("create_account", "advance_stage", "convert_lead", "delete_record", "change_amount"):
        assert applied.get(kind, 0) > 0, kind
    events = busy.store.changes.read(0, 100_000)
    assert {e.change_type for e in events} == {"CREATE", "UPDATE", "DELETE", "UNDELETE"}
    assert {"Account", "Contact", "Lead", "Opportunity", "OpportunityHistory"} <= {e.entity for e in events}


def test_change_log_is_ordered_and_complete(busy):
    events = busy.store.changes.read(0, 100_000)
    replay = [e.replay_id for e in events]
    assert replay == list(range(replay[0], replay[0] + len(replay)))
    commits = [e.commit_number for e in events]
    assert commits == sorted(commits)
    for commit in set(commits):
        group = [e for e in events if e.commit_number == commit]
        assert len({e.transaction_key for e in group}) == 1
        assert [e.sequence_number for e in group] == list(range(1, len(group) + 1))
    stamps = [e.commit_timestamp for e in events]
    assert stamps == sorted(stamps)
    with busy.store.reader() as cur:
        for event in events[-50:]:
            if event.change_type == "UPDATE" and event.entity == "Opportunity":
                modstamp = cur.execute("SELECT SystemModstamp FROM Opportunity WHERE Id = ?",
                                       [event.record_ids[0]]).fetchone()[0]
                assert modstamp >= event.commit_timestamp.replace(tzinfo=None, microsecond=0)


def test_lead_conversion_is_one_transaction(busy):
    events = busy.store.changes.read(0, 100_000)
    converted = [e for e in events if e.entity == "Lead" and "ConvertedAccountId" in e.changed_fields]
    assert converted
    lead_event = converted[0]
    same = [e for e in events if e.commit_number == lead_event.commit_number]
    kinds = {(e.entity, e.change_type) for e in same}
    assert {("Account", "CREATE"), ("Contact", "CREATE"), ("Lead", "UPDATE")} <= kinds
    assert lead_event.values["ConvertedAccountId"] in {e.record_ids[0] for e in same if e.entity == "Account"}


def test_stage_change_updates_derived_fields_and_history(busy):
    events = busy.store.changes.read(0, 100_000)
    stage_events = [e for e in events if e.entity == "Opportunity" and "StageName" in e.changed_fields]
    assert stage_events
    event = stage_events[-1]
    assert {"Probability", "LastModifiedDate"} <= set(event.changed_fields)
    history = [e for e in events if e.commit_number == event.commit_number and e.entity == "OpportunityHistory"]
    assert history and history[0].values["StageName"] == event.values["StageName"]


def test_read_from_a_position_and_wait(busy):
    log = busy.store.changes
    latest = log.latest()
    assert log.read(latest) == []
    assert [e.replay_id for e in log.read(latest - 5, limit=3)] == [latest - 4, latest - 3, latest - 2]
    only = log.read(0, 10_000, entities={"Case"})
    assert only and {e.entity for e in only} == {"Case"}
    assert log.wait(latest, timeout=0.05) is False
    busy.runtime.activity.apply(1)
    assert log.wait(latest, timeout=1) is True


def test_same_seed_same_changes(tmp_path):
    from sfpipe_simulator.metadata import get_object

    def untimed(event):
        # datetime fields change or not depending on whether two writes fall in the same second
        obj = get_object(event.entity)
        return tuple(f for f in event.changed_fields if obj.field(f).type != "datetime")

    def run(folder):
        with Simulator(SimulatorConfig(seed=5, scale=1_000, data_dir=folder)) as sim:
            sim.runtime.activity.apply(60)
            return [(e.entity, e.change_type, e.record_ids, untimed(e)) for e in sim.store.changes.read(0, 10_000)]

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    assert first == second and len(first) >= 60


def test_retention_drops_changes_older_than_72_hours(tmp_path):
    with Simulator(SimulatorConfig(seed=2, scale=1_000, data_dir=tmp_path)) as sim:
        sim.runtime.activity.apply(10)
        latest = sim.store.changes.latest()
        sim.admin.advance_clock(RETENTION.total_seconds() - 60)
        assert sim.store.changes.earliest() == 1
        result = sim.admin.advance_clock(120)
        assert result["purged_changes"] == latest
        assert sim.store.changes.earliest() == latest + 1
        assert sim.store.changes.read(0) == []
        sim.runtime.activity.apply(1)
        assert sim.store.changes.read(0)[0].replay_id == latest + 1


def test_background_activity_through_the_admin_api(sim):
    admin = sim.admin
    before = admin.status()["changes"]["latest"]
    state = admin.start_activity(40)
    assert state["running"] is True and state["rate"] == 40
    time.sleep(1.0)
    stopped = admin.stop_activity()
    assert stopped["running"] is False
    page = admin.changes(after=before, limit=5)
    assert len(page["events"]) == 5 and page["events"][0]["replay_id"] == before + 1
    everything = list(admin.iter_changes(after=before, page=7))
    assert [e["replay_id"] for e in everything] == list(range(before + 1, page["latest"] + 1))
    applied = admin.apply_changes(5)
    assert sum(applied["applied_now"].values()) == 5 and applied["latest"] > page["latest"]


def test_admin_api_needs_the_token(sim):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {sim.login()}"}):
        response = requests.get(f"{sim.url}/admin/status", headers=headers, verify=sim.verify, timeout=10)
        assert response.status_code == 401 and response.json()[0]["errorCode"] == "INVALID_ADMIN_TOKEN"
    response = requests.post(f"{sim.url}/admin/activity/start", json={"rate": -1}, verify=sim.verify, timeout=10,
                             headers={"Authorization": "Bearer sfpipe-admin"})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "INVALID_ADMIN_REQUEST"
    for path, params in [("/admin/changes", {"after": "x"}), ("/admin/changes", {"limit": "0"}),
                         ("/admin/changes", {"entities": "Nope"}), ("/admin/truth/Nope", {}),
                         ("/admin/truth", {"format": "xlsx"})]:
        response = requests.get(sim.url + path, params=params, verify=sim.verify, timeout=10,
                                headers={"Authorization": "Bearer sfpipe-admin"})
        assert 400 <= response.status_code < 500 and "errorCode" in response.json()[0], path


def test_truth_export_matches_the_store(busy, tmp_path):
    manifest = busy.admin.export_truth(tmp_path)
    assert manifest["replay_id"] == busy.store.changes.latest()
    import pyarrow.parquet as pq

    for name, rows in manifest["rows"].items():
        table = pq.read_table(tmp_path / f"{name}.parquet")
        assert table.num_rows == rows == busy.store.count(name)
    accounts = pq.read_table(tmp_path / "Account.parquet")
    assert accounts.schema.field("SystemModstamp").type.tz == "UTC"
    assert True in accounts.column("IsDeleted").to_pylist()
    one, replay = busy.admin.truth("Opportunity")
    assert one.num_rows == busy.store.count("Opportunity") and replay == manifest["replay_id"]
    assert one.column("Id").to_pylist() == sorted(one.column("Id").to_pylist())


def test_truth_export_is_one_consistent_snapshot(tmp_path):
    with Simulator(SimulatorConfig(seed=3, scale=2_000, data_dir=tmp_path / "d")) as sim:
        sim.runtime.activity.start(100)
        try:
            manifest = sim.admin.export_truth(tmp_path / "truth")
        finally:
            sim.runtime.activity.stop()
        replay = manifest["replay_id"]
        import duckdb

        con = duckdb.connect()
        for name in manifest["rows"]:
            con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM '{tmp_path / 'truth' / name}.parquet'")
        assert checks.check_references(con) == []
        assert checks.check_derivations(con) == []
        created = {e.record_ids[0] for e in sim.store.changes.read(0, 100_000) if e.change_type == "CREATE"
                   and e.replay_id <= replay and e.entity == "Account"}
        later = {e.record_ids[0] for e in sim.store.changes.read(replay, 100_000) if e.change_type == "CREATE"
                 and e.entity == "Account"}
        exported = set(con.execute('SELECT Id FROM "Account"').fetchall()[i][0] for i in range(manifest["rows"]["Account"]))
        assert created <= exported and exported.isdisjoint(later)
