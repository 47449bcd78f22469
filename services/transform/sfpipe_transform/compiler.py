"""The Dataform project, compiled by the Dataform CLI into a graph of actions.

``dataform compile --json`` is the one authority on what the project means: which tables,
views, incremental tables, assertions and operations exist, their SQL (BigQuery dialect)
and their dependencies. The local runner executes that graph; nothing here re-implements
Dataform's templating.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe.errors import BadInputError, TerminalError, TransientError

log = logging.getLogger(__name__)

ActionKind = Literal["table", "view", "incremental", "assertion", "operation", "declaration"]


class _Json(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CompiledTarget(_Json):
    """A Dataform target: project (database), dataset (schema) and name."""

    database: str | None = None
    schema_: str = Field(alias="schema")
    name: str


class CompiledBigQuery(_Json):
    """BigQuery options of a table."""

    partition_by: str | None = Field(default=None, alias="partitionBy")
    cluster_by: list[str] = Field(default_factory=list, alias="clusterBy")


class CompiledTable(_Json):
    """A table, view or incremental table of the compiled graph."""

    type: str = "table"
    target: CompiledTarget
    query: str = ""
    incremental_query: str | None = Field(default=None, alias="incrementalQuery")
    unique_key: list[str] = Field(default_factory=list, alias="uniqueKey")
    pre_ops: list[str] = Field(default_factory=list, alias="preOps")
    post_ops: list[str] = Field(default_factory=list, alias="postOps")
    incremental_pre_ops: list[str] = Field(default_factory=list, alias="incrementalPreOps")
    incremental_post_ops: list[str] = Field(default_factory=list, alias="incrementalPostOps")
    dependency_targets: list[CompiledTarget] = Field(default_factory=list, alias="dependencyTargets")
    tags: list[str] = Field(default_factory=list)
    disabled: bool = False
    file_name: str = Field(default="", alias="fileName")
    bigquery: CompiledBigQuery | None = None


class CompiledAssertion(_Json):
    """An assertion: a query whose rows are violations."""

    target: CompiledTarget
    query: str
    dependency_targets: list[CompiledTarget] = Field(default_factory=list, alias="dependencyTargets")
    parent_action: CompiledTarget | None = Field(default=None, alias="parentAction")
    tags: list[str] = Field(default_factory=list)
    disabled: bool = False
    file_name: str = Field(default="", alias="fileName")


class CompiledOperation(_Json):
    """Custom SQL statements."""

    target: CompiledTarget
    queries: list[str] = Field(default_factory=list)
    dependency_targets: list[CompiledTarget] = Field(default_factory=list, alias="dependencyTargets")
    has_output: bool = Field(default=False, alias="hasOutput")
    tags: list[str] = Field(default_factory=list)
    disabled: bool = False
    file_name: str = Field(default="", alias="fileName")


class CompiledDeclaration(_Json):
    """A table that exists outside the project (the raw layer)."""

    target: CompiledTarget
    file_name: str = Field(default="", alias="fileName")


class CompilationError(_Json):
    """One error the Dataform compiler reported."""

    file_name: str = Field(default="", alias="fileName")
    message: str = ""
    stack: str = ""


class GraphErrors(_Json):
    """The compiler's errors."""

    compilation_errors: list[CompilationError] = Field(default_factory=list, alias="compilationErrors")


class ProjectConfig(_Json):
    """The settings the project was compiled with."""

    default_database: str | None = Field(default=None, alias="defaultDatabase")
    default_schema: str | None = Field(default=None, alias="defaultSchema")
    assertion_schema: str | None = Field(default=None, alias="assertionSchema")
    vars: dict[str, str] = Field(default_factory=dict)


class CompiledGraphJson(_Json):
    """The JSON document ``dataform compile --json`` prints."""

    tables: list[CompiledTable] = Field(default_factory=list)
    assertions: list[CompiledAssertion] = Field(default_factory=list)
    operations: list[CompiledOperation] = Field(default_factory=list)
    declarations: list[CompiledDeclaration] = Field(default_factory=list)
    project_config: ProjectConfig = Field(default_factory=ProjectConfig, alias="projectConfig")
    graph_errors: GraphErrors = Field(default_factory=GraphErrors, alias="graphErrors")
    dataform_core_version: str | None = Field(default=None, alias="dataformCoreVersion")


@dataclass(frozen=True)
class Action:
    """One node of the graph, in the shape the runner needs."""

    name: str
    kind: ActionKind
    target: TableRef
    dependencies: tuple[str, ...] = ()
    query: str = ""
    incremental_query: str | None = None
    unique_key: tuple[str, ...] = ()
    pre_ops: tuple[str, ...] = ()
    post_ops: tuple[str, ...] = ()
    incremental_pre_ops: tuple[str, ...] = ()
    incremental_post_ops: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    parent: str | None = None
    partition_by: str | None = None
    cluster_by: tuple[str, ...] = ()
    file_name: str = ""


def _name(target: CompiledTarget) -> str:
    return f"{target.schema_}.{target.name}"


def _ref(target: CompiledTarget) -> TableRef:
    return TableRef(target.schema_, target.name)


@dataclass
class CompiledGraph:
    """Every action of the compiled project, by ``dataset.name``."""

    actions: dict[str, Action]
    vars: dict[str, str] = field(default_factory=dict)
    default_database: str | None = None
    core_version: str | None = None

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> CompiledGraph:
        """Validate the compiler's JSON and build the graph; compilation errors raise."""
        try:
            parsed = CompiledGraphJson.model_validate(document)
        except ValidationError as exc:
            msg = f"the Dataform compiler's JSON is not in the expected form: {exc}"
            raise TerminalError(msg) from None
        errors = parsed.graph_errors.compilation_errors
        if errors:
            lines = "; ".join(f"{e.file_name or '(project)'}: {e.message}" for e in errors)
            msg = f"the Dataform project does not compile: {lines}"
            raise BadInputError(msg, field="dataform")
        actions: dict[str, Action] = {}

        def add(action: Action) -> None:
            if action.name in actions:
                msg = f"two Dataform actions write {action.name}"
                raise BadInputError(msg, field="dataform")
            actions[action.name] = action

        for decl in parsed.declarations:
            add(Action(_name(decl.target), "declaration", _ref(decl.target), file_name=decl.file_name))
        for table in parsed.tables:
            if table.disabled:
                continue
            kind: ActionKind = table.type if table.type in ("table", "view", "incremental") else "table"  # type: ignore[assignment]
            add(
                Action(
                    name=_name(table.target),
                    kind=kind,
                    target=_ref(table.target),
                    dependencies=tuple(_name(t) for t in table.dependency_targets),
                    query=table.query,
                    incremental_query=table.incremental_query,
                    unique_key=tuple(table.unique_key),
                    pre_ops=tuple(table.pre_ops),
                    post_ops=tuple(table.post_ops),
                    incremental_pre_ops=tuple(table.incremental_pre_ops),
                    incremental_post_ops=tuple(table.incremental_post_ops),
                    tags=tuple(table.tags),
                    partition_by=table.bigquery.partition_by if table.bigquery else None,
                    cluster_by=tuple(table.bigquery.cluster_by) if table.bigquery else (),
                    file_name=table.file_name,
                )
            )
        for assertion in parsed.assertions:
            if assertion.disabled:
                continue
            add(
                Action(
                    name=_name(assertion.target),
                    kind="assertion",
                    target=_ref(assertion.target),
                    dependencies=tuple(_name(t) for t in assertion.dependency_targets),
                    query=assertion.query,
                    tags=tuple(assertion.tags),
                    parent=_name(assertion.parent_action) if assertion.parent_action else None,
                    file_name=assertion.file_name,
                )
            )
        for operation in parsed.operations:
            if operation.disabled:
                continue
            add(
                Action(
                    name=_name(operation.target),
                    kind="operation",
                    target=_ref(operation.target),
                    dependencies=tuple(_name(t) for t in operation.dependency_targets),
                    queries=tuple(operation.queries),
                    tags=tuple(operation.tags),
                    file_name=operation.file_name,
                )
            )
        graph = cls(
            actions,
            vars=dict(parsed.project_config.vars),
            default_database=parsed.project_config.default_database,
            core_version=parsed.dataform_core_version,
        )
        graph.check_dependencies()
        return graph

    def check_dependencies(self) -> None:
        """Every dependency must be an action of the graph."""
        for action in self.actions.values():
            missing = [d for d in action.dependencies if d not in self.actions]
            if missing:
                msg = f"{action.name} depends on {', '.join(missing)}, which the project does not define or declare"
                raise BadInputError(msg, field="dataform")

    def order(self) -> list[Action]:
        """Actions in dependency order (ties by name, so that runs are reproducible)."""
        remaining = {name: set(a.dependencies) for name, a in self.actions.items()}
        ordered: list[Action] = []
        while remaining:
            ready = sorted(name for name, deps in remaining.items() if not deps)
            if not ready:
                cycle = ", ".join(sorted(remaining))
                msg = f"the Dataform graph has a dependency cycle among {cycle}"
                raise BadInputError(msg, field="dataform")
            for name in ready:
                ordered.append(self.actions[name])
                del remaining[name]
            for deps in remaining.values():
                deps.difference_update(ready)
        return ordered

    def select(self, names: Iterable[str], *, include_dependencies: bool = False) -> CompiledGraph:
        """The sub-graph of some actions (by ``dataset.name`` or bare name), their assertions too.

        Dependencies outside the selection are assumed to exist already, as in
        ``dataform run --actions``; with ``include_dependencies`` they are built as well.
        """
        wanted: set[str] = set()
        for raw in names:
            matches = [n for n in self.actions if n == raw or n.split(".", 1)[1] == raw]
            if not matches:
                msg = f"no Dataform action is called {raw!r}"
                raise BadInputError(msg, field="actions")
            wanted.update(matches)
        if include_dependencies:
            stack = list(wanted)
            while stack:
                for dep in self.actions[stack.pop()].dependencies:
                    if dep not in wanted:
                        wanted.add(dep)
                        stack.append(dep)
        wanted.update(a.name for a in self.actions.values() if a.kind == "assertion" and a.parent in wanted)
        selected = {
            name: Action(**{**a.__dict__, "dependencies": tuple(d for d in a.dependencies if d in wanted)})
            for name, a in self.actions.items()
            if name in wanted
        }
        return CompiledGraph(
            selected, vars=self.vars, default_database=self.default_database, core_version=self.core_version
        )

    def of_kind(self, *kinds: ActionKind) -> list[Action]:
        """Actions of some kinds, in dependency order."""
        return [a for a in self.order() if a.kind in kinds]


@dataclass
class DataformCli:
    """The Dataform CLI installed by ``npm ci`` in the project folder."""

    project_dir: Path
    timeout: float = 120.0

    def __post_init__(self) -> None:
        self.project_dir = Path(self.project_dir).resolve()

    @property
    def binary(self) -> Path:
        """The CLI's executable inside node_modules."""
        return self.project_dir / "node_modules" / ".bin" / "dataform"

    def compile(
        self,
        variables: Mapping[str, str] | None = None,
        *,
        default_database: str | None = None,
    ) -> CompiledGraph:
        """``dataform compile --json`` with compile vars; the graph, or a clear error."""
        if not (self.project_dir / "workflow_settings.yaml").exists():
            msg = f"{self.project_dir} is not a Dataform project (no workflow_settings.yaml); set SFPIPE_DATAFORM_DIR"
            raise BadInputError(msg, field="dataform_dir")
        if not self.binary.exists():
            msg = (
                f"the Dataform CLI is not installed in {self.project_dir}/node_modules: "
                "run `make npm` (npm ci in the project folder)"
            )
            raise TerminalError(msg)
        command = [str(self.binary), "compile", str(self.project_dir), "--json"]
        for key, value in (variables or {}).items():
            if "," in key or "=" in key or "," in str(value):
                msg = f"compile var {key}={value!r} cannot hold ',' or '='"
                raise BadInputError(msg, field="vars")
        if variables:
            command.append("--vars=" + ",".join(f"{k}={v}" for k, v in variables.items()))
        if default_database:
            command.append(f"--default-database={default_database}")
        started = time.monotonic()
        env = {**os.environ, "NO_UPDATE_NOTIFIER": "1", "DO_NOT_TRACK": "1"}
        try:
            proc = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                cwd=self.project_dir,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            msg = f"dataform compile did not finish in {self.timeout:.0f} s"
            raise TransientError(msg) from exc
        try:
            document = json.loads(proc.stdout)
        except json.JSONDecodeError:
            detail = (proc.stderr or proc.stdout).strip()[-2000:]
            msg = f"dataform compile failed (exit {proc.returncode}): {detail}"
            raise BadInputError(msg, field="dataform") from None
        graph = CompiledGraph.from_json(document)
        log.info("compiled the Dataform project: %d actions in %.1f s", len(graph.actions), time.monotonic() - started)
        return graph
