"""The CDC stream's transform functions: messages → changes → one patch per record."""

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from sfpipe.events import CdcChange
from sfpipe_beam.cdc.changes import Change, column_types, convert, fold, from_message, patch_table, version_table

T0 = datetime(2026, 3, 1, 9, 30, 15, 250_000, tzinfo=UTC)


def message(**overrides):
    body = {
        "run_id": "20260301T000000Z-0a1b2c3d", "entity": "Account", "change_type": "UPDATE",
        "record_ids": ["001A"], "changed_fields": ["Rating", "Website"], "nulled_fields": ["Website"],
        "diff_fields": [], "values": {"Rating": "Hot", "Website": None},
        "commit_timestamp": "2026-03-01T09:30:15.250Z", "commit_number": 7, "transaction_key": "tx",
        "sequence_number": 2, "replay_id": "00000000000000aa", "commit_user": "005U",
        "field_types": {"Rating": "picklist", "Website": "url", "IsDeleted": "boolean"},
    }  # fmt: skip
    body.update(overrides)
    CdcChange.model_validate(body)
    return json.dumps(body).encode()


def test_update_message_becomes_a_partial_change():
    (change,) = from_message(message(), {"ce-id": "tx.2.001A"})
    assert change.record_id == "001A" and change.change_type == "UPDATE"
    assert change.commit_timestamp == T0 and change.version == (T0, 7, 2)
    assert change.fields == ("Rating", "Website")
    assert change.event_id == "tx.2.001A"
    assert change.effects() == {"Rating": "Hot", "Website": None, "SystemModstamp": T0.replace(microsecond=0)}


def test_gap_events_and_several_record_ids():
    assert from_message(message(change_type="GAP_UPDATE", values={})) == []
    two = from_message(message(record_ids=["001A", "001B"]))
    assert [c.record_id for c in two] == ["001A", "001B"]


def test_malformed_messages_raise_for_the_caller_to_refuse():
    with pytest.raises(ValueError):
        from_message(b"not json")
    with pytest.raises(KeyError):
        from_message(json.dumps({"change_type": "UPDATE"}).encode())


def test_delete_and_create_effects():
    delete = Change("Account", "001A", "DELETE", T0, 9, 1, {}, commit_user="005U")
    assert delete.effects() == {"IsDeleted": True, "_hard_deleted": False, "SystemModstamp": T0.replace(microsecond=0),
                                "LastModifiedDate": T0.replace(microsecond=0), "LastModifiedById": "005U"}  # fmt: skip
    create = Change("Account", "001A", "CREATE", T0, 5, 1, {"Id": "001A", "Name": "Acme"})
    assert create.full and create.effects()["IsDeleted"] is False and create.effects()["_hard_deleted"] is False


def test_fold_orders_by_version_and_absorbs_duplicates():
    later = T0 + timedelta(milliseconds=5)
    changes = [
        Change("Account", "001A", "UPDATE", later, 8, 1, {"Rating": "Cold"}, ("Rating",)),
        Change("Account", "001A", "CREATE", T0, 7, 1, {"Id": "001A", "Name": "Acme", "Rating": "Hot"}),
        Change("Account", "001A", "UPDATE", later, 8, 1, {"Rating": "Cold"}, ("Rating",)),
        Change("Account", "001A", "UPDATE", T0, 7, 2, {"Name": "Acme Inc"}, ("Name",)),
        Change("Contact", "003A", "UPDATE", T0, 7, 3, {"Title": "CEO"}, ("Title",)),
    ]
    patches = fold(changes)
    account = patches[("Account", "001A")]
    assert account.star == (T0, 7, 1)
    assert account.values["Name"] == "Acme Inc" and account.values["Rating"] == "Cold"
    assert account.versions["Rating"] == (later, 8, 1) and account.versions["Name"] == (T0, 7, 2)
    assert account.newest == (later, 8, 1)
    assert set(patches) == {("Account", "001A"), ("Contact", "003A")}


def test_a_full_row_after_partial_changes_replaces_them():
    patches = fold([
        Change("Account", "001A", "UPDATE", T0, 7, 1, {"Rating": "Cold"}, ("Rating",)),
        Change("Account", "001A", "UNDELETE", T0, 8, 1, {"Id": "001A", "Name": "Acme"}),
    ])  # fmt: skip
    patch = patches[("Account", "001A")]
    assert "Rating" not in patch.values and patch.versions == {} and patch.star == (T0, 8, 1)


def test_tables_are_typed_from_the_raw_table_then_the_event_schema():
    existing = pa.schema([("Id", pa.string()), ("AnnualRevenue", pa.float64())])
    types = column_types(["Id", "AnnualRevenue", "CloseDate", "SystemModstamp", "Rating"], existing,
                         {"AnnualRevenue": "int", "CloseDate": "date", "Rating": "picklist"})  # fmt: skip
    assert types["AnnualRevenue"] == pa.float64() and types["CloseDate"] == pa.date32()
    assert pa.types.is_timestamp(types["SystemModstamp"]) and types["Rating"] == pa.string()
    patches = list(fold([Change("Opportunity", "006A", "UPDATE", T0, 7, 1,
                                {"CloseDate": "2026-04-30", "AnnualRevenue": 12}, ("CloseDate", "AnnualRevenue"))]).values())  # fmt: skip
    table = patch_table(patches, {k: v for k, v in types.items() if k != "Rating"})
    row = table.to_pylist()[0]
    assert row["CloseDate"].isoformat() == "2026-04-30" and row["AnnualRevenue"] == 12.0
    assert row["_full"] is False and row["_commit_number"] == 7
    versions = version_table(patches).to_pylist()
    assert {(v["field"], v["_commit_number"], v["_sequence"]) for v in versions} == {
        ("CloseDate", 7, 1), ("AnnualRevenue", 7, 1), ("SystemModstamp", 7, 1)}


def test_convert_values():
    assert convert("2026-01-02T03:04:05.000+0000", pa.timestamp("us", tz="UTC")) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert convert("true", pa.bool_()) is True and convert(3, pa.string()) == "3"
    assert convert(None, pa.int64()) is None
