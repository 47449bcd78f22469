"""The DB-API driver that lets GX run its SQL through the warehouse session (embedded or Flight)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pytest
import sqlalchemy as sa

from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession, FlightSession
from sfpipe.config import load_settings
from sfpipe_devstack.emulators import free_port
from sfpipe_quality import dbapi, sample_org
from sfpipe_quality.runner import QualityChecker


def test_literals_are_rendered_safely():
    assert dbapi.render_literal(None) == "NULL"
    assert dbapi.render_literal(True) == "TRUE"
    assert dbapi.render_literal(42) == "42"
    assert dbapi.render_literal(1.5) == "1.5"
    assert dbapi.render_literal(float("nan")) == "'nan'::DOUBLE"
    assert dbapi.render_literal(Decimal("10.25")) == "10.25"
    assert dbapi.render_literal("O'Brien") == "'O''Brien'"
    assert dbapi.render_literal(date(2026, 1, 2)) == "DATE '2026-01-02'"
    assert dbapi.render_literal(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "TIMESTAMPTZ '2026-01-02 03:04:05+00:00'"
    assert dbapi.render_literal(b"\x00\xff") == "'\\x00\\xff'::BLOB"
    assert dbapi.render_literal(["a", 1]) == "['a', 1]"


def test_pyformat_parameters_are_bound_and_percent_unescaped():
    sql = dbapi.bind("SELECT * FROM t WHERE name LIKE 'a%%' AND id = %(id)s AND n = %(n)s", {"id": "x'; --", "n": 3})
    assert sql == "SELECT * FROM t WHERE name LIKE 'a%' AND id = 'x''; --' AND n = 3"


@pytest.fixture
def session(tmp_path):
    s = EmbeddedSession(tmp_path / "w.duckdb")
    s.run(
        [
            "CREATE SCHEMA raw",
            "CREATE TABLE raw.t AS SELECT i AS id, 'name ' || i AS name, CAST(i AS DECIMAL(18, 2)) AS amount, "
            "TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (i) SECOND AS at FROM range(50000) r(i)",
        ]
    )
    yield s
    s.close()


def _engine(session, seen=None):
    return sa.create_engine(
        dbapi.URL, creator=lambda: dbapi.Connection(session, seen.append if seen is not None else None)
    )


def test_sqlalchemy_runs_through_the_session(session):
    seen: list[str] = []
    engine = _engine(session, seen)
    table = sa.table("t", sa.column("id"), sa.column("name"), sa.column("amount"), schema="raw")
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
        names = conn.execute(
            sa.select(table.c.name)
            .where(table.c.id.in_([3, 4]))
            .where(table.c.name.like("name %"))
            .order_by(table.c.id)
        ).fetchall()
        total = conn.execute(sa.select(sa.func.sum(table.c.amount)).select_from(table)).scalar()
    assert count == 50_000
    assert [n for (n,) in names] == ["name 3", "name 4"]
    # decimals come back as floats (GX converts them anyway, slowly)
    assert total == pytest.approx(sum(range(50_000)))
    assert any("IN (3, 4)" in s and "LIKE 'name %'" in s for s in seen)


def test_columns_are_reflected_from_information_schema(session):
    columns = sa.inspect(_engine(session)).get_columns("t", schema="raw")
    assert [(c["name"], type(c["type"]).__name__) for c in columns] == [
        ("id", "BigInteger"),
        ("name", "String"),
        ("amount", "Numeric"),
        ("at", "TIMESTAMP"),
    ]
    assert columns[3]["type"].timezone is True
    with pytest.raises(sa.exc.NoSuchTableError):
        sa.inspect(_engine(session)).get_columns("missing", schema="raw")


def test_a_cursor_reads_only_what_is_fetched(session):
    conn = dbapi.Connection(session)
    cur = conn.cursor()
    cur.execute("SELECT id FROM raw.t ORDER BY id")
    assert [d[0] for d in cur.description] == ["id"]
    assert cur.fetchmany(3) == [(0,), (1,), (2,)]
    cur.close()
    with pytest.raises(dbapi.InterfaceError):
        cur.fetchone()


def test_errors_are_dbapi_errors(session):
    cur = dbapi.Connection(session).cursor()
    with pytest.raises(dbapi.ProgrammingError, match="missing"):
        cur.execute("SELECT * FROM raw.missing")


@pytest.fixture
def served_org(tmp_path, sfpipe_env):
    """A sample org in a file owned by a warehouse server in another process."""
    path = tmp_path / "served.duckdb"
    session = EmbeddedSession(path)
    size = sample_org.build(session, 3_000)
    session.close()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from sfpipe.adapters.warehouse.duckdb.server import serve; serve(sys.argv[1], '127.0.0.1', int(sys.argv[2]))",
            str(path),
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    flight = FlightSession(f"grpc://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while not flight.ping():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "warehouse server did not start"
        time.sleep(0.2)
    yield path, flight, size
    flight.close()
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.integration
def test_checks_run_through_the_warehouse_server_that_owns_the_file(served_org):
    path, flight, size = served_org
    # the server holds the file: this process cannot open it, not even read-only
    with pytest.raises(duckdb.IOException, match="lock"):
        duckdb.connect(str(path), read_only=True)
    warehouse = DuckDBWarehouse(flight)
    checker = QualityChecker(warehouse, load_settings())

    clean = checker.run(sample_org.RUN_ID, ["raw", "marts"])
    flight.run(
        ["UPDATE sfpipe_raw.opportunity SET Amount = -1 WHERE Id = (SELECT min(Id) FROM sfpipe_raw.opportunity)"]
    )
    broken = checker.run(sample_org.RUN_ID, ["raw", "marts"])

    assert clean.failing() == []
    assert len(clean.results) > 150
    assert {r.check for r in broken.failing()} == {"opportunity.amount_not_negative"}
