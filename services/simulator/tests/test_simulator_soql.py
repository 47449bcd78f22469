from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfpipe_simulator.generator import OrgPlan, write_parquet
from sfpipe_simulator.soql import SoqlError, date_literal_range, parse, parse_datetime_literal, tokenize
from sfpipe_simulator.soql_compile import compile_soql
from sfpipe_simulator.store import Clock, OrgStore

TODAY = date(2026, 3, 18)  # a Wednesday


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("org")
    plan = OrgPlan.build(3, 2_000, datetime(2026, 3, 18, tzinfo=UTC))
    write_parquet(plan, folder)
    org = OrgStore(None, plan.pod, Clock())
    org.load_parquet(folder)
    yield org
    org.close()


def run(store, text, include_deleted=False, mode="json"):
    compiled = compile_soql(text, include_deleted=include_deleted, today=TODAY, version="59.0", mode=mode)
    with store.reader() as cur:
        return compiled, cur.execute(compiled.sql, compiled.params).fetchall()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123Z", datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123456789Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T03:04:05+02:00", datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05-0800", datetime(2024, 1, 2, 11, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.000+0000", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05+05", datetime(2024, 1, 1, 22, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_every_iso_datetime_form(text, expected):
    assert parse_datetime_literal(text) == expected
    where = parse(f"SELECT Id FROM Account WHERE CreatedDate > {text}").where
    assert where.right.value == expected


def test_invalid_datetimes_are_malformed():
    for text in ["2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01T25:00:00Z"]:
        with pytest.raises(SoqlError) as info:
            parse(f"SELECT Id FROM Account WHERE CreatedDate > {text}")
        assert info.value.code == "MALFORMED_QUERY"


@pytest.mark.parametrize(
    ("literal", "n", "start", "end"),
    [
        ("TODAY", None, date(2026, 3, 18), date(2026, 3, 19)),
        ("YESTERDAY", None, date(2026, 3, 17), date(2026, 3, 18)),
        ("THIS_WEEK", None, date(2026, 3, 15), date(2026, 3, 22)),
        ("LAST_MONTH", None, date(2026, 2, 1), date(2026, 3, 1)),
        ("THIS_QUARTER", None, date(2026, 1, 1), date(2026, 4, 1)),
        ("LAST_YEAR", None, date(2025, 1, 1), date(2026, 1, 1)),
        ("LAST_N_DAYS", 30, date(2026, 2, 16), date(2026, 3, 19)),
        ("NEXT_N_DAYS", 7, date(2026, 3, 19), date(2026, 3, 26)),
        ("N_DAYS_AGO", 3, date(2026, 3, 15), date(2026, 3, 16)),
        ("LAST_N_MONTHS", 2, date(2026, 1, 1), date(2026, 3, 1)),
        ("N_QUARTERS_AGO", 1, date(2025, 10, 1), date(2026, 1, 1)),
    ],
)
def test_date_literal_ranges(literal, n, start, end):
    assert date_literal_range(literal, n, TODAY) == (start, end)


def test_parse_tree_of_a_full_query():
    q = parse(
        "SELECT Id, Account.Name, COUNT(Id) c FROM Opportunity o WHERE (Amount > 100 AND NOT StageName IN "
        "('a','b')) OR CloseDate = LAST_N_DAYS:30 ORDER BY Name DESC NULLS LAST LIMIT 10 OFFSET 5 FOR VIEW"
    )
    assert q.sobject == "Opportunity" and q.alias == "o"
    assert q.limit == 10 and q.offset == 5
    assert q.where.op == "OR" and q.where.items[0].op == "AND"
    assert q.order_by[0].descending and not q.order_by[0].nulls_first


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "MALFORMED_QUERY"),
        ("SELECT", "MALFORMED_QUERY"),
        ("SELECT Id FROM", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE a = 1 AND b = 2 OR c = 3", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'abc", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = :name", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name LIKE 1", "MALFORMED_QUERY"),
        ("SELECT (SELECT Id FROM Contacts) FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account LIMIT -1", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a\\q'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account extra tokens", "MALFORMED_QUERY"),
        ("SELECT Foo FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
        ("SELECT Bogus.Name FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE Amount = '1'", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE IsDeleted = 'true'", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Id = 'xyz'", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Name, COUNT(Id) FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account ORDER BY Description", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD"),
        ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE"),
        ("SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id, COUNT() FROM Account", "MALFORMED_QUERY"),
        ("SELECT SUM(Name) FROM Account", "MALFORMED_QUERY"),
        ("SELECT Who.Email FROM Task", "INVALID_FIELD"),
    ],
)
def test_refused_queries_carry_salesforce_codes(text, code):
    with pytest.raises(SoqlError) as info:
        compile_soql(text, include_deleted=False, today=TODAY, version="59.0")
    assert info.value.code == code


def test_error_message_points_at_the_column():
    with pytest.raises(SoqlError) as info:
        compile_soql("SELECT Id, Nme FROM Account", include_deleted=False, today=TODAY, version="59.0")
    message = info.value.render()
    assert message.startswith("\nSELECT Id, Nme FROM Account\n           ^\nERROR at Row:1:Column:12\n")
    assert "No such column 'Nme' on entity 'Account'" in message


def test_text_compares_case_insensitively_and_not_equal_keeps_nulls(store):
    _, rows = run(store, "SELECT Name FROM Account LIMIT 1")
    import json

    name = json.loads(rows[0][0])["Name"]
    _, same = run(store, f"SELECT Id FROM Account WHERE Name = '{name.upper()}'")
    assert len(same) >= 1
    _, total = run(store, "SELECT Id FROM Account")
    _, with_rating = run(store, "SELECT Id FROM Account WHERE Rating = 'Hot'")
    _, not_hot = run(store, "SELECT Id FROM Account WHERE Rating != 'Hot'")
    assert len(with_rating) + len(not_hot) == len(total)  # rows with a NULL rating are in "!="


def test_query_hides_deleted_rows_and_query_all_shows_them(store):
    _, live = run(store, "SELECT Id FROM Contact")
    _, everything = run(store, "SELECT Id FROM Contact", include_deleted=True)
    with store.reader() as cur:
        deleted = cur.execute("SELECT count(*) FROM Contact WHERE IsDeleted").fetchone()[0]
    assert deleted > 0
    assert len(everything) - len(live) == deleted


def test_like_in_null_and_escapes(store):
    _, rows = run(store, "SELECT Id FROM Account WHERE Name LIKE '%a%' AND Website != null AND Industry IN "
                         "('Banking', 'Retail', null)")
    assert rows
    _, none = run(store, "SELECT Id FROM Account WHERE Name LIKE '100\\%%'")
    assert none == []


def test_parent_fields_and_polymorphic_relationships(store):
    import json

    _, rows = run(store, "SELECT Id, Account.Name, Account.Owner.Name FROM Contact WHERE Account.Name != null LIMIT 1")
    record = json.loads(rows[0][0])
    assert record["Account"]["attributes"]["type"] == "Account"
    assert record["Account"]["Owner"]["Name"]
    _, tasks = run(store, "SELECT Id, Who.Name, What.Type FROM Task WHERE WhatId != null LIMIT 5")
    for row in tasks:
        task = json.loads(row[0])
        assert task["What"]["Type"] in {"Account", "Opportunity"}


def test_datetime_and_date_literal_filters_agree(store):
    _, a = run(store, "SELECT Id FROM Opportunity WHERE CreatedDate >= 2025-03-18T00:00:00Z")
    _, b = run(store, "SELECT Id FROM Opportunity WHERE CreatedDate >= 2025-03-18T02:00:00+02:00")
    _, c = run(store, "SELECT Id FROM Opportunity WHERE CreatedDate > LAST_N_DAYS:365")
    _, d = run(store, "SELECT Id FROM Opportunity WHERE CreatedDate >= 2026-03-19T00:00:00Z")
    assert a == b
    assert len(c) == len(d) == 0  # the org's history ends before today's range ends


def test_aggregates_group_by_and_count(store):
    import json

    _, rows = run(store, "SELECT StageName, COUNT(Id) n, SUM(Amount) FROM Opportunity GROUP BY StageName")
    results = [json.loads(r[0]) for r in rows]
    assert {r["attributes"]["type"] for r in results} == {"AggregateResult"}
    compiled, count = run(store, "SELECT COUNT() FROM Opportunity")
    assert compiled.kind == "count"
    assert sum(r["n"] for r in results) == count[0][0]


def test_csv_mode_formats(store):
    compiled, rows = run(store, "SELECT Id, IsWon, CreatedDate, CloseDate, Amount, Account.Name FROM Opportunity "
                                "LIMIT 1", mode="csv")
    assert compiled.headers == ["Id", "IsWon", "CreatedDate", "CloseDate", "Amount", "Account.Name"]
    row = rows[0]
    assert row[1] in {"true", "false"}
    assert row[2].endswith(".000Z") and "T" in row[2]
    assert len(row[3]) == 10


# --------------------------------------------------------------------------- fuzzing

SOQL_WORDS = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "NULL", "TRUE", "FALSE", "ORDER", "BY", "ASC",
    "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "GROUP", "HAVING", "COUNT()", "COUNT(Id)", "Id", "Name",
    "Account", "Contact", "Opportunity", "Account.Name", "Amount", "CreatedDate", "CloseDate", "IsDeleted",
    "StageName", "Who.Name", "What.Type", "=", "!=", "<>", "<", ">", "<=", ">=", "(", ")", ",", "'x'", "'%a%'",
    "1", "-2.5", "2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5+01:00", "TODAY", "LAST_N_DAYS:7",
    "N_DAYS_AGO:", ":", "'", "\\", "FIELDS(ALL)", "SUM(Amount)", "MAX(CreatedDate)", "USING", "SCOPE", "FOR",
    "VIEW", "INCLUDES", "0015g00000AbCdE", "'0015g00000AbCdEAAA'", "99999999999999999999",
]  # fmt: skip


def _check(store, text):
    try:
        compiled = compile_soql(text, include_deleted=False, today=TODAY, version="59.0")
    except SoqlError as exc:
        assert exc.code and exc.render()
        return
    with store.reader() as cur:
        cur.execute(compiled.sql, compiled.params).fetchmany(5)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(SOQL_WORDS), min_size=0, max_size=14))
def test_fuzz_token_soup_never_crashes(store, words):
    _check(store, " ".join(words))


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.lists(st.sampled_from(["Id", "Name", "Amount", "Account.Name", "CloseDate", "IsWon", "Owner.Name"]),
                    min_size=1, max_size=4, unique=True),
    op=st.sampled_from(["=", "!=", "<", ">", "<=", ">=", "LIKE", "IN", "NOT IN"]),
    field=st.sampled_from(["Name", "Amount", "CloseDate", "CreatedDate", "IsWon", "Id", "AccountId", "StageName"]),
    value=st.one_of(
        st.text(max_size=12).map(lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"),
        st.integers(-10**6, 10**6).map(str),
        st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: repr(float(f))),
        st.sampled_from(["null", "true", "2024-05-06", "2024-05-06T07:08:09Z", "TODAY", "LAST_N_DAYS:3",
                         "('a', 'b')", "(1, 2)", "(TODAY, YESTERDAY)"]),
    ),
    order=st.sampled_from(["", " ORDER BY Name", " ORDER BY Amount DESC NULLS LAST", " ORDER BY Account.Name"]),
    limit=st.sampled_from(["", " LIMIT 3", " LIMIT 0", " OFFSET 2"]),
)
def test_fuzz_structured_queries_never_crash(store, fields, op, field, value, order, limit):
    _check(store, f"SELECT {', '.join(fields)} FROM Opportunity WHERE {field} {op} {value}{order}{limit}")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_arbitrary_text_only_raises_soql_errors(text):
    try:
        tokenize(text)
        parse(text)
    except SoqlError as exc:
        assert exc.code == "MALFORMED_QUERY"


def test_order_is_an_object_name_after_from():
    assert parse("SELECT COUNT() FROM Order").sobject == "Order"
    with_order_by = parse("SELECT Id FROM Order ORDER BY Id DESC")
    assert with_order_by.sobject == "Order" and with_order_by.order_by[0].descending
    assert parse("SELECT Id FROM Order o WHERE o.Status = 'Draft'").alias == "o"
    with pytest.raises(SoqlError):
        parse("SELECT Id FROM ORDER BY Id")
