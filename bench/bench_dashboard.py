"""The dashboard's cost per refresh, its payload as the warehouse grows, and the page's render time.

- refresh overhead: one uncached ``/api/dashboard`` against the very SQL it sends, replayed on
  a bare DuckDB connection (the reference). The ratio is what the adapter, the panels and
  the JSON add on top of the warehouse's own work.
- payload growth: the JSON the page downloads every refresh, at scale 1 and at scale 30
  (≈ 330,000 raw rows). Panels return aggregates and bounded series, so it must not grow
  with the data.
- render: headless Chromium drawing the filled page (fetch + five Plotly charts) against
  the same Chromium loading an empty page (process start-up, the reference).

Each warehouse is measured in its own interpreter; the memory figure is how far six refreshes
raise the process's peak beyond what writing the sample already took.
"""

from __future__ import annotations

import textwrap
import time

from bench.harness import BenchResult, run_isolated

SCALES = (1, 30)

CHILD = textwrap.dedent(
    """
    import json, resource, statistics, tempfile, time
    from pathlib import Path
    import duckdb
    from sfpipe.config import load_settings
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
    from sfpipe.adapters.warehouse.transpile import to_duckdb
    from sfpipe_dashboard import sample
    from sfpipe_dashboard.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    wh = DuckDBWarehouse(EmbeddedSession(folder / "w.duckdb"), scratch=folder / "scratch")
    summary = sample.fill(wh, scale=SCALE)
    raw_rows = sum(summary.raw_rows.values())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    sent = []
    query = wh.query
    def recording(sql):
        sent.append(sql)
        return query(sql)
    wh.query = recording

    app = create_app(wh, backlog=None, cache_seconds=0, settings=load_settings())
    client = app.test_client()
    client.get("/api/dashboard")  # warm: imports, first transpile
    refresh = []
    for _ in range(5):
        sent.clear()
        started = time.perf_counter()
        response = client.get("/api/dashboard")
        refresh.append(time.perf_counter() - started)
        assert response.status_code == 200
    payload = len(response.get_data())
    statements = list(sent)
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - rss_before

    conn = wh.session.conn
    replay = []
    for _ in range(5):
        started = time.perf_counter()
        for sql in statements:
            conn.cursor().sql(to_duckdb(sql)[-1]).to_arrow_table()
        replay.append(time.perf_counter() - started)

    cached = create_app(wh, backlog=None, cache_seconds=60, settings=load_settings()).test_client()
    cached.get("/api/dashboard")
    started = time.perf_counter()
    for _ in range(20):
        cached.get("/api/dashboard")
    cached_s = (time.perf_counter() - started) / 20
    wh.close()
    result = {
        "raw_rows": raw_rows, "queries": len(statements), "payload_bytes": payload,
        "refresh_s": statistics.median(refresh), "replay_s": statistics.median(replay), "cached_s": cached_s,
        "refresh_rss_growth_mb": rss_growth,
    }
    """
)


def _render_times() -> dict[str, float]:
    import tempfile
    from pathlib import Path

    import flask

    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
    from sfpipe.config import load_settings
    from sfpipe_dashboard import browser, sample
    from sfpipe_dashboard.app import create_app
    from sfpipe_dashboard.server import serving

    if browser.find_chromium() is None:
        return {}
    folder = Path(tempfile.mkdtemp(prefix="bench-dashboard-page-"))
    wh = DuckDBWarehouse(EmbeddedSession(folder / "w.duckdb"), scratch=folder / "scratch")
    sample.fill(wh)
    blank = flask.Flask("blank")
    blank.add_url_rule("/", "blank", lambda: "<!doctype html><html><body>blank</body></html>")
    times: dict[str, list[float]] = {"page": [], "blank": []}
    with serving(create_app(wh, backlog=None, settings=load_settings())) as page, serving(blank) as empty:
        for _ in range(3):
            for key, url in (("page", page.url + "/"), ("blank", empty.url + "/")):
                started = time.perf_counter()
                rendered = browser.render(url)
                times[key].append(time.perf_counter() - started)
                if key == "page":
                    assert len(browser.inspect_dom(rendered.dom).charts_drawn()) == len(browser.CHART_IDS)
    wh.close()
    return {key: sorted(values)[len(values) // 2] for key, values in times.items()}


def run() -> BenchResult:
    """Measure at both scales and render the page."""
    result = BenchResult("dashboard")
    runs = {scale: run_isolated(f"SCALE = {scale}\n" + CHILD) for scale in SCALES}
    for scale, figures in runs.items():
        result.figures[f"scale_{scale}"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    big = runs[SCALES[-1]]
    small = runs[SCALES[0]]
    result.target(
        "refresh_over_raw_sql_ratio", big["refresh_s"] / big["replay_s"], 2.0, higher_is_better=False, unit="x"
    )
    result.target(
        "payload_growth_30x_data", big["payload_bytes"] / small["payload_bytes"], 1.2, higher_is_better=False, unit="x"
    )
    result.target("payload_kib", big["payload_bytes"] / 1024, 256, higher_is_better=False, unit="KiB")
    # peak_rss_mb includes writing the sample; the growth past it is what refreshing costs
    result.target("refresh_rss_growth_mb", big["refresh_rss_growth_mb"], 64, higher_is_better=False, unit="MiB")
    render = _render_times()
    if render:
        result.figures["render_s"] = {k: round(v, 3) for k, v in render.items()}
        result.target(
            "render_over_blank_ratio", render["page"] / render["blank"], 4.0, higher_is_better=False, unit="x"
        )
    return result
