"""Render a page in headless Chromium and look at what its scripts built.

The dashboard test and the end-to-end test both use this: Debian's ``chromium`` renders
the page with a virtual-time budget (so that the fetches and Plotly's drawing finish
before the DOM is dumped), writes a screenshot, and :func:`inspect_dom` counts what each
chart container holds. No driver, no network: one process per look, a fresh profile
each time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)

CHART_IDS = ("chart-runs", "chart-stages", "chart-bookings", "chart-owners", "chart-cdc")
"""The dashboard's Plotly charts, by element id."""

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class BrowserError(RuntimeError):
    """Chromium is missing or did not render the page."""


def find_chromium() -> str | None:
    """The Chromium binary on this machine, or None."""
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@dataclass
class Rendered:
    """What Chromium produced for one page."""

    url: str
    dom: str
    screenshot: Path | None
    log: str = ""


@dataclass
class PageReport:
    """What the rendered DOM holds, per chart and per panel."""

    plot_containers: dict[str, int] = field(default_factory=dict)
    main_svgs: dict[str, int] = field(default_factory=dict)
    panel_states: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)

    def charts_drawn(self) -> list[str]:
        """The chart ids that hold a Plotly plot with its SVG."""
        return [cid for cid, n in self.plot_containers.items() if n > 0 and self.main_svgs.get(cid, 0) > 0]


def _run(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="sfpipe-chromium-") as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
        env = {**os.environ, "HOME": profile}
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            msg = f"chromium did not finish within {timeout:.0f}s: {' '.join(cmd)}"
            raise BrowserError(msg) from exc


def render(
    url: str,
    *,
    screenshot: Path | None = None,
    window: tuple[int, int] = (1600, 1100),
    budget_ms: int = 20_000,
    timeout: float = 180.0,
    binary: str | None = None,
) -> Rendered:
    """Load ``url`` headless, let its scripts run for ``budget_ms`` of virtual time, dump the DOM.

    With ``screenshot`` a PNG of the window is written there too (a second load of the page,
    since Chromium writes either a DOM dump or a screenshot per run).
    """
    chromium = binary or find_chromium()
    if chromium is None:
        msg = "chromium is not installed (make chromium, or apt-get install chromium)"
        raise BrowserError(msg)
    common = [f"--window-size={window[0]},{window[1]}", f"--virtual-time-budget={budget_ms}"]
    dumped = _run(chromium, [*common, "--dump-dom", url], timeout)
    if dumped.returncode != 0 or "<html" not in dumped.stdout.lower():
        msg = f"chromium exited {dumped.returncode} without a DOM for {url}:\n{dumped.stderr[-3000:]}"
        raise BrowserError(msg)
    log = dumped.stderr
    shot: Path | None = None
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        taken = _run(chromium, [*common, f"--screenshot={screenshot.resolve()}", url], timeout)
        log += taken.stderr
        if taken.returncode != 0 or not screenshot.exists():
            msg = f"chromium exited {taken.returncode} without a screenshot for {url}:\n{taken.stderr[-3000:]}"
            raise BrowserError(msg)
        shot = screenshot
    return Rendered(url=url, dom=dumped.stdout, screenshot=shot, log=log)


class _DomWalker(HTMLParser):
    def __init__(self, chart_ids: tuple[str, ...]) -> None:
        super().__init__(convert_charrefs=True)
        self.chart_ids = chart_ids
        self.report = PageReport(plot_containers=dict.fromkeys(chart_ids, 0), main_svgs=dict.fromkeys(chart_ids, 0))
        self.depth = 0
        self.inside: list[tuple[str, int]] = []

    def _enter(self, tag: str, attrs: list[tuple[str, str | None]], *, closes: bool) -> None:
        values = {k: v or "" for k, v in attrs}
        element_id = values.get("id", "")
        classes = set(values.get("class", "").split())
        if element_id:
            self.report.attributes[element_id] = values
            if element_id.startswith("panel-") and "data-state" in values:
                self.report.panel_states[element_id.removeprefix("panel-")] = values["data-state"]
        for chart, _ in self.inside:
            if "plot-container" in classes:
                self.report.plot_containers[chart] += 1
            if tag == "svg" and "main-svg" in classes:
                self.report.main_svgs[chart] += 1
        if closes or tag in _VOID:
            return
        self.depth += 1
        if element_id in self.chart_ids:
            self.inside.append((element_id, self.depth))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._enter(tag, attrs, closes=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._enter(tag, attrs, closes=True)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while self.inside and self.inside[-1][1] >= self.depth:
            self.inside.pop()
        self.depth -= 1


def inspect_dom(dom: str, chart_ids: tuple[str, ...] = CHART_IDS) -> PageReport:
    """Count Plotly's ``.plot-container`` and ``svg.main-svg`` under each chart id; read panel states."""
    walker = _DomWalker(chart_ids)
    walker.feed(dom)
    walker.close()
    return walker.report


def require_chromium() -> str:
    """For tests: the Chromium binary; a loud skip when it is missing here, a failure in CI."""
    import pytest

    binary = find_chromium()
    if binary is not None:
        return binary
    reason = (
        "CHROMIUM IS NOT INSTALLED: the dashboard's browser test did not run. "
        "`make chromium` (apt-get install chromium) installs it; `make test` does so first."
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        msg = f"{path} is not a PNG"
        raise BrowserError(msg)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
