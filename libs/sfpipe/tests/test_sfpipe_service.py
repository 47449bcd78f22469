import pytest

from sfpipe.errors import TerminalError, TransientError
from sfpipe.events import EventType, LoadCompleted, make_event
from sfpipe.service import EventService, HandlerContext, Outcome, create_app
from sfpipe.testing.contract import EventServiceContract, push_body

RUN = "20260101T000000Z-0a1b2c3d"


def load_completed():
    return make_event(
        EventType.LOAD_COMPLETED, LoadCompleted(run_id=RUN, manifest_uri="gs://l/m", objects={}), service="loader"
    )


class Counting:
    def __init__(self, warehouse):
        self.calls = 0
        self.warehouse = warehouse
        self.fail_with: Exception | None = None

    def __call__(self, event, ctx: HandlerContext):
        if self.fail_with is not None:
            raise self.fail_with
        self.calls += 1
        # the work and the processed-event record commit together
        self.warehouse.execute(
            [
                "CREATE TABLE IF NOT EXISTS `sfpipe_ops.work` (n INT64)",
                "INSERT INTO `sfpipe_ops.work` VALUES (1)",
                *ctx.processed_statements(),
            ]
        )
        return Outcome(200, {"done": True})


class TestServiceContract(EventServiceContract):
    @pytest.fixture(autouse=True)
    def _wire(self, duckdb_warehouse, sfpipe_env):
        self.wh = duckdb_warehouse
        self.handler = Counting(duckdb_warehouse)
        self.service = EventService(
            "transform", self.handler, accepts={EventType.LOAD_COMPLETED}, warehouse=lambda: self.wh
        )
        self.event = load_completed()

    def app(self):
        return create_app(self.service)

    def valid_event(self):
        return self.event

    def side_effect_count(self):
        return self.handler.calls

    def test_transient_error_asks_for_redelivery(self):
        self.handler.fail_with = TransientError("rate limited")
        response = self.app().test_client().post("/", data=push_body(self.event), content_type="application/json")
        assert response.status_code == 503
        assert response.get_json() == {"error": "rate limited", "retry": True}
        self.handler.fail_with = None
        retry = self.app().test_client().post("/", data=push_body(self.event), content_type="application/json")
        assert retry.status_code == 200
        assert self.handler.calls == 1

    def test_terminal_error_is_recorded_and_not_acknowledged(self):
        self.handler.fail_with = TerminalError("manifest names a missing file")
        response = self.app().test_client().post("/", data=push_body(self.event), content_type="application/json")
        assert response.status_code == 422
        outcome = self.wh.scalar("SELECT outcome FROM `sfpipe_ops.processed_events`")
        assert outcome == "failed"

    def test_work_and_record_commit_together(self):
        self.app().test_client().post("/", data=push_body(self.event), content_type="application/json")
        assert self.wh.scalar("SELECT count(*) FROM `sfpipe_ops.work`") == 1
        assert self.wh.scalar("SELECT count(*) FROM `sfpipe_ops.processed_events`") == 1
