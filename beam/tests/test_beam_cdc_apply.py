"""Changes applied to the raw layer on DuckDB: partial updates, version order, batch and CDC together,
deletes, duplicates and any delivery order."""

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from sfpipe.raw import RawLayer
from sfpipe_beam.cdc.apply import CdcApplier
from sfpipe_beam.cdc.changes import Change

RUN = "20260301T000000Z-0a1b2c3d"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TYPES = {"Name": "string", "Rating": "picklist", "AnnualRevenue": "currency", "FirstName": "string",
         "LastName": "string", "Title": "string", "IsDeleted": "boolean", "SystemModstamp": "datetime",
         "LastModifiedDate": "datetime", "LastModifiedById": "reference"}  # fmt: skip


def ch(entity, rid, kind, ms, cn, values=None, fields=(), seq=1, user="005U"):
    values = values or {}
    # a full row names its whole schema (as the cdc-publisher does); a partial one what it carries
    schema = [k for k in TYPES if entity == "Contact" or k not in ("FirstName", "LastName")]
    names = schema if kind in ("CREATE", "UNDELETE") else (*values, "IsDeleted", "SystemModstamp", "LastModifiedDate",
                                                           "LastModifiedById")  # fmt: skip
    types = {k: TYPES.get(k, "string") for k in names}
    return Change(entity, rid, kind, T0 + timedelta(milliseconds=ms), cn, seq, values, tuple(fields), types, user,
                  f"{cn}.{seq}.{rid}")  # fmt: skip


def rows(wh, table, cols):
    sql = f"SELECT {', '.join('`' + c + '`' for c in cols)} FROM sfpipe_raw.{table} ORDER BY `Id`"
    return wh.query(sql).to_pylist()


@pytest.fixture
def batch_loaded(duckdb_warehouse):
    table = pa.table({
        "Id": ["001A", "001B"], "Name": ["Acme", "Beta"], "Rating": ["Hot", "Cold"],
        "AnnualRevenue": [100.0, 200.0], "IsDeleted": [False, False],
        "SystemModstamp": [T0, T0], "LastModifiedDate": [T0, T0], "LastModifiedById": ["005X", "005X"],
    })  # fmt: skip
    RawLayer(duckdb_warehouse).apply_arrow("Account", table, source="batch", run_id=RUN)
    return duckdb_warehouse


def test_an_update_sets_only_its_columns(batch_loaded):
    wh = batch_loaded
    CdcApplier(wh).apply([ch("Account", "001A", "UPDATE", 1500, 10, {"Rating": "Warm"}, ["Rating"])], run_id=RUN)
    got = rows(wh, "account", ["Id", "Name", "Rating", "AnnualRevenue", "SystemModstamp", "_source", "_version",
                               "_commit_number"])  # fmt: skip
    assert got[0]["Name"] == "Acme" and got[0]["Rating"] == "Warm" and got[0]["AnnualRevenue"] == 100.0
    assert got[0]["SystemModstamp"] == T0 + timedelta(seconds=1)
    assert got[0]["_source"] == "cdc" and got[0]["_commit_number"] == 10
    assert got[0]["_version"] == T0 + timedelta(milliseconds=1500)
    assert got[1]["_source"] == "batch" and got[1]["Rating"] == "Cold"


def test_older_changes_never_overwrite_newer_ones(batch_loaded):
    wh = batch_loaded
    applier = CdcApplier(wh)
    applier.apply([ch("Account", "001A", "UPDATE", 2000, 11, {"Rating": "Cold"}, ["Rating"])], run_id=RUN)
    applier.apply([ch("Account", "001A", "UPDATE", 1000, 10, {"Rating": "Warm", "Name": "Acme Old"},
                      ["Rating", "Name"])], run_id=RUN)  # fmt: skip
    (row,) = [r for r in rows(wh, "account", ["Id", "Name", "Rating", "_commit_number"]) if r["Id"] == "001A"]
    # the late change still sets the column nobody changed after it, but not the one a newer change set
    assert row["Rating"] == "Cold" and row["Name"] == "Acme Old" and row["_commit_number"] == 11


def test_a_batch_row_from_a_later_second_beats_cdc_and_one_from_the_same_second_does_not(batch_loaded):
    wh = batch_loaded
    applier = CdcApplier(wh)
    applier.apply([ch("Account", "001A", "UPDATE", 3400, 12, {"Rating": "Warm"}, ["Rating"])], run_id=RUN)
    later = pa.table({"Id": ["001A"], "Name": ["Acme"], "Rating": ["Cold"], "AnnualRevenue": [150.0],
                      "IsDeleted": [False], "SystemModstamp": [T0 + timedelta(seconds=4)],
                      "LastModifiedDate": [T0], "LastModifiedById": ["005X"]})  # fmt: skip
    RawLayer(wh).apply_arrow("Account", later, source="batch", run_id=RUN)
    assert rows(wh, "account", ["Rating", "_source"])[0] == {"Rating": "Cold", "_source": "batch"}
    # a CDC change from before the batch row's second loses; one after it wins
    applier.apply([ch("Account", "001A", "UPDATE", 3900, 13, {"Rating": "Warm"}, ["Rating"])], run_id=RUN)
    assert rows(wh, "account", ["Rating", "AnnualRevenue"])[0] == {"Rating": "Cold", "AnnualRevenue": 150.0}
    applier.apply([ch("Account", "001A", "UPDATE", 4000, 14, {"Rating": "Hot"}, ["Rating"])], run_id=RUN)
    assert rows(wh, "account", ["Rating", "AnnualRevenue"])[0] == {"Rating": "Hot", "AnnualRevenue": 150.0}
    same = later.set_column(5, "SystemModstamp", pa.array([T0 + timedelta(seconds=4)], pa.timestamp("us", tz="UTC")))
    RawLayer(wh).apply_arrow("Account", same.set_column(2, "Rating", pa.array(["Cold"])), source="batch", run_id=RUN)
    assert rows(wh, "account", ["Rating"])[0] == {"Rating": "Hot"}


def test_delete_and_undelete(batch_loaded):
    wh = batch_loaded
    applier = CdcApplier(wh)
    applier.apply([ch("Account", "001B", "DELETE", 5250, 20, user="005D")], run_id=RUN)
    row = rows(wh, "account", ["Id", "Name", "IsDeleted", "_hard_deleted", "SystemModstamp", "LastModifiedById"])[1]
    assert row == {"Id": "001B", "Name": "Beta", "IsDeleted": True, "_hard_deleted": False,
                   "SystemModstamp": T0 + timedelta(seconds=5), "LastModifiedById": "005D"}  # fmt: skip
    applier.apply([ch("Account", "001B", "UNDELETE", 6000, 21, {"Id": "001B", "Name": "Beta", "Rating": "Cold"})],
                  run_id=RUN)  # fmt: skip
    row = rows(wh, "account", ["Id", "Name", "Rating", "AnnualRevenue", "IsDeleted", "_hard_deleted"])[1]
    # a full row: what it does not carry is null
    assert row == {"Id": "001B", "Name": "Beta", "Rating": "Cold", "AnnualRevenue": None, "IsDeleted": False,
                   "_hard_deleted": False}  # fmt: skip


def test_create_of_a_new_record_and_the_change_log(batch_loaded):
    wh = batch_loaded
    result = CdcApplier(wh).apply([
        ch("Account", "001C", "CREATE", 700, 30, {"Id": "001C", "Name": "Gamma", "AnnualRevenue": 5.5}),
        ch("Account", "001C", "UPDATE", 800, 31, {"Rating": "Hot"}, ["Rating"]),
    ], run_id=RUN)  # fmt: skip
    assert result.objects == {"Account": 1} and len(result.lag_ms) == 2
    row = rows(wh, "account", ["Id", "Name", "Rating", "AnnualRevenue", "IsDeleted", "_commit_number"])[2]
    assert row == {"Id": "001C", "Name": "Gamma", "Rating": "Hot", "AnnualRevenue": 5.5, "IsDeleted": False,
                   "_commit_number": 31}  # fmt: skip
    logged = wh.query("SELECT `Id`, `Rating`, `_source`, `_source_file` FROM sfpipe_raw.account__changes "
                      "WHERE `_source` = 'cdc'").to_pylist()  # fmt: skip
    assert logged == [{"Id": "001C", "Rating": "Hot", "_source": "cdc", "_source_file": "pubsub://sfpipe-cdc"}]
    lag = wh.query("SELECT entity, record_id, lag_ms FROM sfpipe_ops.cdc_lag").to_pylist()
    assert len(lag) == 2 and all(r["entity"] == "Account" and r["lag_ms"] > 0 for r in lag)


def test_person_names_are_derived_from_their_parts(duckdb_warehouse):
    wh = duckdb_warehouse
    applier = CdcApplier(wh)
    applier.apply([ch("Contact", "003A", "CREATE", 100, 1, {"Id": "003A", "FirstName": "Ada", "LastName": "Berg"})],
                  run_id=RUN)  # fmt: skip
    assert rows(wh, "contact", ["Name"]) == [{"Name": "Ada Berg"}]
    applier.apply([ch("Contact", "003A", "UPDATE", 200, 2, {"LastName": "Costa"}, ["LastName"])], run_id=RUN)
    assert rows(wh, "contact", ["Name", "FirstName"]) == [{"Name": "Ada Costa", "FirstName": "Ada"}]
    applier.apply([ch("Contact", "003A", "UPDATE", 300, 3, {"FirstName": None}, ["FirstName"])], run_id=RUN)
    assert rows(wh, "contact", ["Name"]) == [{"Name": "Costa"}]


def test_objects_without_deletion_flags_get_none(duckdb_warehouse):
    wh = duckdb_warehouse
    change = Change("User", "005A", "CREATE", T0, 1, 1, {"Id": "005A", "Username": "a@b.c"},
                    field_types={"Username": "string", "SystemModstamp": "datetime"})  # fmt: skip
    CdcApplier(wh).apply([change], run_id=RUN)
    names = wh.table_schema(__import__("sfpipe.raw", fromlist=["raw_ref"]).raw_ref("User")).names
    assert "IsDeleted" not in names and "SystemModstamp" in names and "_hard_deleted" in names


def _history(rng, records=6, steps=90):
    """A random but valid history: creates, partial updates (some nulling), deletes, undeletes."""
    out, alive, made = [], {}, set()
    fields = ["Name", "Rating", "AnnualRevenue", "Title"]
    for step in range(steps):
        cn = step + 1
        rid = f"001{rng.randrange(records):02d}"
        ms = step * 37
        if rid not in made:
            values = {"Id": rid, "Name": f"n{step}", "Rating": rng.choice(["Hot", "Cold"]), "AnnualRevenue": float(step)}
            out.append(ch("Account", rid, "CREATE", ms, cn, values))
            made.add(rid)
            alive[rid] = True
        elif alive[rid] and rng.random() < 0.1:
            out.append(ch("Account", rid, "DELETE", ms, cn))
            alive[rid] = False
        elif not alive[rid]:
            out.append(ch("Account", rid, "UNDELETE", ms, cn, {"Id": rid, "Name": f"u{step}", "Title": "Back"}))
            alive[rid] = True
        else:
            chosen = rng.sample(fields, rng.randint(1, 3))
            values = {f: (None if rng.random() < 0.2 else (float(step) if f == "AnnualRevenue" else f"{f}{step}"))
                      for f in chosen}  # fmt: skip
            out.append(ch("Account", rid, "UPDATE", ms, cn, values, chosen, seq=1))
            if rng.random() < 0.3:  # a second change of the same record in the same transaction
                out.append(ch("Account", rid, "UPDATE", ms, cn, {"Title": f"t{step}"}, ["Title"], seq=2))
    return out


COLUMNS = ["Id", "Name", "Rating", "AnnualRevenue", "Title", "IsDeleted", "SystemModstamp", "LastModifiedDate",
           "LastModifiedById", "_hard_deleted", "_version", "_commit_number"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_delivery_order_with_duplicates_gives_the_in_order_result(tmp_path, seed):
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession

    rng = random.Random(seed)
    history = _history(rng)
    ordered = DuckDBWarehouse(EmbeddedSession(tmp_path / "ordered.duckdb"), scratch=tmp_path / "s1")
    applier = CdcApplier(ordered)
    for change in history:
        applier.apply([change], run_id=RUN)
    expected = rows(ordered, "account", COLUMNS)
    shuffled = DuckDBWarehouse(EmbeddedSession(tmp_path / "shuffled.duckdb"), scratch=tmp_path / "s2")
    deliveries = history + rng.sample(history, len(history) // 3)
    rng.shuffle(deliveries)
    applier = CdcApplier(shuffled)
    start = 0
    while start < len(deliveries):
        size = rng.randint(1, 25)
        applier.apply(deliveries[start : start + size], run_id=RUN)
        start += size
    assert rows(shuffled, "account", COLUMNS) == expected
    assert len(expected) == len({c.record_id for c in history})


def test_a_record_only_patched_is_replaced_by_the_next_batch_load(duckdb_warehouse):
    wh = duckdb_warehouse
    # CDC started before the first batch load: an update to a record the raw layer has never seen
    CdcApplier(wh).apply([ch("Account", "001Z", "UPDATE", 5300, 40, {"Rating": "Hot"}, ["Rating"])], run_id=RUN)
    assert rows(wh, "account", ["Id", "Rating", "_version"]) == [{"Id": "001Z", "Rating": "Hot", "_version": None}]
    # the batch load reads it (SystemModstamp in the same second): the whole row replaces the patch
    batch = pa.table({"Id": ["001Z"], "Name": ["Zed"], "Rating": ["Hot"], "AnnualRevenue": [9.0],
                      "IsDeleted": [False], "SystemModstamp": [T0 + timedelta(seconds=5)]})  # fmt: skip
    RawLayer(wh).apply_arrow("Account", batch, source="batch", run_id=RUN)
    assert rows(wh, "account", ["Name", "Rating", "AnnualRevenue", "_source"]) == [
        {"Name": "Zed", "Rating": "Hot", "AnnualRevenue": 9.0, "_source": "batch"}]
    # and from then on it is an ordinary row: a change of the same second still applies, an older one not
    CdcApplier(wh).apply([ch("Account", "001Z", "UPDATE", 5800, 41, {"Rating": "Cold"}, ["Rating"]),
                          ch("Account", "001Z", "UPDATE", 4000, 39, {"Name": "Old"}, ["Name"])], run_id=RUN)  # fmt: skip
    assert rows(wh, "account", ["Name", "Rating", "_commit_number"]) == [
        {"Name": "Zed", "Rating": "Cold", "_commit_number": 41}]


@pytest.mark.integration
def test_through_the_warehouse_server_as_the_devstack_runs_it(tmp_path):
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession, FlightSession
    from sfpipe_devstack.emulators import free_port
    from sfpipe_devstack.testing import warehouse_server_process

    rng = random.Random(11)
    history = _history(rng, records=4, steps=40)
    embedded = DuckDBWarehouse(EmbeddedSession(tmp_path / "embedded.duckdb"), scratch=tmp_path / "s1")
    CdcApplier(embedded).apply(history, run_id=RUN)
    expected = rows(embedded, "account", COLUMNS)
    with warehouse_server_process(tmp_path / "home", free_port()) as url:
        served = DuckDBWarehouse(FlightSession(url), scratch=tmp_path / "s2")
        applier = CdcApplier(served)
        for start in range(0, len(history), 7):
            applier.apply(history[start : start + 7], run_id=RUN)
        assert rows(served, "account", COLUMNS) == expected
        assert served.scalar("SELECT count(*) FROM sfpipe_ops.cdc_lag") == len(history)
