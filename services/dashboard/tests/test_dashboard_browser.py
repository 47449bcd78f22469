"""The page in headless Chromium: charts drawn from the API, empty states before any run; screenshots kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sfpipe_dashboard import browser
from sfpipe_dashboard.server import serving
from sfpipe_devstack.backlog import Backlog

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "dashboard"
WINDOW = (1600, 1100)

pytestmark = pytest.mark.integration


def backlog() -> list[Backlog]:
    return [
        Backlog(
            "dead-letter", 3, by_source={"projects/p/subscriptions/transform": 2, "projects/p/subscriptions/loader": 1}
        ),
        Backlog("sfpipe-load-failed-alerts", 1),
        Backlog("sfpipe-transform-failed-alerts", 0),
        Backlog("sfpipe-quality-alert-alerts", 0),
    ]


def test_filled_dashboard_draws_every_chart(filled, make_app):
    binary = browser.require_chromium()
    app = make_app(filled[0], backlog=backlog)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    with serving(app) as server:
        rendered = browser.render(server.url + "/", screenshot=shot, window=WINDOW, binary=binary)
    report = browser.inspect_dom(rendered.dom)
    assert report.charts_drawn() == list(browser.CHART_IDS), (report.plot_containers, report.main_svgs)
    for chart in browser.CHART_IDS:
        assert report.plot_containers[chart] == 1, chart
        assert report.main_svgs[chart] >= 2, chart  # Plotly draws the plot and its overlay as two main SVGs
    assert set(report.panel_states.values()) == {"ok"}, report.panel_states
    assert report.attributes["health"]["data-status"] == "attention"  # three dead letters wait
    assert 'data-rendered="' in rendered.dom  # the page finished drawing from /api/dashboard
    assert browser.png_size(shot) == WINDOW
    assert shot.stat().st_size > 50_000  # a drawn page, not a blank one


def test_empty_dashboard_shows_what_fills_each_panel(duckdb_warehouse, make_app):
    binary = browser.require_chromium()
    shot = ARTIFACTS / "dashboard-empty.png"
    shot.unlink(missing_ok=True)
    with serving(make_app(duckdb_warehouse)) as server:
        rendered = browser.render(server.url + "/", screenshot=shot, window=WINDOW, binary=binary)
    report = browser.inspect_dom(rendered.dom)
    assert report.charts_drawn() == []
    assert set(report.panel_states.values()) == {"empty"}, report.panel_states
    assert "sfpipe demo" in rendered.dom and "Waiting for the first run" in rendered.dom
    assert browser.png_size(shot) == WINDOW


def test_inspect_dom_counts_only_inside_each_chart():
    dom = (
        '<html><body><div id="panel-runs" data-state="ok"><div id="chart-runs"><div class="plot-container plotly">'
        '<svg class="main-svg"><g><path d="M0"/></g></svg><br><svg class="main-svg"></svg></div></div></div>'
        '<div id="chart-cdc"></div><div class="plot-container"><svg class="main-svg"></svg></div></body></html>'
    )
    report = browser.inspect_dom(dom, ("chart-runs", "chart-cdc"))
    assert report.plot_containers == {"chart-runs": 1, "chart-cdc": 0}
    assert report.main_svgs == {"chart-runs": 2, "chart-cdc": 0}
    assert report.panel_states == {"runs": "ok"}
    assert report.charts_drawn() == ["chart-runs"]


def test_render_reports_a_missing_binary(tmp_path: Path):
    with pytest.raises(browser.BrowserError, match="exited|did not"):
        browser.render("http://127.0.0.1:9/", binary=str(_failing_binary(tmp_path)), timeout=10)


def _failing_binary(tmp_path: Path) -> Any:
    script = tmp_path / "chromium"
    script.write_text("#!/bin/sh\necho 'no display' >&2\nexit 3\n")
    script.chmod(0o755)
    return script
