"""The lake's layout (DESIGN.md §6) and the run manifest, the contract between extractor and loader."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sfpipe.errors import BadInputError, describe_validation
from sfpipe.ids import is_run_id

SOURCE_PREFIX = "salesforce"
RUNS_PREFIX = f"{SOURCE_PREFIX}/_runs/"
MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1


def data_prefix(bucket: str, sobject: str, ingest_date: date, run_id: str) -> str:
    """`gs://…/salesforce/<Object>/ingest_date=YYYY-MM-DD/run_id=<run_id>/`."""
    return f"gs://{bucket}/{SOURCE_PREFIX}/{sobject}/ingest_date={ingest_date:%Y-%m-%d}/run_id={run_id}/"


def data_uri(bucket: str, sobject: str, ingest_date: date, run_id: str, part: int) -> str:
    """One Parquet part of an object in a run."""
    return f"{data_prefix(bucket, sobject, ingest_date, run_id)}part-{part:05d}.parquet"


def manifest_uri(bucket: str, run_id: str) -> str:
    """`gs://…/salesforce/_runs/<run_id>/_manifest.json`, written last."""
    return f"gs://{bucket}/{RUNS_PREFIX}{run_id}/{MANIFEST_NAME}"


def is_manifest_name(name: str) -> bool:
    """Whether an object name is a run manifest (the only objects that trigger a load)."""
    return name.startswith(RUNS_PREFIX) and name.endswith("/" + MANIFEST_NAME)


def watermark_uri(state_bucket: str, sobject: str) -> str:
    """The object's watermark in the state bucket."""
    return f"gs://{state_bucket}/{SOURCE_PREFIX}/watermarks/{sobject}.json"


def cdc_checkpoint_uri(state_bucket: str) -> str:
    """The CDC replay checkpoint in the state bucket."""
    return f"gs://{state_bucket}/{SOURCE_PREFIX}/cdc/checkpoint.json"


def quality_docs_uri(bucket: str, run_id: str) -> str:
    """Where a run's Data Docs are written."""
    return f"gs://{bucket}/quality/{run_id}/docs/index.html"


class ManifestFile(BaseModel):
    """One Parquet file of an object."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(pattern=r"^gs://[^/]+/.+\.parquet$")
    generation: int = Field(ge=0)
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)


class ManifestField(BaseModel):
    """A column as describe gave it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    calculated: bool = False


class ManifestObject(BaseModel):
    """One object's part of a run."""

    model_config = ConfigDict(extra="forbid")

    files: list[ManifestFile]
    rows: int = Field(ge=0)
    window_from: datetime | None
    window_to: datetime
    schema_fingerprint: str
    fields: list[ManifestField] = Field(default_factory=list)
    new_columns: list[str] = Field(default_factory=list)
    watermark: datetime | None
    api: Literal["rest", "bulk", "mixed", "none"] = "rest"
    kind: Literal["incremental", "full", "repair", "formula"] = "incremental"
    hard_deleted_ids: list[str] = Field(default_factory=list)
    seconds: float | None = Field(None, ge=0)
    """How long the extractor took for this object (optional)."""

    @field_validator("rows")
    @classmethod
    def _nonnegative(cls, value: int) -> int:
        return value


class Manifest(BaseModel):
    """The run manifest: written last, it is what makes a run loadable."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    run_id: str
    created_at: datetime
    mode: Literal["incremental", "full", "repair", "formula"] = "incremental"
    org_id: str | None = None
    objects: dict[str, ManifestObject]
    failed: dict[str, str] = Field(default_factory=dict)
    completed_at: datetime | None = None
    """When the extractor finished its objects (``created_at`` is the run's start): the extract stage's end."""

    @field_validator("run_id")
    @classmethod
    def _run_id_form(cls, value: str) -> str:
        if not is_run_id(value):
            msg = "expected a run id like 20260101T000000Z-0a1b2c3d"
            raise ValueError(msg)
        return value

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_manifest(raw: bytes | str, uri: str = "manifest") -> Manifest:
    """Validate a manifest; the error names the field that is wrong and what was expected."""
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise BadInputError(describe_validation(exc, f"manifest {uri}"), field="manifest") from None


class StagedFile(BaseModel):
    """One Parquet file the Beam load pipeline wrote: the newest version per Id of some Ids."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(min_length=1)
    """`gs://…` on Dataflow; a local path when the pipeline runs on this machine."""
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)


class StagedObject(BaseModel):
    """What the pipeline made of one object of a run."""

    model_config = ConfigDict(extra="forbid")

    files: list[StagedFile] = Field(default_factory=list)
    input_rows: int = Field(0, ge=0)
    """Rows read from the lake (every copy of every version)."""
    rows: int = Field(0, ge=0)
    """Rows staged: one per Id, its newest version in this run."""


class StagedRun(BaseModel):
    """The Beam load pipeline's result (`_staged.json`), written last: what the loader merges.

    Salesforce columns keep their API names, normalised to the types describe declared;
    each row also carries ``_source_file``, the lake file it came from.
    """

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    run_id: str
    manifest_uri: str
    manifest_generation: int = Field(0, ge=0)
    created_at: datetime
    objects: dict[str, StagedObject] = Field(default_factory=dict)
    error: str | None = None
    """Why the pipeline failed, when it did (then ``objects`` is empty)."""
    terminal: bool = False
    """Whether the failure would recur on a retry (bad input) rather than pass (a crash)."""
    timings: dict[str, float] = Field(default_factory=dict)
    """Seconds per phase, as the pipeline measured them (start-up, run)."""


def parse_staged(raw: bytes | str, uri: str = "staged run") -> StagedRun:
    """Validate a pipeline result; the error names the field that is wrong."""
    try:
        return StagedRun.model_validate_json(raw)
    except ValidationError as exc:
        raise BadInputError(describe_validation(exc, f"staged run {uri}"), field="staged") from None
