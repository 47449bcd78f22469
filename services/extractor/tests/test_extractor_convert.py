"""Pages → Arrow: REST records and Bulk CSV give the same table; bad pages fail clearly."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from sfpipe.salesforce.errors import BadResponseError, UnknownFieldTypeError
from sfpipe.salesforce.types import FieldInfo
from sfpipe_extractor.convert import PageConverter, max_timestamp, true_ids

FIELDS = [
    FieldInfo("Id", "id"),
    FieldInfo("Name", "string"),
    FieldInfo("Amount", "currency"),
    FieldInfo("IsDeleted", "boolean"),
    FieldInfo("CloseDate", "date"),
    FieldInfo("SystemModstamp", "datetime"),
    FieldInfo("Employees", "int"),
    FieldInfo("Description", "textarea"),
]

RECORDS = [
    {"attributes": {"type": "Opportunity"}, "Id": "006A", "Name": "Big, \"quoted\" deal", "Amount": 1500.5,
     "IsDeleted": False, "CloseDate": "2024-03-01", "SystemModstamp": "2024-01-02T03:04:05.000+0000",
     "Employees": 12, "Description": "line one\nline two"},
    {"attributes": {"type": "Opportunity"}, "Id": "006B", "Name": None, "Amount": None, "IsDeleted": True,
     "CloseDate": None, "SystemModstamp": "2024-01-03T00:00:00.000+0000", "Employees": None, "Description": None},
]

CSV = (
    b'"Id","Name","Amount","IsDeleted","CloseDate","SystemModstamp","Employees","Description"\n'
    b'"006A","Big, ""quoted"" deal","1500.5","false","2024-03-01","2024-01-02T03:04:05.000Z","12","line one\nline two"\n'
    b'"006B","","","true","","2024-01-03T00:00:00.000Z","",""\n'
)


def test_rest_and_bulk_pages_give_the_same_table():
    converter = PageConverter("Opportunity", FIELDS)
    from_rest = converter.from_records(RECORDS)
    from_bulk = converter.from_csv(CSV, expected_rows=2)
    assert from_rest.schema == converter.schema == from_bulk.schema
    assert from_rest.equals(from_bulk)
    row = from_rest.to_pylist()[0]
    assert row["Name"] == 'Big, "quoted" deal'
    assert row["Description"] == "line one\nline two"
    assert row["CloseDate"] == date(2024, 3, 1)
    assert row["SystemModstamp"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert from_rest.schema.field("Employees").type == pa.int64()


def test_watermark_and_deleted_ids_from_a_table():
    table = PageConverter("Opportunity", FIELDS).from_records(RECORDS)
    assert max_timestamp(table, "SystemModstamp") == datetime(2024, 1, 3, tzinfo=UTC)
    assert true_ids(table, "IsDeleted") == ["006B"]


def test_truncated_csv_fails_with_a_clear_error():
    converter = PageConverter("Opportunity", FIELDS)
    cut_mid_row = CSV[: CSV.rindex(b"\n", 0, len(CSV) - 1) + 20]
    with pytest.raises(BadResponseError, match="malformed or truncated"):
        converter.from_csv(cut_mid_row, expected_rows=2)
    cut_at_row = CSV[: CSV.rindex(b"\n", 0, len(CSV) - 1) + 1]
    with pytest.raises(BadResponseError, match="has 1 rows but Sforce-NumberOfRecords says 2"):
        converter.from_csv(cut_at_row, expected_rows=2)


def test_csv_missing_a_selected_column_is_rejected():
    converter = PageConverter("Opportunity", FIELDS)
    with pytest.raises(BadResponseError, match="CSV header lacks a selected field.*'Amount'"):
        converter.from_csv(b'"Id","Name"\n"006A","x"\n', expected_rows=1)


def test_records_missing_a_field_or_with_wrong_types_are_rejected():
    converter = PageConverter("Opportunity", FIELDS)
    with pytest.raises(BadResponseError, match="lack selected fields"):
        converter.from_records([{"Id": "006A"}])
    bad = dict(RECORDS[0], Amount="a lot")
    with pytest.raises(BadResponseError, match=r"Opportunity\.Amount"):
        converter.from_records([bad])
    bad_date = dict(RECORDS[0], SystemModstamp="yesterday")
    with pytest.raises(BadResponseError, match=r"Opportunity\.SystemModstamp"):
        converter.from_records([bad_date])


def test_unknown_field_type_names_the_field():
    with pytest.raises(UnknownFieldTypeError, match=r"Opportunity\.Hologram: unknown Salesforce field type 'hologram'"):
        PageConverter("Opportunity", [*FIELDS, FieldInfo("Hologram", "hologram")])


def test_json_valued_text_fields_are_kept_as_json():
    converter = PageConverter("X", [FieldInfo("Id", "id"), FieldInfo("Value", "anyType")])
    table = converter.from_records([{"Id": "1", "Value": {"a": 1}}, {"Id": "2", "Value": "plain"}])
    assert table.column("Value").to_pylist() == ['{"a": 1}', "plain"]


def test_empty_pages():
    converter = PageConverter("Opportunity", FIELDS)
    assert converter.from_records([]).num_rows == 0
    assert converter.from_csv(b"", expected_rows=0).num_rows == 0
    with pytest.raises(BadResponseError, match="empty CSV"):
        converter.from_csv(b"", expected_rows=5)
