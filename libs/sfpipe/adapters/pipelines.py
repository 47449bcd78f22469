"""Running the Beam load pipeline: a local FnApiRunner subprocess, or a Dataflow Flex Template job.

The loader hands a run to a launcher and gets back a :class:`~sfpipe.lake.StagedRun`: per
object, Parquet files holding the newest version per Id. The loader then merges them, the
same way whichever launcher ran the pipeline. Both launchers pass the pipeline the same
parameters (the Flex Template's ``metadata.json`` declares them).

A launcher waits at most ``timeout`` seconds. A Dataflow job that is still running then is
a transient outcome: the event is redelivered, the second launch finds the job by its
name, and the wait resumes on the same result file.
"""

from __future__ import annotations

import abc
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc

from sfpipe.adapters.storage import ObjectStore, split_uri
from sfpipe.errors import BadInputError, TerminalError, TransientError
from sfpipe.lake import StagedRun, parse_staged

log = logging.getLogger(__name__)

PIPELINE_MODULE = "sfpipe_beam"
RESULT_NAME = "_staged.json"


@dataclass(frozen=True)
class LoadRequest:
    """What the pipeline is asked to stage."""

    run_id: str
    manifest_uri: str
    manifest_generation: int = 0
    objects: tuple[str, ...] = ()
    """Only these objects (all of the manifest's when empty)."""

    @property
    def job_name(self) -> str:
        """A Dataflow job name unique per run (lower-case letters, digits and hyphens)."""
        return f"sfpipe-load-{self.run_id.lower()}"

    def parameters(self, staging: str, result: str) -> dict[str, str]:
        """The pipeline's parameters, as the Flex Template metadata declares them."""
        params = {
            "manifest": self.manifest_uri,
            "manifest_generation": str(self.manifest_generation),
            "staging": staging,
            "result": result,
        }
        if self.objects:
            params["objects"] = ",".join(self.objects)
        return params


@dataclass
class Launched:
    """A started pipeline: where its result will appear."""

    request: LoadRequest
    staging: str
    result: str
    started: float = field(default_factory=time.monotonic)
    job_id: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None


class PipelineLauncher(abc.ABC):
    """Runs the Beam load pipeline somewhere and returns what it staged."""

    path_name = "beam"

    @abc.abstractmethod
    def launch(self, request: LoadRequest) -> Launched:
        """Start the pipeline."""

    @abc.abstractmethod
    def wait(self, launched: Launched, timeout: float) -> StagedRun:
        """The pipeline's result; TransientError if it is still running, TerminalError if it failed on its input."""

    @abc.abstractmethod
    def cleanup(self, launched: Launched) -> None:
        """Remove the staged files once merged."""

    def run(self, request: LoadRequest, timeout: float) -> tuple[Launched, StagedRun]:
        """Launch and wait."""
        launched = self.launch(request)
        return launched, self.wait(launched, timeout)


def _checked(staged: StagedRun, where: str) -> StagedRun:
    if staged.error:
        msg = f"the Beam load pipeline failed ({where}): {staged.error}"
        if staged.terminal:
            raise TerminalError(msg)
        raise TransientError(msg)
    return staged


class SubprocessLauncher(PipelineLauncher):
    """The pipeline on FnApiRunner in a child process (local mode).

    A child, not a thread: Beam's import and runner stay out of the loader's memory, and
    the child writes staging Parquet to a local folder the warehouse then reads; it never
    opens the DuckDB file (one process owns that).
    """

    def __init__(self, scratch: Path, env: Mapping[str, str] | None = None, python: str | None = None) -> None:
        self.scratch = scratch
        self.env = dict(env or {})
        self.python = python or sys.executable

    def command(self, launched: Launched) -> list[str]:
        """The child's command line."""
        params = launched.request.parameters(launched.staging, launched.result)
        return [
            self.python,
            "-m",
            PIPELINE_MODULE,
            "--runner=FnApiRunner",
            *[f"--{name}={value}" for name, value in params.items()],
        ]

    def launch(self, request: LoadRequest) -> Launched:
        """Start the child; it writes its result file when done."""
        base = self.scratch / "beam" / f"{request.run_id}-{os.getpid()}-{time.monotonic_ns()}"
        staging = base / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        log_path = base / "pipeline.log"
        launched = Launched(request, str(staging), str(base / RESULT_NAME), log_path=log_path)
        with log_path.open("wb") as out:
            launched.process = subprocess.Popen(
                self.command(launched),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        log.info("Beam load pipeline for %s started as process %s", request.run_id, launched.process.pid)
        return launched

    def wait(self, launched: Launched, timeout: float) -> StagedRun:
        """Wait for the child; read its result."""
        proc = launched.process
        if proc is None:
            msg = "the pipeline was not started"
            raise TransientError(msg)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            msg = f"the Beam load pipeline did not finish within {timeout:.0f}s"
            raise TransientError(msg) from None
        result = Path(launched.result)
        if not result.exists():
            tail = launched.log_path.read_text(errors="replace")[-2000:] if launched.log_path else ""
            msg = f"the Beam load pipeline exited with code {code} without a result: {tail}"
            raise TransientError(msg)
        return _checked(parse_staged(result.read_bytes(), str(result)), f"exit code {code}")

    def cleanup(self, launched: Launched) -> None:
        """Delete the child's folder."""
        shutil.rmtree(Path(launched.staging).parent, ignore_errors=True)


_FAILED_STATES = {"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_DRAINED", "JOB_STATE_STOPPED"}


class FlexTemplateLauncher(PipelineLauncher):
    """The pipeline as a Dataflow Flex Template job (gcp mode).

    Staging files and the result go under ``<staging_root>/<run_id>/`` in the Dataflow
    bucket, whose lifecycle rule deletes what a crash leaves behind.
    """

    def __init__(
        self,
        templates_client: Any,
        jobs_client: Any,
        store: ObjectStore,
        *,
        project: str,
        region: str,
        template: str,
        staging_root: str,
        temp_location: str,
        service_account: str = "",
        max_workers: int = 10,
        poll_seconds: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not template.startswith("gs://"):
            msg = "SFPIPE_DATAFLOW_TEMPLATE must be the gs:// path of the Flex Template spec"
            raise BadInputError(msg, field="dataflow_template")
        self.templates = templates_client
        self.jobs = jobs_client
        self.store = store
        self.project = project
        self.region = region
        self.template = template
        self.staging_root = staging_root.rstrip("/")
        self.temp_location = temp_location
        self.service_account = service_account
        self.max_workers = max_workers
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    @classmethod
    def for_template(
        cls, templates_client: Any, jobs_client: Any, store: ObjectStore, **kwargs: Any
    ) -> FlexTemplateLauncher:
        """Staging and temp folders next to the template, as the Terraform module lays the bucket out."""
        bucket, _ = split_uri(kwargs["template"])
        kwargs.setdefault("staging_root", f"gs://{bucket}/staging/load")
        kwargs.setdefault("temp_location", f"gs://{bucket}/temp")
        return cls(templates_client, jobs_client, store, **kwargs)

    def launch_request(self, launched: Launched) -> Any:
        """The LaunchFlexTemplateRequest for a run."""
        from google.cloud import dataflow_v1beta3 as dataflow

        request = launched.request
        environment = dataflow.FlexTemplateRuntimeEnvironment(
            max_workers=self.max_workers,
            temp_location=self.temp_location,
            service_account_email=self.service_account,
            additional_user_labels={"sfpipe-run": request.run_id.lower(), "sfpipe-stage": "load"},
        )
        return dataflow.LaunchFlexTemplateRequest(
            project_id=self.project,
            location=self.region,
            launch_parameter=dataflow.LaunchFlexTemplateParameter(
                job_name=request.job_name,
                container_spec_gcs_path=self.template,
                parameters=request.parameters(launched.staging, launched.result),
                environment=environment,
            ),
        )

    def launch(self, request: LoadRequest) -> Launched:
        """Launch the job, or find the one an earlier delivery of the same event launched."""
        base = f"{self.staging_root}/{request.run_id}"
        launched = Launched(request, f"{base}/staging/", f"{base}/{RESULT_NAME}")
        if self.store.exists(launched.result):
            log.info("Beam load of %s already finished: %s", request.run_id, launched.result)
            return launched
        try:
            response = self.templates.launch_flex_template(request=self.launch_request(launched))
        except gexc.AlreadyExists:
            log.info("Dataflow job %s is already running; waiting for it", request.job_name)
            return launched
        except (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests) as exc:
            msg = f"launching Dataflow job {request.job_name} failed transiently: {exc}"
            raise TransientError(msg) from exc
        except gexc.GoogleAPICallError as exc:
            msg = f"Dataflow refused job {request.job_name}: {exc}"
            raise TerminalError(msg) from exc
        launched.job_id = response.job.id or None
        log.info("Dataflow job %s (%s) launched for %s", request.job_name, launched.job_id, request.run_id)
        return launched

    def _job_state(self, launched: Launched) -> str | None:
        if not launched.job_id:
            return None
        from google.cloud import dataflow_v1beta3 as dataflow

        job = self.jobs.get_job(
            request=dataflow.GetJobRequest(project_id=self.project, job_id=launched.job_id, location=self.region)
        )
        return dataflow.JobState(job.current_state).name

    def wait(self, launched: Launched, timeout: float) -> StagedRun:
        """Poll for the result file (and the job's state, to notice a failed job early)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.store.exists(launched.result):
                data, _ = self.store.get_bytes(launched.result)
                return _checked(parse_staged(data, launched.result), f"Dataflow job {launched.request.job_name}")
            state = self._job_state(launched)
            if state in _FAILED_STATES:
                msg = f"Dataflow job {launched.request.job_name} ({launched.job_id}) ended in {state} without a result"
                raise TerminalError(msg)
            if time.monotonic() >= deadline:
                msg = f"Dataflow job {launched.request.job_name} is still running after {timeout:.0f}s; retry later"
                raise TransientError(msg)
            self.sleep(self.poll_seconds)

    def cleanup(self, launched: Launched) -> None:
        """Delete the staged files and the result."""
        bucket, prefix = split_uri(launched.result.rsplit("/", 1)[0] + "/")
        for item in list(self.store.list(bucket, prefix)):
            self.store.delete(item.uri)


def describe(launched: Launched) -> dict[str, Any]:
    """A launch as a JSON-able record (for the run's ops row)."""
    return json.loads(
        json.dumps(
            {"job_name": launched.request.job_name, "job_id": launched.job_id, "result": launched.result},
            default=str,
        )
    )
