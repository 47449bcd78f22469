"""The demo's run tracker: events, ops rows and the extractor's status merged into one stage table."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

from rich.console import Console

from sfpipe.events import (
    ActionReport,
    EventType,
    ExtractCompleted,
    LoadCompleted,
    LoadFailed,
    ObjectExtract,
    ObjectLoad,
    QualityCompleted,
    SuiteResult,
    TransformCompleted,
    TransformFailed,
    make_event,
)
from sfpipe.topology import load_topology
from sfpipe_devstack.demo.display import DemoDisplay
from sfpipe_devstack.demo.summary import Summary, headline, money, reconcile_rows
from sfpipe_devstack.demo.tracker import RECONCILE, STAGES, RunTracker
from sfpipe_devstack.demo.watch import ops_subscriptions

RUN = "20261126T120000Z-0a1b2c3d"
OTHER = "20261126T110000Z-ffffffff"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def extract_done(run_id: str = RUN, failed: dict[str, str] | None = None):
    objects = {
        "Account": ObjectExtract(window_from=None, window_to=T0, rows=100, files=1),
        "Contact": ObjectExtract(window_from=None, window_to=T0, rows=250, files=1),
    }
    data = ExtractCompleted(
        run_id=run_id,
        manifest_uri=f"gs://lake/salesforce/_runs/{run_id}/_manifest.json",
        objects=objects,
        failed=failed or {},
    )
    return make_event(EventType.EXTRACT_COMPLETED, data, service="extractor")


def load_done():
    objects = {"Account": ObjectLoad(inserted=100, updated=0, deleted=2, seconds=0.5)}
    return make_event(
        EventType.LOAD_COMPLETED, LoadCompleted(run_id=RUN, manifest_uri="gs://m", objects=objects), service="loader"
    )


def transform_done():
    actions = [ActionReport(name="sfpipe_marts.salesforce__sales_snapshot", status="succeeded", rows=1)]
    return make_event(
        EventType.TRANSFORM_COMPLETED, TransformCompleted(run_id=RUN, actions=actions), service="transform"
    )


def quality_done(failed: int = 0):
    suites = [SuiteResult(suite="raw", passed=10, failed=failed), SuiteResult(suite="marts", passed=5, failed=0)]
    return make_event(EventType.QUALITY_COMPLETED, QualityCompleted(run_id=RUN, suites=suites), service="quality")


def row(stage: str, status: str, start: float, end: float | None, rows: int | None = None, detail=None):
    return {
        "stage": stage,
        "status": status,
        "started_at": at(start),
        "ended_at": at(end) if end is not None else None,
        "rows": rows,
        "detail": json.dumps(detail) if detail is not None else None,
    }


def test_a_run_that_goes_through_every_stage():
    tracker = RunTracker(RUN)
    tracker["extract"].started_at = T0
    tracker.extractor_status(
        {
            "status": "running",
            "started_at": T0.isoformat(),
            "progress": {"Account": {"status": "done", "rows": 100}, "Contact": {"status": "running", "rows": 40}},
        }
    )
    assert tracker["extract"].status == "running"
    assert tracker["extract"].progress == "1/2 objects" and tracker["extract"].rows == 140
    assert tracker.current() == "extract" and not tracker.finished

    assert tracker.event(extract_done())
    assert tracker["extract"].status == "succeeded" and tracker["extract"].rows == 350
    assert tracker.objects_extracted == 2

    tracker.ops_rows([row("load", "running", 2.0, None)])
    assert tracker["load"].status == "running" and tracker["load"].started_at == at(2.0)
    tracker.loads(1, tracker.objects_extracted)
    assert tracker["load"].progress == "1/2 objects"
    assert tracker.event(load_done())
    tracker.ops_rows([row("load", "succeeded", 2.0, 5.5, 350, {"path": "warehouse", "objects": {}})])
    assert tracker["load"].status == "succeeded" and tracker["load"].seconds == 3.5 and tracker["load"].rows == 350
    assert tracker["load"].recorded

    tracker.event(transform_done())
    tracker.ops_rows([row("transform", "succeeded", 6.0, 9.0, 1234, {"actions": 66})])
    tracker.ops_rows([row("quality", "running", 9.5, None)])
    assert tracker.current() == "quality"
    tracker.event(quality_done())
    tracker.ops_rows([row("quality", "succeeded", 9.5, 15.0, 15)])
    assert tracker.finished and tracker.ok and tracker.failures() == []
    assert tracker["quality"].seconds == 5.5
    assert [e.type for e in tracker.events] == [
        "sfpipe.extract.completed",
        "sfpipe.load.completed",
        "sfpipe.transform.completed",
        "sfpipe.quality.completed",
    ]
    result = tracker.as_json()
    assert list(result) == ["extract", "load", "transform", "quality"]
    assert result["quality"]["seconds"] == 5.5 and result["load"]["rows"] == 350


def test_events_of_other_runs_are_ignored():
    tracker = RunTracker(RUN)
    assert not tracker.event(extract_done(OTHER))
    assert tracker["extract"].status == "waiting" and tracker.events == []


def test_a_partial_extract_fails_the_stage_but_the_chain_goes_on():
    tracker = RunTracker(RUN)
    tracker.extractor_status(
        {
            "status": "partial",
            "started_at": T0.isoformat(),
            "ended_at": at(4).isoformat(),
            "objects": {"Account": {"status": "done", "rows": 100}, "Order": {"status": "failed", "rows": 0}},
            "failed": {"Order": "400 MALFORMED_QUERY"},
        }
    )
    extract = tracker["extract"]
    assert extract.status == "failed" and extract.final
    assert extract.reason == "1 of 2 objects failed: Order: 400 MALFORMED_QUERY"
    assert tracker["load"].status == "waiting"  # the manifest exists: the loader still loads what was extracted
    assert tracker.failures() == [("extract", extract.reason)]


def test_a_failed_load_skips_what_follows():
    tracker = RunTracker(RUN)
    tracker.event(extract_done())
    event = make_event(
        EventType.LOAD_FAILED,
        LoadFailed(run_id=RUN, manifest_uri="gs://m", reason="Account: bad file", objects={"Account": "bad file"}),
        service="loader",
    )
    tracker.event(event)
    assert tracker["load"].status == "failed" and tracker["load"].reason == "Account: bad file"
    assert tracker["transform"].status == "skipped" and tracker["quality"].status == "skipped"
    assert tracker.finished and not tracker.ok
    assert [s for s, _ in tracker.failures()] == ["load"]


def test_an_erroring_stage_is_retrying_until_its_event_is_dead_lettered():
    tracker = RunTracker(RUN)
    tracker.event(extract_done())
    tracker.event(load_done())
    tracker.ops_rows([row("transform", "error", 6.0, 6.5, detail={"error": "TransientError: warehouse busy"})])
    assert tracker["transform"].status == "retrying"
    assert tracker["transform"].reason == "TransientError: warehouse busy"
    tracker.dead_lettered({"projects/p/subscriptions/loader": 1})  # not this stage's subscription
    assert tracker["transform"].status == "retrying"
    tracker.dead_lettered({"transform": 1})
    assert tracker["transform"].status == "failed"
    assert "dead-lettered" in (tracker["transform"].reason or "") and "warehouse busy" in (
        tracker["transform"].reason or ""
    )
    assert tracker["quality"].status == "skipped"


def test_quality_with_failures_waits_for_its_row_to_say_error_or_warning():
    tracker = RunTracker(RUN)
    tracker.event(extract_done())
    tracker.event(load_done())
    tracker.event(transform_done())
    tracker.event(quality_done(failed=2))
    assert not tracker["quality"].done  # warnings only, or errors? the stage's row says
    tracker.ops_rows([row("quality", "succeeded", 9.0, 12.0, 17, {"failing_errors": 0, "failing_warnings": 2})])
    assert tracker["quality"].status == "succeeded" and tracker.ok

    failing = RunTracker(RUN)
    failing.event(quality_done(failed=2))
    failing.ops_rows([row("quality", "failed", 9.0, 12.0, 17, {"failing_errors": 2})])
    assert failing["quality"].status == "failed"
    assert failing["quality"].reason == "2 error-severity expectations failed"


def test_an_event_fixes_the_outcome_that_later_ops_rows_do_not_change():
    tracker = RunTracker(RUN)
    tracker.event(extract_done())
    tracker.event(load_done())
    tracker.ops_rows([row("load", "running", 2.0, None)])  # a stale read after the event
    assert tracker["load"].status == "succeeded"


def test_ops_subscriptions_are_the_topologys_ops_pull_subscriptions():
    names = ops_subscriptions(load_topology())
    assert "sfpipe-extract-completed-ops" in names and "sfpipe-quality-completed-ops" in names
    assert "sfpipe-load-failed-ops" in names and "sfpipe-transform-failed-ops" in names
    assert all(n.endswith("-ops") for n in names)
    assert "transform" not in names and "dead-letter" not in names


def test_lines_for_a_log_print_each_change_once_with_the_stage_rows():
    out = io.StringIO()
    display = DemoDisplay(Console(file=out, width=200, force_terminal=False))
    tracker = RunTracker(RUN)
    tracker["extract"].started_at = T0
    tracker.extractor_status({"status": "running", "progress": {"Account": {"status": "running", "rows": 5}}})
    with display.following(tracker):
        display.update(tracker)
        display.update(tracker)
        tracker.event(extract_done())
        tracker.event(load_done())  # the load's row is not read yet: its line waits for the rows
        display.update(tracker)
        tracker.ops_rows([row("load", "succeeded", 2.0, 5.5, 350)])
        display.update(tracker)
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines[0] == "extract   running"
    assert lines[1].startswith("extract   succeeded in ") and lines[1].endswith(", 350 rows")
    assert lines[2] == "load      succeeded in 3.5 s, 350 rows"
    assert len(lines) == 3


def test_headline_numbers_are_formatted_for_reading():
    assert money(4_912_345) == "$4.9M" and money(560_600) == "$560.6K" and money(980) == "$980" and money(None) == "–"
    shown = dict(
        headline(
            {
                "total_bookings_amount": 4_900_000.0,
                "total_number_bookings": 261,
                "total_win_percent": 46.63,
                "unrelated": 1,
            }
        )
    )
    assert shown == {"bookings": "$4.9M", "deals won": "261", "win rate": "46.6%"}


def test_the_reconcile_stage_runs_next_to_transform_after_the_load():
    tracker = RunTracker(RUN, [*STAGES, RECONCILE])
    tracker.event(extract_done())
    assert tracker.pending() == ["load"]
    tracker.event(load_done())
    assert tracker.pending() == ["transform", RECONCILE]
    tracker.ops_rows([row(RECONCILE, "running", 6.0, None)])
    failed = make_event(
        EventType.TRANSFORM_FAILED, TransformFailed(run_id=RUN, reason="assertion failed"), service="transform"
    )
    tracker.event(failed)
    assert tracker["quality"].status == "skipped"  # after transform
    assert tracker[RECONCILE].status == "running"  # beside it: not skipped
    assert not tracker.finished
    detail = {"differences": 0, "objects": {"Account": {"mode": "full", "missing": 0, "extra": 0, "stale": 0}}}
    tracker.ops_rows([row(RECONCILE, "succeeded", 6.0, 9.0, 2000, detail)])
    assert tracker.finished and tracker[RECONCILE].status == "succeeded" and tracker[RECONCILE].rows == 2000
    assert [s for s, _ in tracker.failures()] == ["transform"]
    assert reconcile_rows(tracker[RECONCILE].detail) == [
        {"object": "Account", "mode": "full", "missing": 0, "extra": 0, "stale": 0}
    ]


def test_a_failed_load_skips_reconcile_too_and_dead_letters_name_the_reconciler():
    tracker = RunTracker(RUN, [*STAGES, RECONCILE])
    tracker.event(extract_done())
    tracker.event(load_done())
    tracker.event(transform_done())
    ended = tracker.dead_lettered({"reconciler": 1}, {"transform": ["transform"], RECONCILE: ["reconciler"]})
    assert ended == [RECONCILE] and tracker[RECONCILE].status == "failed"
    assert tracker["quality"].status == "waiting"

    other = RunTracker(RUN, [*STAGES, RECONCILE])
    other.fail("load", "the loader process is no longer running")
    assert {n: other[n].status for n in other.order} == {
        "extract": "waiting",
        "load": "failed",
        "transform": "skipped",
        "quality": "skipped",
        RECONCILE: "skipped",
    }


def test_the_summary_says_whether_reconciliation_found_a_difference():
    out = io.StringIO()
    display = DemoDisplay(Console(file=out, width=200, force_terminal=False))
    clean = Summary(reconciliation=[{"object": "Account", "missing": 0, "extra": 0, "stale": 0, "source_rows": 50}])
    display._reconciliation(clean)
    differing = Summary(reconciliation=[{"object": "Case", "missing": 2, "extra": 0, "stale": 1}])
    display._reconciliation(differing)
    display._reconciliation(Summary(reconciliation_note="not run"))
    assert out.getvalue().splitlines() == [
        "Reconciliation: no difference — 1 objects compared, 50 source records",
        "Reconciliation: 1 objects differ: Case (missing 2, extra 0, stale 1)",
        "Reconciliation: not run",
    ]
