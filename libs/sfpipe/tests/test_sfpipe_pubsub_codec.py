"""The Pub/Sub API's generated modules, field bitmaps and change-event Avro codec."""

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sfpipe.errors import BadInputError
from sfpipe.salesforce.pubsub import bitmap
from sfpipe.salesforce.pubsub.events import (
    ChangeEventDecoder,
    ChangeEventEncoder,
    EventField,
    child_column,
    from_avro,
    schema_id,
    to_avro,
)
from sfpipe.salesforce.pubsub.generate import OUTPUTS, generate

GENERATED = Path(__file__).parents[1] / "salesforce" / "pubsub" / "_generated"

ACCOUNTISH = [
    EventField("Id", "id"),
    EventField("IsDeleted", "boolean"),
    EventField("Name", "string"),
    EventField("BillingStreet", "textarea", "BillingAddress"),
    EventField("BillingCity", "string", "BillingAddress"),
    EventField("BillingLatitude", "double", "BillingAddress"),
    EventField("BillingAddress", "address"),
    EventField("AnnualRevenue", "currency"),
    EventField("NumberOfEmployees", "int"),
    EventField("LastActivityDate", "date"),
    EventField("CreatedDate", "datetime"),
    EventField("IsPartner", "boolean"),
    EventField("SystemModstamp", "datetime"),
]
CONTACTISH = [
    EventField("Id", "id"),
    EventField("LastName", "string", "Name"),
    EventField("FirstName", "string", "Name"),
    EventField("Salutation", "picklist", "Name"),
    EventField("Name", "string"),
    EventField("MailingCity", "string", "MailingAddress"),
    EventField("MailingAddress", "address"),
    EventField("Email", "email"),
]


def header(change_type="UPDATE", changed=(), nulled=(), encoder=None):
    enc = encoder
    return {
        "entityName": enc.sobject,
        "recordIds": ["001000000000001AAA"],
        "changeType": change_type,
        "changeOrigin": "com/salesforce/api/rest/62.0",
        "transactionKey": "0001a2b3-0000-0000-0000-000000000000",
        "sequenceNumber": 1,
        "commitTimestamp": 1_767_225_600_123,
        "commitNumber": 42,
        "commitUser": "005000000000001AAA",
        "nulledFields": enc.bitmaps(nulled),
        "diffFields": [],
        "changedFields": enc.bitmaps(changed),
    }


# --------------------------------------------------------------------------- generated code


def test_regenerating_gives_the_committed_bytes(tmp_path):
    written = generate(tmp_path)
    assert [p.name for p in written] == list(OUTPUTS)
    for path in written:
        assert path.read_bytes() == (GENERATED / path.name).read_bytes(), f"{path.name} differs: regenerate"


def _fields(module: str) -> dict:
    code = f"""
import json, importlib
m = importlib.import_module({module!r})
out = {{}}
for name, msg in m.DESCRIPTOR.message_types_by_name.items():
    out[name] = {{f.name: [f.number, f.type, f.label] for f in msg.fields}}
out["enums"] = {{n: {{v.name: v.number for v in e.values}} for n, e in m.DESCRIPTOR.enum_types_by_name.items()}}
out["package"] = m.DESCRIPTOR.package
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_proto_is_wire_compatible_with_the_one_salesforce_clients_ship():
    # pysfpubsub ships the protobuf module generated from Salesforce's own pubsub_api.proto;
    # each is loaded in its own interpreter because both define eventbus.v1.
    ours = _fields("sfpipe.salesforce.pubsub._generated.pubsub_api_pb2")
    theirs = _fields("pysfpubsub.pubsub_api_pb2")
    assert ours["package"] == theirs["package"] == "eventbus.v1"
    for name in ("FetchRequest", "FetchResponse", "ConsumerEvent", "ProducerEvent", "EventHeader", "SchemaRequest",
                 "SchemaInfo", "TopicRequest", "TopicInfo", "PublishRequest", "PublishResponse", "PublishResult",
                 "Error"):
        assert ours[name] == theirs[name], name
    assert ours["enums"]["ReplayPreset"] == {"LATEST": 0, "EARLIEST": 1, "CUSTOM": 2}
    assert ours["enums"]["ReplayPreset"] == theirs["enums"]["ReplayPreset"]
    assert ours["FetchRequest"]["replay_id"][0] == 3 and ours["FetchResponse"]["latest_replay_id"][0] == 2


# --------------------------------------------------------------------------- bitmaps


def test_bitmap_encode_and_decode():
    assert bitmap.encode({2, 3, 5}) == "0x2C"
    assert bitmap.encode({8}) == "0x0100"
    assert bitmap.encode({0}) == "0x01"
    assert bitmap.decode("0x650004E0") == [5, 6, 7, 10, 24, 26, 29, 30]
    assert bitmap.decode("0x2c") == [2, 3, 5]
    assert bitmap.decode(bitmap.encode(range(0, 70, 3))) == list(range(0, 70, 3))


@pytest.mark.parametrize("bad", ["2C", "0xZZ", "", "12-ab"])
def test_bad_bitmaps_are_refused(bad):
    index = ChangeEventEncoder("Account", ACCOUNTISH).index
    with pytest.raises(BadInputError):
        if bad.startswith("0x") or not bad:
            bitmap.decode(bad)
        else:
            index.names([bad])


def test_compound_children_get_parent_bitmaps():
    enc = ChangeEventEncoder("Account", ACCOUNTISH)
    fields = [f["name"] for f in enc.schema["fields"]]
    assert fields[0] == "ChangeEventHeader"
    assert "IsDeleted" not in fields and "SystemModstamp" not in fields and "BillingCity" not in fields
    parent = fields.index("BillingAddress")
    maps = enc.bitmaps(["Name", "BillingCity", "BillingStreet"])
    assert maps[0] == bitmap.encode({fields.index("Name"), parent})
    assert maps[1].startswith(f"{parent}-0x")
    assert enc.index.names(maps) == ["Name", "BillingAddress.Street", "BillingAddress.City"]
    assert enc.bitmaps([]) == []
    assert all(c.isdigit() or c.isupper() or c in "x-" for m in maps for c in m)


def test_person_name_is_a_nested_record():
    enc = ChangeEventEncoder("Contact", CONTACTISH)
    names = [f["name"] for f in enc.schema["fields"]]
    assert names.count("Name") == 1 and "FirstName" not in names
    assert enc.path("FirstName") == "Name.FirstName"
    assert enc.path("Name") is None
    assert child_column("Name", "FirstName") == "FirstName"
    assert child_column("MailingAddress", "City") == "MailingCity"
    assert child_column("Address", "City") == "City"


# --------------------------------------------------------------------------- Avro round trips


def test_create_round_trip_types_and_compound_parts():
    enc = ChangeEventEncoder("Account", ACCOUNTISH)
    values = {
        "Id": "001000000000001AAA", "IsDeleted": False, "Name": "Acme", "BillingCity": "Oslo",
        "BillingLatitude": 59.91, "AnnualRevenue": 1_250_000.5, "NumberOfEmployees": 12,
        "LastActivityDate": "2026-01-31", "CreatedDate": "2026-01-02T03:04:05.000+0000", "IsPartner": True,
        "SystemModstamp": "2026-01-02T03:04:05.000+0000",
    }  # fmt: skip
    payload = enc.encode(header("CREATE", values, encoder=enc), values)
    decoded = ChangeEventDecoder(enc.schema_json).decode(payload)
    assert decoded.change_type == "CREATE"
    assert decoded.commit_timestamp == datetime(2026, 1, 1, 0, 0, 0, 123_000, tzinfo=UTC)
    assert decoded.values == {
        "Id": "001000000000001AAA", "Name": "Acme", "BillingCity": "Oslo", "BillingLatitude": 59.91,
        "AnnualRevenue": 1_250_000.5, "NumberOfEmployees": 12, "LastActivityDate": "2026-01-31",
        "CreatedDate": "2026-01-02T03:04:05.000Z", "IsPartner": True,
    }  # fmt: skip
    assert decoded.field_types["CreatedDate"] == "datetime" and decoded.field_types["BillingCity"] == "string"
    assert "BillingCity" in decoded.changed_fields and "BillingAddress" not in decoded.changed_fields


def test_update_carries_changed_and_nulled_fields_only():
    enc = ChangeEventEncoder("Contact", CONTACTISH)
    values = {"FirstName": "Ada", "Email": None}
    payload = enc.encode(header("UPDATE", ["FirstName", "Email"], ["Email"], enc), values)
    decoded = ChangeEventDecoder(enc.schema_json).decode(payload)
    assert decoded.values == {"FirstName": "Ada", "Email": None}
    assert decoded.changed_fields == ["FirstName", "Email"]
    assert decoded.nulled_fields == ["Email"]
    assert decoded.diff_fields == []


def test_delete_and_gap_events_carry_no_values():
    enc = ChangeEventEncoder("Contact", CONTACTISH)
    for kind in ("DELETE", "GAP_UPDATE", "GAP_OVERFLOW"):
        decoded = ChangeEventDecoder(enc.schema_json).decode(enc.encode(header(kind, encoder=enc), {}))
        assert decoded.change_type == kind
        assert decoded.values == {} and decoded.changed_fields == []


def test_value_conversions():
    assert to_avro("2026-01-02T03:04:05.678+0000", "datetime") == 1_767_323_045_678
    assert from_avro(1_767_323_045_678, "datetime") == "2026-01-02T03:04:05.678Z"
    assert from_avro(to_avro(date(2024, 2, 29), "date"), "date") == "2024-02-29"
    assert from_avro(to_avro("13:14:15.250Z", "time"), "time") == "13:14:15.250Z"
    assert to_avro("12", "int") == 12 and to_avro(None, "string") is None


def test_schema_ids_are_stable_and_distinct():
    a = ChangeEventEncoder("Account", ACCOUNTISH)
    again = ChangeEventEncoder("Account", ACCOUNTISH)
    other = ChangeEventEncoder("Contact", CONTACTISH)
    assert a.schema_id == again.schema_id == schema_id(json.loads(a.schema_json))
    assert len(a.schema_id) == 22 and a.schema_id != other.schema_id
