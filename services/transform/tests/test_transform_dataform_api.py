"""The cloud path through the real google-cloud-dataform client, against a local gRPC server.

The server records every request the client sends (deserialized with the library's own
message types), so the tests assert the exact compilation and invocation requests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.cloud import dataform_v1
from google.cloud.dataform_v1.services.dataform.transports.grpc import DataformGrpcTransport
from google.protobuf import timestamp_pb2

from sfpipe.errors import BadInputError, TransientError
from sfpipe_devstack.emulators import free_port
from sfpipe_transform.dataform_api import DataformApiRunner
from sfpipe_transform.result import TransformRequest

REPO = "projects/acme-data/locations/europe-west1/repositories/sfpipe"
COMPILATION = f"{REPO}/compilationResults/c-1"
INVOCATION = f"{REPO}/workflowInvocations/w-1"
RELEASE = f"{REPO}/releaseConfigs/production"
RUN_ID = "20240515T230000Z-0a1b2c3d"
SERVICE = "google.cloud.dataform.v1.Dataform"


def _ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


@dataclass
class FakeDataform:
    """What the server answers, and every request it received."""

    final_state: dataform_v1.WorkflowInvocation.State = dataform_v1.WorkflowInvocation.State.SUCCEEDED
    running_polls: int = 2
    compilation_errors: list[dataform_v1.CompilationResult.CompilationError] = field(default_factory=list)
    unavailable: set[str] = field(default_factory=set)
    requests: dict[str, list[Any]] = field(default_factory=dict)
    metadata: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    polls: int = 0

    def record(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        self.requests.setdefault(method, []).append(request)
        self.metadata.setdefault(method, []).append(dict(context.invocation_metadata()))
        if method in self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")

    def handlers(self) -> grpc.GenericRpcHandler:
        def unary(method: str, req_type: Any, resp_type: Any, answer: Any) -> grpc.RpcMethodHandler:
            def call(request: Any, context: grpc.ServicerContext) -> Any:
                self.record(method, request, context)
                return answer(request)

            return grpc.unary_unary_rpc_method_handler(
                call, request_deserializer=req_type.deserialize, response_serializer=resp_type.serialize
            )

        d = dataform_v1
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "GetReleaseConfig": unary("GetReleaseConfig", d.GetReleaseConfigRequest, d.ReleaseConfig, self.release),
                "CreateCompilationResult": unary(
                    "CreateCompilationResult", d.CreateCompilationResultRequest, d.CompilationResult, self.compile
                ),
                "QueryCompilationResultActions": unary(
                    "QueryCompilationResultActions",
                    d.QueryCompilationResultActionsRequest,
                    d.QueryCompilationResultActionsResponse,
                    self.compilation_actions,
                ),
                "CreateWorkflowInvocation": unary(
                    "CreateWorkflowInvocation", d.CreateWorkflowInvocationRequest, d.WorkflowInvocation, self.invoke
                ),
                "GetWorkflowInvocation": unary(
                    "GetWorkflowInvocation", d.GetWorkflowInvocationRequest, d.WorkflowInvocation, self.get
                ),
                "CancelWorkflowInvocation": unary(
                    "CancelWorkflowInvocation",
                    d.CancelWorkflowInvocationRequest,
                    d.CancelWorkflowInvocationResponse,
                    lambda r: d.CancelWorkflowInvocationResponse(),
                ),
                "QueryWorkflowInvocationActions": unary(
                    "QueryWorkflowInvocationActions",
                    d.QueryWorkflowInvocationActionsRequest,
                    d.QueryWorkflowInvocationActionsResponse,
                    self.invocation_actions,
                ),
            },
        )

    def release(self, request: Any) -> dataform_v1.ReleaseConfig:
        return dataform_v1.ReleaseConfig(
            name=request.name,
            git_commitish="v1.4.0",
            code_compilation_config=dataform_v1.CodeCompilationConfig(
                default_database="acme-prod", default_location="EU", vars={"raw_dataset": "sfpipe_raw"}
            ),
        )

    def compile(self, request: Any) -> dataform_v1.CompilationResult:
        result = dataform_v1.CompilationResult(request.compilation_result)
        result.name = COMPILATION
        result.compilation_errors.extend(self.compilation_errors)
        return result

    def compilation_actions(self, request: Any) -> dataform_v1.QueryCompilationResultActionsResponse:
        a = dataform_v1.CompilationResultAction
        return dataform_v1.QueryCompilationResultActionsResponse(
            compilation_result_actions=[
                a(
                    target=dataform_v1.Target(database="acme-prod", schema="sfpipe_raw", name="opportunity"),
                    declaration=a.Declaration(),
                ),
                a(
                    target=dataform_v1.Target(
                        database="acme-prod", schema="sfpipe_staging", name="stg_salesforce__opportunity"
                    ),
                    relation=a.Relation(relation_type=a.Relation.RelationType.TABLE),
                ),
                a(
                    target=dataform_v1.Target(
                        database="acme-prod", schema="sfpipe_marts", name="salesforce__opportunity_daily_history"
                    ),
                    relation=a.Relation(relation_type=a.Relation.RelationType.INCREMENTAL_TABLE),
                ),
                a(
                    target=dataform_v1.Target(
                        database="acme-prod", schema="sfpipe_assertions", name="stg_rowConditions"
                    ),
                    assertion=a.Assertion(),
                ),
            ]
        )

    def invoke(self, request: Any) -> dataform_v1.WorkflowInvocation:
        invocation = dataform_v1.WorkflowInvocation(request.workflow_invocation)
        invocation.name = INVOCATION
        invocation.state = dataform_v1.WorkflowInvocation.State.RUNNING
        return invocation

    def get(self, request: Any) -> dataform_v1.WorkflowInvocation:
        self.polls += 1
        state = self.final_state if self.polls > self.running_polls else dataform_v1.WorkflowInvocation.State.RUNNING
        return dataform_v1.WorkflowInvocation(name=request.name, state=state)

    def invocation_actions(self, request: Any) -> dataform_v1.QueryWorkflowInvocationActionsResponse:
        s = dataform_v1.WorkflowInvocationAction.State
        failed = self.final_state == dataform_v1.WorkflowInvocation.State.FAILED
        timing = {"start_time": _ts(1_715_800_000), "end_time": _ts(1_715_800_012)}
        w = dataform_v1.WorkflowInvocationAction
        return dataform_v1.QueryWorkflowInvocationActionsResponse(
            workflow_invocation_actions=[
                w(
                    target=dataform_v1.Target(schema="sfpipe_staging", name="stg_salesforce__opportunity"),
                    state=s.SUCCEEDED,
                    invocation_timing=timing,
                ),
                w(
                    target=dataform_v1.Target(schema="sfpipe_assertions", name="stg_rowConditions"),
                    state=s.FAILED if failed else s.SUCCEEDED,
                    failure_reason="Assertion failed: query returned 3 row(s)." if failed else "",
                ),
                w(
                    target=dataform_v1.Target(schema="sfpipe_marts", name="salesforce__opportunity_daily_history"),
                    state=s.SKIPPED if failed else s.SUCCEEDED,
                ),
            ]
        )


@pytest.fixture
def fake() -> Iterator[FakeDataform]:
    yield FakeDataform()


@pytest.fixture
def client(fake: FakeDataform) -> Iterator[dataform_v1.DataformClient]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((fake.handlers(),))
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield dataform_v1.DataformClient(transport=DataformGrpcTransport(channel=channel))
    channel.close()
    server.stop(0)


def runner(client: dataform_v1.DataformClient, **kwargs: Any) -> DataformApiRunner:
    return DataformApiRunner(client, REPO, "acme-data", poll_seconds=0.0, sleep=lambda s: None, **kwargs)


def request(**kwargs: Any) -> TransformRequest:
    return TransformRequest(run_id=RUN_ID, as_of=dt.date(2024, 5, 15), **kwargs)


def test_compiles_the_commitish_with_as_of_and_invokes_it(client, fake: FakeDataform) -> None:
    result = runner(client, service_account="dataform@acme-data.iam.gserviceaccount.com").run(request())

    assert fake.requests["CreateCompilationResult"] == [
        dataform_v1.CreateCompilationResultRequest(
            parent=REPO,
            compilation_result=dataform_v1.CompilationResult(
                git_commitish="main",
                code_compilation_config=dataform_v1.CodeCompilationConfig(
                    default_database="acme-data", vars={"as_of": "2024-05-15"}
                ),
            ),
        )
    ]
    assert fake.requests["CreateWorkflowInvocation"] == [
        dataform_v1.CreateWorkflowInvocationRequest(
            parent=REPO,
            workflow_invocation=dataform_v1.WorkflowInvocation(
                compilation_result=COMPILATION,
                invocation_config=dataform_v1.InvocationConfig(
                    service_account="dataform@acme-data.iam.gserviceaccount.com"
                ),
            ),
        )
    ]
    assert fake.requests["QueryCompilationResultActions"] == [
        dataform_v1.QueryCompilationResultActionsRequest(name=COMPILATION)
    ]
    assert fake.requests["GetWorkflowInvocation"] == [dataform_v1.GetWorkflowInvocationRequest(name=INVOCATION)] * 3
    assert fake.requests["QueryWorkflowInvocationActions"] == [
        dataform_v1.QueryWorkflowInvocationActionsRequest(name=INVOCATION)
    ]
    assert "GetReleaseConfig" not in fake.requests
    assert fake.metadata["CreateCompilationResult"][0]["x-goog-request-params"] == f"parent={REPO}"

    assert result.succeeded
    assert result.invocation == INVOCATION
    by_name = {a.name: a for a in result.actions}
    assert by_name["sfpipe_staging.stg_salesforce__opportunity"].kind == "table"
    assert by_name["sfpipe_staging.stg_salesforce__opportunity"].seconds == 12.0
    assert by_name["sfpipe_marts.salesforce__opportunity_daily_history"].kind == "incremental"
    assert by_name["sfpipe_assertions.stg_rowConditions"].kind == "assertion"
    assert result.completed_event().invocation == INVOCATION


def test_release_config_supplies_commitish_and_settings(client, fake: FakeDataform) -> None:
    runner(client, release_config=RELEASE).run(
        request(full_refresh=True, actions=("sfpipe_marts.salesforce__sales_snapshot",), include_dependencies=True)
    )

    assert fake.requests["GetReleaseConfig"] == [dataform_v1.GetReleaseConfigRequest(name=RELEASE)]
    assert fake.requests["CreateCompilationResult"][0].compilation_result == dataform_v1.CompilationResult(
        git_commitish="v1.4.0",
        code_compilation_config=dataform_v1.CodeCompilationConfig(
            default_database="acme-prod",
            default_location="EU",
            vars={"raw_dataset": "sfpipe_raw", "as_of": "2024-05-15"},
        ),
    )
    assert fake.requests["CreateWorkflowInvocation"][0].workflow_invocation.invocation_config == (
        dataform_v1.InvocationConfig(
            included_targets=[dataform_v1.Target(schema="sfpipe_marts", name="salesforce__sales_snapshot")],
            transitive_dependencies_included=True,
            fully_refresh_incremental_tables_enabled=True,
        )
    )


def test_failed_invocation_reports_each_action(client, fake: FakeDataform) -> None:
    fake.final_state = dataform_v1.WorkflowInvocation.State.FAILED
    result = runner(client).run(request())

    assert not result.succeeded
    statuses = {a.name: (a.status, a.error) for a in result.actions}
    assert statuses["sfpipe_assertions.stg_rowConditions"] == ("failed", "Assertion failed: query returned 3 row(s).")
    assert statuses["sfpipe_marts.salesforce__opportunity_daily_history"] == ("skipped", None)
    event = result.failed_event()
    assert "stg_rowConditions" in event.reason and event.invocation == INVOCATION


def test_compilation_errors_fail_without_invoking(client, fake: FakeDataform) -> None:
    fake.compilation_errors = [
        dataform_v1.CompilationResult.CompilationError(message="ref 'nope' not found", path="definitions/x.sqlx")
    ]
    result = runner(client).run(request())

    assert not result.succeeded
    assert "definitions/x.sqlx: ref 'nope' not found" in result.reason
    assert "CreateWorkflowInvocation" not in fake.requests


def test_unavailable_service_is_transient(client, fake: FakeDataform) -> None:
    fake.unavailable = {"CreateCompilationResult"}
    with pytest.raises(TransientError, match="CreateCompilationResult"):
        DataformApiRunner(client, REPO, "acme-data", poll_seconds=0.0, sleep=lambda s: None).run(request())


def test_invocation_that_never_ends_is_cancelled(client, fake: FakeDataform) -> None:
    fake.running_polls = 10**9
    with pytest.raises(TransientError, match="did not end"):
        runner(client, timeout_seconds=0.0).run(request())
    assert fake.requests["CancelWorkflowInvocation"] == [dataform_v1.CancelWorkflowInvocationRequest(name=INVOCATION)]


def test_repository_name_is_checked() -> None:
    with pytest.raises(BadInputError, match="SFPIPE_DATAFORM_REPOSITORY"):
        DataformApiRunner(dataform_v1.DataformClient.__new__(dataform_v1.DataformClient), "sfpipe", "p")
