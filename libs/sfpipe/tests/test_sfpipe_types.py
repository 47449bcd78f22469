from datetime import UTC, date, datetime, time

import pyarrow as pa
import pytest

from sfpipe.errors import TerminalError
from sfpipe.salesforce.types import (
    UnknownFieldType,
    arrow_schema,
    arrow_type,
    bigquery_column_type,
    convert_strings,
    fields_from_describe,
    format_datetime,
    queryable_fields,
    schema_fingerprint,
)


@pytest.mark.parametrize(
    ("sf_type", "arrow", "bq"),
    [
        ("id", pa.string(), "STRING"),
        ("reference", pa.string(), "STRING"),
        ("picklist", pa.string(), "STRING"),
        ("multipicklist", pa.string(), "STRING"),
        ("textarea", pa.string(), "STRING"),
        ("email", pa.string(), "STRING"),
        ("phone", pa.string(), "STRING"),
        ("url", pa.string(), "STRING"),
        ("boolean", pa.bool_(), "BOOL"),
        ("int", pa.int64(), "INT64"),
        ("double", pa.float64(), "FLOAT64"),
        ("currency", pa.float64(), "FLOAT64"),
        ("percent", pa.float64(), "FLOAT64"),
        ("date", pa.date32(), "DATE"),
        ("datetime", pa.timestamp("us", tz="UTC"), "TIMESTAMP"),
        ("time", pa.time64("us"), "TIME"),
        ("base64", pa.string(), "STRING"),
        ("address", pa.string(), "STRING"),
        ("location", pa.string(), "STRING"),
        ("anyType", pa.string(), "STRING"),
    ],
)
def test_type_mapping(sf_type, arrow, bq):
    assert arrow_type(sf_type) == arrow
    assert bigquery_column_type(sf_type) == bq


def test_unknown_type_names_it():
    with pytest.raises(UnknownFieldType, match="unknown Salesforce field type 'hologram'"):
        arrow_type("hologram")


def test_describe_to_schema_skips_compound_fields():
    describe = {
        "fields": [
            {"name": "Id", "type": "id", "nillable": False},
            {"name": "BillingAddress", "type": "address"},
            {"name": "BillingCity", "type": "string", "compoundFieldName": "BillingAddress"},
            {"name": "Amount__c", "type": "currency", "calculated": True},
        ]
    }
    fields = queryable_fields(fields_from_describe(describe))
    schema = arrow_schema(fields)
    assert schema.names == ["Id", "BillingCity", "Amount__c"]
    assert fields[2].calculated is True
    assert schema_fingerprint(schema) == schema_fingerprint(arrow_schema(fields))
    assert schema_fingerprint(schema) != schema_fingerprint(schema.remove(0))


def test_convert_strings():
    assert convert_strings(pa.array(["true", "false", "", None]), "boolean").to_pylist() == [True, False, None, None]
    assert convert_strings(pa.array(["12", ""]), "int").to_pylist() == [12, None]
    assert convert_strings(pa.array(["1.5"]), "currency").to_pylist() == [1.5]
    assert convert_strings(pa.array(["2024-02-29"]), "date").to_pylist() == [date(2024, 2, 29)]
    stamps = convert_strings(
        pa.array(["2024-01-02T03:04:05.000+0000", "2024-01-02T03:04:05.123Z"]), "datetime"
    ).to_pylist()
    assert stamps == [datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)]
    assert convert_strings(pa.array(["10:11:12.500Z"]), "time").to_pylist() == [time(10, 11, 12, 500000)]
    with pytest.raises(TerminalError, match="not of Salesforce type 'int'"):
        convert_strings(pa.array(["twelve"]), "int")


def test_format_datetime():
    assert format_datetime(datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)) == "2024-01-02T03:04:05.678+0000"
