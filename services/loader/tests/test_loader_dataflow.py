"""The Beam path in gcp mode: the Flex Template launch request, and waiting for the job's result.

The Dataflow API is a real gRPC server in this process speaking
``google.dataflow.v1beta3`` (FlexTemplatesService, JobsV1Beta3) to the real clients. Its
LaunchFlexTemplate runs the very pipeline the template would run, with the request's
parameters, on FnApiRunner: the staging files and the result land in the (fake) GCS
bucket exactly where the Dataflow job would write them.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent import futures
from datetime import UTC, datetime

import grpc
import pytest
from google.cloud import dataflow_v1beta3 as dataflow
from google.cloud.dataflow_v1beta3.services.flex_templates_service.transports import (
    FlexTemplatesServiceGrpcTransport,
)
from google.cloud.dataflow_v1beta3.services.jobs_v1_beta3.transports import JobsV1Beta3GrpcTransport

from sfpipe.adapters.pipelines import FlexTemplateLauncher, LoadRequest
from sfpipe.config import LoadPath
from sfpipe.errors import TerminalError, TransientError
from sfpipe.events import StorageObject
from sfpipe.lake import StagedRun
from sfpipe_devstack.emulators import free_port
from sfpipe_loader.loader import Loader
from sfpipe_loader.testing import accounts, opportunities, table_rows

PROJECT = "sfpipe-prod"
REGION = "europe-west1"
WORKER = "sfpipe-dataflow-worker@sfpipe-prod.iam.gserviceaccount.com"


class FakeDataflow:
    """FlexTemplatesService.LaunchFlexTemplate and JobsV1Beta3.GetJob, recording every request."""

    def __init__(self, env: dict[str, str] | None, run_pipeline: bool = True) -> None:
        self.env = env
        self.run_pipeline = run_pipeline
        self.launches: list[dataflow.LaunchFlexTemplateRequest] = []
        self.gets: list[dataflow.GetJobRequest] = []
        self.state = dataflow.JobState.JOB_STATE_RUNNING
        self.already_exists = False
        self.threads: list[threading.Thread] = []

    def launch(self, request: dataflow.LaunchFlexTemplateRequest, context) -> dataflow.LaunchFlexTemplateResponse:
        self.launches.append(request)
        if self.already_exists:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "There is already an active job named " + request.launch_parameter.job_name)
        params = dict(request.launch_parameter.parameters)
        if self.run_pipeline:
            cmd = [sys.executable, "-m", "sfpipe_beam", "--runner=FnApiRunner", *[f"--{k}={v}" for k, v in params.items()]]
            thread = threading.Thread(target=subprocess.run, args=(cmd,), kwargs={"env": self.env, "capture_output": True})
            thread.start()
            self.threads.append(thread)
        job = dataflow.Job(id="2026-03-31_01_02_03-123", name=request.launch_parameter.job_name, project_id=PROJECT)
        return dataflow.LaunchFlexTemplateResponse(job=job)

    def get_job(self, request: dataflow.GetJobRequest, context) -> dataflow.Job:
        self.gets.append(request)
        return dataflow.Job(id=request.job_id, current_state=self.state)


@pytest.fixture
def fake_dataflow(local_settings):
    import os

    env = {**os.environ, "STORAGE_EMULATOR_HOST": local_settings.storage_emulator_host}
    fake = FakeDataflow(env)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "google.dataflow.v1beta3.FlexTemplatesService",
                {
                    "LaunchFlexTemplate": grpc.unary_unary_rpc_method_handler(
                        fake.launch,
                        request_deserializer=dataflow.LaunchFlexTemplateRequest.deserialize,
                        response_serializer=dataflow.LaunchFlexTemplateResponse.serialize,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "google.dataflow.v1beta3.JobsV1Beta3",
                {
                    "GetJob": grpc.unary_unary_rpc_method_handler(
                        fake.get_job,
                        request_deserializer=dataflow.GetJobRequest.deserialize,
                        response_serializer=dataflow.Job.serialize,
                    )
                },
            ),
        ]
    )
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    fake.templates = dataflow.FlexTemplatesServiceClient(transport=FlexTemplatesServiceGrpcTransport(channel=channel))
    fake.jobs = dataflow.JobsV1Beta3Client(transport=JobsV1Beta3GrpcTransport(channel=channel))
    yield fake
    for thread in fake.threads:
        thread.join(timeout=120)
    server.stop(None)


def launcher(fake: FakeDataflow, store, bucket: str, **kwargs) -> FlexTemplateLauncher:
    return FlexTemplateLauncher.for_template(
        fake.templates,
        fake.jobs,
        store,
        project=PROJECT,
        region=REGION,
        template=f"gs://{bucket}/templates/sfpipe-load.json",
        service_account=WORKER,
        max_workers=12,
        poll_seconds=0.2,
        **kwargs,
    )


@pytest.mark.integration
def test_launch_request_is_exactly_the_flex_template_contract(fake_dataflow, object_store):
    fake_dataflow.run_pipeline = False
    flex = launcher(fake_dataflow, object_store, "sfpipe-prod-dataflow")
    request = LoadRequest("20260331T010203Z-0a1b2c3d", "gs://lake/salesforce/_runs/20260331T010203Z-0a1b2c3d/_manifest.json", 1743382923000000, ("Account", "Opportunity"))
    launched = flex.launch(request)
    assert launched.job_id == "2026-03-31_01_02_03-123"
    [sent] = fake_dataflow.launches
    expected = dataflow.LaunchFlexTemplateRequest(
        project_id=PROJECT,
        location=REGION,
        launch_parameter=dataflow.LaunchFlexTemplateParameter(
            job_name="sfpipe-load-20260331t010203z-0a1b2c3d",
            container_spec_gcs_path="gs://sfpipe-prod-dataflow/templates/sfpipe-load.json",
            parameters={
                "manifest": "gs://lake/salesforce/_runs/20260331T010203Z-0a1b2c3d/_manifest.json",
                "manifest_generation": "1743382923000000",
                "staging": "gs://sfpipe-prod-dataflow/staging/load/20260331T010203Z-0a1b2c3d/staging/",
                "result": "gs://sfpipe-prod-dataflow/staging/load/20260331T010203Z-0a1b2c3d/_staged.json",
                "objects": "Account,Opportunity",
            },
            environment=dataflow.FlexTemplateRuntimeEnvironment(
                max_workers=12,
                temp_location="gs://sfpipe-prod-dataflow/temp",
                service_account_email=WORKER,
                additional_user_labels={"sfpipe-run": "20260331t010203z-0a1b2c3d", "sfpipe-stage": "load"},
            ),
        ),
    )
    assert sent == expected
    # a job that fails without a result fails the load for good
    fake_dataflow.state = dataflow.JobState.JOB_STATE_FAILED
    with pytest.raises(TerminalError, match="JOB_STATE_FAILED"):
        flex.wait(launched, timeout=5)
    assert fake_dataflow.gets[-1] == dataflow.GetJobRequest(project_id=PROJECT, job_id=launched.job_id, location=REGION)


@pytest.mark.integration
def test_a_job_still_running_asks_for_a_retry_and_the_retry_waits_for_the_same_job(fake_dataflow, object_store):
    fake_dataflow.run_pipeline = False
    object_store.ensure_bucket("dataflow-b")
    flex = launcher(fake_dataflow, object_store, "dataflow-b")
    request = LoadRequest("20260331T010203Z-0a1b2c3d", "gs://lake/salesforce/_runs/20260331T010203Z-0a1b2c3d/_manifest.json")
    first = flex.launch(request)
    with pytest.raises(TransientError, match="still running"):
        flex.wait(first, timeout=0.5)
    # the redelivered event launches again: Dataflow says the job exists; the wait resumes on its result
    fake_dataflow.already_exists = True
    second = flex.launch(request)
    assert second.result == first.result and len(fake_dataflow.launches) == 2
    staged = StagedRun(run_id=request.run_id, manifest_uri=request.manifest_uri, created_at=datetime.now(UTC))
    object_store.put_bytes(second.result, staged.model_dump_json().encode())
    assert flex.wait(second, timeout=5).run_id == request.run_id
    # and once the result exists, a third delivery does not launch at all
    flex.launch(request)
    assert len(fake_dataflow.launches) == 2


@pytest.mark.integration
@pytest.mark.slow
def test_gcp_beam_path_merges_what_the_job_staged_in_gcs(fake_dataflow, local_settings, lake, warehouse, object_store, bus):
    object_store.ensure_bucket("dataflow-c")
    flex = launcher(fake_dataflow, object_store, "dataflow-c")
    beam = Loader(local_settings, warehouse, object_store, None, launcher=lambda: flex)
    manifest, uri = lake.run(
        {"Opportunity": [opportunities(range(20), [1] * 20), opportunities(range(10, 30), [2] * 20)],
         "Account": [accounts(range(4), [1] * 4)]}
    )
    stat = object_store.stat(uri)
    obj = StorageObject(bucket=lake.bucket, name=uri.split("/", 3)[3], generation=stat.generation)
    result = beam.load_object_event(obj, obj.key, forced=LoadPath.BEAM)
    assert result.ok, result.summary()
    assert {n: (o.inserted, o.path) for n, o in result.objects.items()} == {
        "Opportunity": (30, "beam"), "Account": (4, "beam")
    }
    [sent] = fake_dataflow.launches
    assert sent.launch_parameter.parameters["manifest_generation"] == str(stat.generation)
    rows = table_rows(warehouse, "opportunity")
    assert len(rows) == 30
    assert {r["_source_file"] for r in table_rows(warehouse, "opportunity__changes")} == {
        f.uri for f in manifest.objects["Opportunity"].files
    }
    # staged files and the result are removed once merged
    assert not list(object_store.list("dataflow-c", "staging/load/"))
