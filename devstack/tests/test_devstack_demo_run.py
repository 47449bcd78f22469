"""The demo's own judgements, without a devstack: org mismatch, stalls, dead-letter watch, log reasons."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from sfpipe.config import Settings
from sfpipe.errors import BadInputError
from sfpipe.events import EventType, ExtractCompleted, ObjectExtract, make_event
from sfpipe_devstack.demo.display import DemoDisplay
from sfpipe_devstack.demo.run import DEFAULT_SCALE, Demo, DemoOptions
from sfpipe_devstack.demo.tracker import RECONCILE, STAGES, RunTracker

RUN = "20261126T120000Z-0a1b2c3d"


def demo(tmp_path: Path, **options) -> Demo:
    settings = Settings(home=tmp_path / "home", mode="local")
    quiet = DemoDisplay(Console(file=io.StringIO(), force_terminal=False))
    return Demo(settings, DemoOptions(stall_seconds=60, **options), quiet)


def extracted() -> RunTracker:
    tracker = RunTracker(RUN, [*STAGES, RECONCILE])
    data = ExtractCompleted(
        run_id=RUN,
        manifest_uri="gs://m",
        objects={"Account": ObjectExtract(window_from=None, window_to="2026-11-26T12:00:00Z", rows=1, files=1)},
    )
    tracker.event(make_event(EventType.EXTRACT_COMPLETED, data, service="extractor"))
    return tracker


def test_the_demo_refuses_gcp_mode(tmp_path):
    with pytest.raises(BadInputError, match="local devstack"):
        Demo(Settings(home=tmp_path, mode="gcp"), DemoOptions())


def test_a_running_org_of_another_size_is_not_silently_used(tmp_path):
    d = demo(tmp_path, scale=5_000)
    with pytest.raises(BadInputError, match=r"seed 42 at scale 200,000; stop it with `make down`"):
        d._check_org({"seed": 42, "scale": DEFAULT_SCALE}, started=False)
    demo(tmp_path)._check_org({"seed": 7, "scale": 10_000}, started=False)  # no options: the running org is used
    demo(tmp_path)._check_org({"seed": 42, "scale": DEFAULT_SCALE}, started=True)
    with pytest.raises(BadInputError):
        demo(tmp_path, seed=3)._check_org({"seed": 42, "scale": DEFAULT_SCALE}, started=False)


def test_a_stage_whose_event_never_comes_fails_after_the_stall_limit(tmp_path):
    d = demo(tmp_path)
    tracker = extracted()
    seen: dict[str, float] = {}
    d._check_stalls(tracker, seen, now=100.0)
    assert seen == {"extract": 100.0}
    d._check_stalls(tracker, seen, now=150.0)
    assert tracker["load"].status == "waiting"
    assert not d._may_dead_letter(tracker, seen, now=102.0)
    assert d._may_dead_letter(tracker, seen, now=104.0)  # waiting 4 s after its input: look at the dead letters
    d._check_stalls(tracker, seen, now=161.0)
    assert tracker["load"].status == "failed"
    assert "loader got no event within 60 s after extract finished" in (tracker["load"].reason or "")
    assert "loader.log" in (tracker["load"].reason or "")
    assert {tracker[n].status for n in ("transform", "quality", RECONCILE)} == {"skipped"}


def test_the_reason_of_a_refused_event_comes_from_the_services_last_error(tmp_path):
    d = demo(tmp_path)
    d.stack.logs.mkdir(parents=True)
    lines = [
        {"severity": "INFO", "message": "starting"},
        {"severity": "ERROR", "message": "event 1 failed for good: unknown quality suite(s) ['x']\nTraceback…"},
        {"severity": "WARNING", "message": "later warning"},
    ]
    (d.stack.logs / "quality.log").write_text("--- start marker\n" + "\n".join(json.dumps(x) for x in lines) + "\n")
    assert d._last_error("quality") == "event 1 failed for good: unknown quality suite(s) ['x']"
    assert d._last_error("loader") is None


def test_dead_letters_are_matched_to_stages_by_the_topologys_push_subscriptions(tmp_path):
    subs = demo(tmp_path)._push_subscriptions()
    assert subs["load"] == ["loader"] and subs["transform"] == ["transform"] and subs["quality"] == ["quality"]
    assert subs["extract"] == []  # the extractor is called, not pushed to
