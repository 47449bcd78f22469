"""The cloud path: Google's Dataform service compiles and runs the project.

One compilation result per run, with the run's ``as_of`` among the compile vars, then one
workflow invocation of it, followed until it ends. A release config, when set, supplies
the git commitish and the compile settings; the compilation is still created from that
commitish so that the run's own vars can be added to the release config's.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from google.api_core import exceptions as gexc
from google.cloud import dataform_v1

from sfpipe.errors import BadInputError, TransientError
from sfpipe.events import ActionReport
from sfpipe_transform.result import TransformRequest, TransformResult

log = logging.getLogger(__name__)

_DONE = {
    dataform_v1.WorkflowInvocation.State.SUCCEEDED,
    dataform_v1.WorkflowInvocation.State.FAILED,
    dataform_v1.WorkflowInvocation.State.CANCELLED,
}
_ACTION_STATUS: dict[int, Literal["succeeded", "failed", "skipped"]] = {
    dataform_v1.WorkflowInvocationAction.State.SUCCEEDED: "succeeded",
    dataform_v1.WorkflowInvocationAction.State.FAILED: "failed",
    dataform_v1.WorkflowInvocationAction.State.SKIPPED: "skipped",
    dataform_v1.WorkflowInvocationAction.State.DISABLED: "skipped",
    dataform_v1.WorkflowInvocationAction.State.CANCELLED: "skipped",
    dataform_v1.WorkflowInvocationAction.State.PENDING: "skipped",
    dataform_v1.WorkflowInvocationAction.State.RUNNING: "failed",
}
_RETRYABLE = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.TooManyRequests,
    gexc.Aborted,
)


def _target_name(target: dataform_v1.Target) -> str:
    return f"{target.schema}.{target.name}"


def _kind(action: dataform_v1.CompilationResultAction) -> str:
    if "assertion" in action:
        return "assertion"
    if "operations" in action:
        return "operation"
    if "declaration" in action:
        return "declaration"
    if "relation" in action:
        relation_type = action.relation.relation_type
        kinds = {
            dataform_v1.CompilationResultAction.Relation.RelationType.VIEW: "view",
            dataform_v1.CompilationResultAction.Relation.RelationType.INCREMENTAL_TABLE: "incremental",
        }
        return kinds.get(relation_type, "table")
    return "table"


@dataclass
class DataformApiRunner:
    """Runs the project through the Dataform API of one repository."""

    client: dataform_v1.DataformClient
    repository: str
    project: str
    release_config: str = ""
    git_commitish: str = "main"
    service_account: str = ""
    timeout_seconds: float = 3600.0
    poll_seconds: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    name: str = "dataform"

    def __post_init__(self) -> None:
        if not self.repository.startswith("projects/") or "/repositories/" not in self.repository:
            msg = (
                f"SFPIPE_DATAFORM_REPOSITORY={self.repository!r}: expected "
                "projects/<project>/locations/<region>/repositories/<name>"
            )
            raise BadInputError(msg, field="dataform_repository")

    def _call(self, what: str, method: Callable[..., object], **kwargs: object) -> object:
        try:
            return method(**kwargs)
        except _RETRYABLE as exc:
            msg = f"Dataform API {what} failed, retry later: {exc}"
            raise TransientError(msg) from exc
        except gexc.GoogleAPICallError as exc:
            msg = f"Dataform API {what} was refused: {exc}"
            raise BadInputError(msg, field="dataform") from exc

    def compilation_request(self, request: TransformRequest) -> dataform_v1.CreateCompilationResultRequest:
        """The compilation result to create: the commitish and compile config of this run."""
        commitish = self.git_commitish
        config = dataform_v1.CodeCompilationConfig()
        if self.release_config:
            release = self._call("GetReleaseConfig", self.client.get_release_config, name=self.release_config)
            assert isinstance(release, dataform_v1.ReleaseConfig)
            commitish = release.git_commitish
            config = dataform_v1.CodeCompilationConfig(release.code_compilation_config)
        if not config.default_database:
            config.default_database = self.project
        for key, value in request.compile_vars.items():
            config.vars[key] = value
        return dataform_v1.CreateCompilationResultRequest(
            parent=self.repository,
            compilation_result=dataform_v1.CompilationResult(git_commitish=commitish, code_compilation_config=config),
        )

    def invocation_request(
        self, compilation: str, request: TransformRequest
    ) -> dataform_v1.CreateWorkflowInvocationRequest:
        """The workflow invocation to create for a compilation result."""
        config = dataform_v1.InvocationConfig(
            fully_refresh_incremental_tables_enabled=request.full_refresh,
            transitive_dependencies_included=request.include_dependencies,
        )
        for raw in request.actions:
            schema, _, table = raw.rpartition(".")
            config.included_targets.append(dataform_v1.Target(schema=schema, name=table))
        if self.service_account:
            config.service_account = self.service_account
        return dataform_v1.CreateWorkflowInvocationRequest(
            parent=self.repository,
            workflow_invocation=dataform_v1.WorkflowInvocation(
                compilation_result=compilation, invocation_config=config
            ),
        )

    def run(self, request: TransformRequest) -> TransformResult:
        """Compile, invoke, follow to the end, and report every action."""
        started = time.monotonic()
        result = TransformResult(run_id=request.run_id, as_of=request.as_of)
        compilation = self._call(
            "CreateCompilationResult", self.client.create_compilation_result, request=self.compilation_request(request)
        )
        assert isinstance(compilation, dataform_v1.CompilationResult)
        result.compile_seconds = round(time.monotonic() - started, 3)
        if compilation.compilation_errors:
            errors = "; ".join(f"{e.path or '(project)'}: {e.message}" for e in compilation.compilation_errors)
            result.error = f"the Dataform project does not compile: {errors}"
            result.seconds = round(time.monotonic() - started, 3)
            return result
        kinds = self._action_kinds(compilation.name)
        invocation = self._call(
            "CreateWorkflowInvocation",
            self.client.create_workflow_invocation,
            request=self.invocation_request(compilation.name, request),
        )
        assert isinstance(invocation, dataform_v1.WorkflowInvocation)
        result.invocation = invocation.name
        log.info("Dataform workflow invocation %s started", invocation.name)
        final = self._follow(invocation, started)
        result.actions = self._actions(invocation.name, kinds)
        if final.state != dataform_v1.WorkflowInvocation.State.SUCCEEDED and not result.failed_actions:
            result.error = f"workflow invocation {invocation.name} ended {final.state.name}"
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _action_kinds(self, compilation: str) -> dict[str, str]:
        pages = self._call(
            "QueryCompilationResultActions",
            self.client.query_compilation_result_actions,
            request=dataform_v1.QueryCompilationResultActionsRequest(name=compilation),
        )
        return {_target_name(a.target): _kind(a) for a in pages}  # type: ignore[attr-defined]

    def _follow(self, invocation: dataform_v1.WorkflowInvocation, started: float) -> dataform_v1.WorkflowInvocation:
        current = invocation
        while current.state not in _DONE:
            if time.monotonic() - started > self.timeout_seconds:
                self._call(
                    "CancelWorkflowInvocation",
                    self.client.cancel_workflow_invocation,
                    request=dataform_v1.CancelWorkflowInvocationRequest(name=invocation.name),
                )
                msg = (
                    f"workflow invocation {invocation.name} did not end within {self.timeout_seconds:.0f} s; cancelled"
                )
                raise TransientError(msg)
            self.sleep(self.poll_seconds)
            fetched = self._call("GetWorkflowInvocation", self.client.get_workflow_invocation, name=invocation.name)
            assert isinstance(fetched, dataform_v1.WorkflowInvocation)
            current = fetched
        return current

    def _actions(self, invocation: str, kinds: dict[str, str]) -> list[ActionReport]:
        pages = self._call(
            "QueryWorkflowInvocationActions",
            self.client.query_workflow_invocation_actions,
            request=dataform_v1.QueryWorkflowInvocationActionsRequest(name=invocation),
        )
        reports = []
        for action in pages:  # type: ignore[attr-defined]
            name = _target_name(action.target)
            timing = action.invocation_timing
            seconds = 0.0
            if timing.start_time and timing.end_time:
                seconds = max(0.0, (timing.end_time - timing.start_time).total_seconds())
            reports.append(
                ActionReport(
                    name=name,
                    kind=kinds.get(name, "table"),
                    status=_ACTION_STATUS.get(action.state, "failed"),
                    seconds=round(seconds, 3),
                    error=action.failure_reason or None,
                )
            )
        return reports


def today() -> dt.date:
    """The default as_of: today in UTC."""
    return dt.datetime.now(dt.UTC).date()
