"""Settings for every sfpipe process, read once from ``SFPIPE_*`` environment variables.

Every setting has a docstring: ``sfpipe config`` prints them as the configuration
reference, and the README's table is generated from the same source so that the two
never drift apart.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sfpipe.errors import ConfigError


class Mode(StrEnum):
    """Where sfpipe runs: on this machine's emulators or on Google Cloud."""

    LOCAL = "local"
    GCP = "gcp"


class LoadPath(StrEnum):
    """How the loader moves a finished extract into the raw layer."""

    AUTO = "auto"
    WAREHOUSE = "warehouse"
    BEAM = "beam"


class Settings(BaseSettings):
    """All of sfpipe's configuration. Environment variables use the ``SFPIPE_`` prefix."""

    model_config = SettingsConfigDict(
        env_prefix="SFPIPE_",
        extra="ignore",
        validate_default=True,
        use_attribute_docstrings=True,
        case_sensitive=False,
    )

    mode: Mode = Mode.LOCAL
    """`local` runs on the Pub/Sub emulator, fake-gcs-server and DuckDB; `gcp` on Google Cloud."""

    project: str = "sfpipe-local"
    """Google Cloud project id (any valid id works for the local emulators)."""

    region: str = "europe-west1"
    """Region of Dataflow jobs, Dataform and Cloud Run in `gcp` mode."""

    home: Path = Path(".sfpipe")
    """Folder for local state: logs, pid files, the warehouse, the emulators' data."""

    lake_bucket: str = "sfpipe-lake"
    """Bucket of the Parquet lake and the run manifests."""

    state_bucket: str = "sfpipe-state"
    """Versioned bucket of watermarks and CDC checkpoints."""

    log_level: str = "INFO"
    """Lowest level that is logged: DEBUG, INFO, WARNING or ERROR."""

    log_format: str = "auto"
    """`json` (Cloud Logging structured lines), `text`, or `auto` (JSON in gcp mode or when not a terminal)."""

    # local emulators and services
    host: str = "127.0.0.1"
    """Interface the local emulators and services listen on."""

    pubsub_port: int = Field(8085, ge=1, le=65535)
    """Port of Google's Pub/Sub emulator."""

    gcs_port: int = Field(4443, ge=1, le=65535)
    """Port of fake-gcs-server."""

    simulator_port: int = Field(8300, ge=1, le=65535)
    """Port of the Salesforce org simulator's REST API."""

    simulator_grpc_port: int = Field(8301, ge=1, le=65535)
    """Port of the simulator's Salesforce Pub/Sub API (gRPC)."""

    extractor_port: int = Field(8310, ge=1, le=65535)
    """Port of the extractor service."""

    loader_port: int = Field(8320, ge=1, le=65535)
    """Port of the loader service."""

    transform_port: int = Field(8330, ge=1, le=65535)
    """Port of the transform service."""

    quality_port: int = Field(8340, ge=1, le=65535)
    """Port of the quality service."""

    cdc_publisher_port: int = Field(8350, ge=1, le=65535)
    """Port of the cdc-publisher's health and metrics endpoint."""

    dashboard_port: int = Field(8360, ge=1, le=65535)
    """Port of the local dashboard."""

    warehouse_port: int = Field(8370, ge=1, le=65535)
    """Port of the local warehouse server (the one process that owns the DuckDB file)."""

    reconciler_port: int = Field(8380, ge=1, le=65535)
    """Port of the reconciler service."""

    warehouse_url: str | None = None
    """`grpc://host:port` of a running local warehouse server; unset = open the DuckDB file in-process."""

    warehouse_path: Path | None = None
    """DuckDB file of the local warehouse (default `<home>/warehouse.duckdb`)."""

    warehouse_memory_limit: str | None = None
    """Memory the local DuckDB warehouse may use (e.g. `1GB`); beyond it, large loads spill to disk."""

    retry_scale: float = Field(1.0, gt=0, le=1)
    """Factor on Pub/Sub retry backoff locally (0.01 makes 10 s–600 s into 0.1 s–6 s)."""

    max_event_age_seconds: int = Field(86_400, gt=0)
    """Events older than this are acknowledged and recorded, never retried forever."""

    # Salesforce
    sf_login_url: str = "https://127.0.0.1:8300"
    """Salesforce login host (a My Domain URL, or the simulator locally)."""

    sf_client_id: str = "sfpipe-local"
    """OAuth connected app consumer key."""

    sf_client_secret: SecretStr = SecretStr("sfpipe-local-secret")
    """OAuth connected app consumer secret (Secret Manager in gcp mode)."""

    sf_api_version: str = "62.0"
    """Salesforce API version used by every client, without the `v`."""

    sf_verify_tls: bool | str = False
    """TLS verification for Salesforce: true, false, or a CA bundle path (the simulator's)."""

    sf_auth_flow: Literal["client_credentials", "password", "jwt"] = "client_credentials"
    """OAuth flow: `client_credentials` (default), `password` or `jwt` (JWT bearer with a private key)."""

    sf_username: str | None = None
    """Salesforce username for the `password` and `jwt` flows."""

    sf_password: SecretStr | None = None
    """Password (with the security token appended) for the `password` flow."""

    sf_jwt_key_file: Path | None = None
    """PEM private key of the connected app's certificate, for the `jwt` flow."""

    sf_retry_attempts: int = Field(8, ge=1, le=50)
    """Attempts per Salesforce call on 429 / 5xx / dropped connections before giving up."""

    sf_backoff_seconds: float = Field(0.5, ge=0, le=60)
    """First retry backoff for Salesforce calls; it doubles per attempt (full jitter, capped at 30 s)."""

    # the Salesforce org simulator
    simulator_seed: int = Field(42, ge=0)
    """Random seed of the simulated org (the same seed and scale give the same org)."""

    simulator_scale: int = Field(10_000, ge=1_000, le=10_000_000)
    """Total number of records of the simulated org, split across its 17 objects."""

    simulator_as_of: str | None = None
    """Date (YYYY-MM-DD) the simulated org's generated history ends; default today."""

    simulator_data_dir: Path | None = None
    """Folder of the simulator's generated orgs, store, cursors and certificate (default `<home>/simulator`)."""

    simulator_tls: bool = True
    """Serve the simulator over HTTPS with a generated certificate (`<data dir>/tls/ca.pem` verifies it)."""

    simulator_public_url: str | None = None
    """Base URL clients reach the simulator at (returned as `instance_url`); default from the request."""

    simulator_admin_token: SecretStr = SecretStr("sfpipe-admin")
    """Bearer token of the simulator's admin and truth-export endpoints (`/admin/...`)."""

    simulator_username: str = "admin@sfpipe.example.com"
    """Username of the simulated org's integration user (password, SOAP and JWT logins)."""

    simulator_password: SecretStr = SecretStr("sfpipe-local")
    """Password of the integration user."""

    simulator_security_token: SecretStr = SecretStr("")
    """Security token appended to the password in password and SOAP logins (empty = none)."""

    simulator_jwt_public_key: str | None = None
    """PEM certificate or public key (text or file path) that JWT bearer assertions must be signed with."""

    simulator_session_seconds: int = Field(7_200, ge=1)
    """Idle seconds after which a simulator session expires (401 INVALID_SESSION_ID)."""

    simulator_api_daily_limit: int = Field(1_000_000, ge=1)
    """Simulated DailyApiRequests limit over a rolling 24 hours (403 REQUEST_LIMIT_EXCEEDED beyond it)."""

    simulator_activity_rate: float = Field(0.0, ge=0)
    """Changes per second the simulator's live activity applies from start (0 = none until started)."""

    simulator_faults: str = ""
    """Fault injection as JSON, e.g. `{"error_rate_503": 0.05, "latency_ms": 50, "query_timeout_rows": 100000}`."""

    simulator_counts: str = ""
    """Records of named objects instead of their share of the scale, e.g. `Opportunity=1000000,Wide__c=2000`."""

    # extraction and loading
    lookback_seconds: int = Field(600, ge=0)
    """Overlap of each incremental window with the previous one (late-committing transactions)."""

    bulk_threshold: int = Field(50_000, ge=0)
    """Windows with more records than this use Bulk API 2.0 instead of REST."""

    api_limit_share: float = Field(0.8, gt=0, le=1)
    """Stop extracting before this share of the daily API request limit is used."""

    extract_concurrency: int = Field(4, ge=1, le=64)
    """Objects extracted at the same time."""

    bulk_page_records: int = Field(50_000, ge=100, le=1_000_000)
    """Records per Bulk API 2.0 result chunk (`maxRecords`); bounds the extractor's memory."""

    extract_objects: str = (
        "User,UserRole,Account,Contact,Lead,Opportunity,OpportunityLineItem,OpportunityHistory,Product2,"
        "Pricebook2,PricebookEntry,Task,Event,Campaign,CampaignMember,Case,Order"
    )
    """Comma-separated objects that `sfpipe extract` and `POST /runs` pull when none are named."""

    extractor_token: SecretStr | None = None
    """Bearer token that callers of the extractor's `POST /runs` must send (local); unset = not checked."""

    extractor_audience: str | None = None
    """Audience (the service URL) that Google-signed ID tokens sent to the extractor must carry (gcp)."""

    load_path: LoadPath = LoadPath.AUTO
    """`auto` picks by size; `warehouse` or `beam` forces one load path."""

    beam_threshold_rows: int = Field(5_000_000, ge=0)
    """With `load_path=auto`, runs with more rows than this load through Beam / Dataflow."""

    beam_threshold_bytes: int = Field(4 * 1024**3, ge=0)
    """With `load_path=auto`, runs with more Parquet bytes than this also load through Beam / Dataflow."""

    load_timeout_seconds: int = Field(540, ge=10)
    """How long the loader waits for a Beam load (local subprocess or Dataflow job) before asking for a retry."""

    dataflow_service_account: str = ""
    """Service account email the Dataflow workers run as (gcp mode); empty = the project's default."""

    dataflow_max_workers: int = Field(10, ge=1, le=1000)
    """Upper bound on Dataflow workers for one load job."""

    dataflow_template: str = ""
    """GCS path of the Flex Template spec (`gs://…/sfpipe-load.json`) in gcp mode."""

    dataform_repository: str = ""
    """Dataform repository resource name (`projects/…/locations/…/repositories/…`) in gcp mode."""

    as_of: str | None = None
    """Date (YYYY-MM-DD) that 'this month / this quarter' metrics are computed against; default today."""

    # reconciliation and repair
    reconcile_objects: str = ""
    """Comma-separated objects that reconciliation compares; empty = `SFPIPE_EXTRACT_OBJECTS`."""

    reconcile_margin_seconds: int = Field(3_600, ge=0)
    """Longest a transaction may commit after its SystemModstamp: older records are only counted between full passes."""

    reconcile_full_hours: float = Field(24.0, ge=0)
    """Compare every record of an object (an Id-only listing) at least this often; 0 = on every reconciliation."""

    reconcile_bucket_rows: int = Field(256, ge=16)
    """Rows per checksum bucket that the comparison aims at (buckets are the last Id characters)."""

    reconcile_repair: bool = True
    """Whether the reconciler service repairs what it finds (`sfpipe reconcile` repairs with `--repair`)."""

    reconcile_formula_seconds: int = Field(86_400, ge=0)
    """Refresh formula fields (`calculated` in describe) once the last refresh is older than this; 0 = never."""

    # quality
    quality_suites: str = "raw,marts,reconcile"
    """Comma-separated quality suites that a `sfpipe.transform.completed` event runs."""

    quality_opportunity_stages: str = (
        "Prospecting,Qualification,Needs Analysis,Value Proposition,Id. Decision Makers,"
        "Perception Analysis,Proposal/Price Quote,Negotiation/Review,Closed Won,Closed Lost"
    )
    """Allowed Opportunity.StageName values (a new org's defaults) when describe cannot be read."""

    quality_reconcile_tolerance: float = Field(0.005, ge=0, le=1)
    """Share of the source's COUNT() by which an object's live raw rows may differ before the check fails."""

    dataform_dir: Path = Path("dataform")
    """Folder of the Dataform project that the local transform compiles with the Dataform CLI."""

    dataform_release_config: str = ""
    """Dataform release config (`projects/…/releaseConfigs/…`) the cloud transform compiles; empty = git commitish."""

    dataform_git_commitish: str = "main"
    """Git branch, tag or commit the cloud transform compiles when no release config is set."""

    dataform_service_account: str = ""
    """Service account email the Dataform workflow invocation runs as; empty = the repository's default."""

    transform_timeout_seconds: int = Field(3600, gt=0)
    """How long the transform follows a Dataform workflow invocation before giving up (then retried)."""

    # change data capture
    sf_pubsub_endpoint: str | None = None
    """`host:port` of the Salesforce Pub/Sub API (`api.pubsub.salesforce.com:7443`); unset = the local simulator's."""

    sf_pubsub_channel: Literal["tls", "insecure", "local"] = "tls"
    """gRPC channel to the Pub/Sub API: `tls` (verified as `SFPIPE_SF_VERIFY_TLS` says), `insecure` or `local`."""

    cdc_topic: str = "/data/ChangeEvents"
    """Change event channel the cdc-publisher subscribes to: `/data/ChangeEvents` or `/data/<Object>ChangeEvent`."""

    cdc_start: Literal["latest", "earliest"] = "latest"
    """Where the cdc-publisher starts when there is no checkpoint yet (later starts resume from the checkpoint)."""

    cdc_fetch_size: int = Field(100, ge=1, le=100)
    """Events the cdc-publisher keeps requested on its Subscribe stream (Salesforce allows at most 100)."""

    cdc_publish_batch: int = Field(1000, ge=1, le=1000)
    """Most change messages in one publish request to the `sfpipe-cdc` topic."""

    cdc_checkpoint_seconds: float = Field(1.0, ge=0, le=3600)
    """Least time between two checkpoint writes; each covers only changes Pub/Sub has acknowledged."""

    cdc_stream_subscription: str = "cdc-stream"
    """Subscription of the `sfpipe-cdc` topic that the CDC stream into the raw layer pulls from."""

    cdc_stream_port: int = Field(8355, ge=1, le=65535)
    """Port of the local CDC stream's health and metrics endpoint (`sfpipe cdc stream`)."""

    cdc_stream_max_batch: int = Field(5_000, ge=1, le=100_000)
    """Most change messages the CDC stream applies to the raw layer in one transaction."""

    cdc_stream_max_wait_seconds: float = Field(0.2, ge=0, le=60)
    """Longest a change waits in the CDC stream's buffer before its micro-batch is applied."""

    simulator_pubsub_keepalive_seconds: float = Field(5.0, gt=0, le=270)
    """Seconds a quiet Subscribe stream of the simulator waits before an empty keepalive (Salesforce: within 270)."""

    simulator_pubsub_gap_every: int = Field(0, ge=0)
    """Deliver every Nth change event as its GAP_ event (header only), to exercise gap handling; 0 = never."""

    simulator_pubsub_overflow_every: int = Field(0, ge=0)
    """Deliver every Nth change event as a GAP_OVERFLOW event of its object; 0 = never."""

    @field_validator("sf_verify_tls", mode="before")
    @classmethod
    def _verify_flag_or_path(cls, value: object) -> object:
        # an environment variable is always text: "false" must mean False, not a file named false
        if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on", "false", "0", "no", "off"}:
            return value.strip().lower() in {"true", "1", "yes", "on"}
        if isinstance(value, str) and not value.strip():
            msg = "expected true, false, or the path of a CA bundle"
            raise ValueError(msg)
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            msg = "expected one of DEBUG, INFO, WARNING, ERROR"
            raise ValueError(msg)
        return level

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in {"auto", "json", "text"}:
            msg = "expected one of auto, json, text"
            raise ValueError(msg)
        return value

    @field_validator("as_of")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from datetime import date

        try:
            date.fromisoformat(value)
        except ValueError as exc:
            msg = "expected a date as YYYY-MM-DD"
            raise ValueError(msg) from exc
        return value

    @property
    def warehouse_file(self) -> Path:
        """The DuckDB file of the local warehouse."""
        return self.warehouse_path or self.home / "warehouse.duckdb"

    @property
    def pubsub_api_endpoint(self) -> str:
        """Where the cdc-publisher reaches the Salesforce Pub/Sub API: the setting, or the simulator's gRPC port."""
        return self.sf_pubsub_endpoint or f"{self.host}:{self.simulator_grpc_port}"

    @property
    def pubsub_emulator_host(self) -> str:
        """`host:port` of the local Pub/Sub emulator."""
        return f"{self.host}:{self.pubsub_port}"

    @property
    def storage_emulator_host(self) -> str:
        """Base URL of the local fake-gcs-server."""
        return f"http://{self.host}:{self.gcs_port}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, failing with one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError.from_validation(exc) from None


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) for each setting, in declaration order."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            shown = "(secret)"
        elif default is None:
            shown = ""
        else:
            shown = str(default.value if isinstance(default, StrEnum) else default)
        rows.append((f"SFPIPE_{name.upper()}", shown, (field.description or "").strip()))
    return rows
