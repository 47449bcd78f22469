"""Fixtures for the dashboard tests: a warehouse the way a few hours of runs leave it, and an app on it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask
import pytest

from sfpipe.config import load_settings
from sfpipe_dashboard import sample
from sfpipe_dashboard.app import create_app

NOW = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def filled(duckdb_warehouse: Any) -> tuple[Any, sample.SampleSummary]:
    """The sample written into a fresh DuckDB warehouse."""
    return duckdb_warehouse, sample.fill(duckdb_warehouse, now=NOW)


@pytest.fixture
def make_app(sfpipe_env: dict[str, str]):
    """Build the app on a warehouse with the test's pinned settings and clock, no cache."""

    def make(warehouse: Any, **kwargs: Any) -> flask.Flask:
        kwargs.setdefault("backlog", None)
        kwargs.setdefault("cache_seconds", 0)
        kwargs.setdefault("now", lambda: NOW)
        return create_app(warehouse, settings=load_settings(), **kwargs)

    return make


@pytest.fixture
def client(filled: tuple[Any, sample.SampleSummary], make_app: Any) -> Any:
    return make_app(filled[0]).test_client()
