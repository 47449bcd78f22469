"""The CDC streaming pipeline on Dataflow: ``sfpipe-cdc`` → BigQuery CDC upserts into ``sfpipe_raw``.

::

  ReadFromPubSub(cdc-stream, with attributes)
   → Parse              (sfpipe.cdc.change → changes; unparsable messages to the dead-letter topic)
   → KeyByRecord        ("<object>|<Id>")
   → Resolve            (stateful, per record: column-level last-writer-wins over Beam state, the
                         first change of a record seeds the state with its raw row from BigQuery)
   → ByObject           (one branch per object: BigQuery's Storage Write API needs one schema)
   → ToCdcRow           (the whole row, ``row_mutation_info`` = UPSERT + _CHANGE_SEQUENCE_NUMBER)
   → WriteToBigQuery    (STORAGE_WRITE_API, at-least-once, use_cdc_writes, primary key Id)

BigQuery's CDC upserts replace whole rows, so a partial UPDATE must become a full row first:
that is what the per-record state is for. ``_CHANGE_SEQUENCE_NUMBER`` is the row version (commit
timestamp in ms, commit number) plus the record's emit counter, so BigQuery keeps the newest row
whatever order the upserts arrive in. A delete is an upsert with ``IsDeleted`` set: the raw
layer keeps deleted rows (``_hard_deleted`` is reconciliation's to set, ADR 0093).

Locally the same parse and last-writer-wins rules run from a streaming pull into DuckDB
(:mod:`sfpipe_beam.cdc.stream`); ADR 0094 says why Beam's local runner does not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from sfpipe.errors import BadInputError
from sfpipe.raw import RAW_DATASET, table_name
from sfpipe_beam.cdc.changes import Change, RowState, from_message

log = logging.getLogger(__name__)

DEAD_LETTER = "dead_letter"
DEFAULT_OBJECTS = (
    "User,UserRole,Account,Contact,Lead,Opportunity,OpportunityLineItem,OpportunityHistory,Product2,"
    "Pricebook2,PricebookEntry,Task,Event,Campaign,CampaignMember,Case,Order"
)
Lookup = Callable[[str, str], Mapping[str, Any] | None]
"""(object, Id) → the record's raw row, or None."""


class CdcStreamOptions(PipelineOptions):
    """The streaming pipeline's parameters (prefixed: every pipeline's options share one parser)."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--cdc_subscription", default="", help="projects/<p>/subscriptions/cdc-stream (needed)")
        parser.add_argument("--cdc_dead_letter_topic", default="", help="projects/<p>/topics/sfpipe-dead-letter")
        parser.add_argument("--cdc_bq_project", default="", help="project of sfpipe_raw (default --project)")
        parser.add_argument("--cdc_raw_dataset", default=RAW_DATASET, help="dataset of the raw tables")
        parser.add_argument("--cdc_objects", default=DEFAULT_OBJECTS, help="comma-separated objects to write")
        parser.add_argument("--cdc_reseed_seconds", type=float, default=600.0,
                            help="re-read a record's raw row when its state is older than this")  # fmt: skip


class ParseChanges(beam.DoFn):
    """A Pub/Sub message → its changes; an unparsable one goes to the dead-letter output."""

    def process(self, message: Any) -> Iterator[Any]:
        """Parse one message."""
        data = getattr(message, "data", message)
        attributes = getattr(message, "attributes", None) or {}
        try:
            yield from from_message(data, attributes)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("dead-lettering an unparsable CDC message: %s", exc)
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, data if isinstance(data, bytes) else str(data).encode())


class BigQueryLookup:
    """Reads one raw row by Id (the seed of a record's state), with a client per worker."""

    def __init__(self, project: str, dataset: str) -> None:
        self.project = project
        self.dataset = dataset
        self._client: Any = None

    def __call__(self, entity: str, record_id: str) -> Mapping[str, Any] | None:
        """The row, or None when the table or the record does not exist."""
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        if self._client is None:
            self._client = bigquery.Client(project=self.project)
        sql = f"SELECT * FROM `{self.project}.{self.dataset}.{table_name(entity)}` WHERE Id = @id LIMIT 1"
        config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("id", "STRING", record_id)])
        try:
            rows = list(self._client.query(sql, job_config=config).result())
        except gexc.NotFound:
            return None
        return dict(rows[0].items()) if rows else None


class ResolveFullRows(beam.DoFn):
    """Per record: keep the row and its column versions in state; emit the whole row when it changes."""

    STATE = ReadModifyWriteStateSpec("row", PickleCoder())

    def __init__(self, lookup: Lookup, reseed_seconds: float = 600.0) -> None:
        self.lookup = lookup
        self.reseed_seconds = reseed_seconds

    def process(
        self, element: tuple[str, Change], state: Any = beam.DoFn.StateParam(STATE)  # noqa: B008 - Beam's idiom
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Apply one change; emit ``(object, row)`` when a column changed hands."""
        _, change = element
        current: RowState | None = state.read()
        now = time.time()
        if current is None or now - current.seeded_at > self.reseed_seconds:
            # first sight, or a state old enough that a batch load may have written the row since
            seed = self.lookup(change.entity, change.record_id)
            fresh = RowState.from_row(seed) if seed else RowState()
            if current is None or (fresh.row_version is not None and (current.row_version is None
                                                                      or fresh.row_version >= current.row_version)):
                fresh.emitted = current.emitted if current else 0
                current = fresh
            current.seeded_at = now
        if not current.apply(change):
            state.write(current)
            return
        current.emitted += 1
        state.write(current)
        assert current.row_version is not None
        row = {**current.values, "Id": change.record_id, "_version": current.row_version[0],
               "_commit_number": current.row_version[1], "_source": "cdc",
               "_ingested_at": datetime.now(UTC), "_sequence": current.sequence_number()}  # fmt: skip
        yield change.entity, row


def cdc_row(row: Mapping[str, Any], columns: Sequence[str], run_id: str) -> dict[str, Any]:
    """The element BigQuery's CDC writes take: the record (every column) and its mutation info."""
    record = {name: row.get(name) for name in columns}
    record.update({"_run_id": run_id, "_source": "cdc"})
    for name in ("_version", "_commit_number", "_ingested_at"):
        record[name] = row.get(name)
    record["_hard_deleted"] = bool(row.get("_hard_deleted") or False)
    return {"row_mutation_info": {"mutation_type": "UPSERT", "change_sequence_number": row["_sequence"]},
            "record": record}  # fmt: skip


def bigquery_sink(table: str, schema: Mapping[str, Any]) -> beam.PTransform:
    """The write of one object: Storage Write API CDC upserts on the raw table's primary key."""
    from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery

    return WriteToBigQuery(
        table=table,
        schema=schema,
        method=WriteToBigQuery.Method.STORAGE_WRITE_API,
        use_at_least_once=True,
        use_cdc_writes=True,
        primary_key=["Id"],
        create_disposition=BigQueryDisposition.CREATE_NEVER,
        write_disposition=BigQueryDisposition.WRITE_APPEND,
    )


def build(
    pipeline: beam.Pipeline,
    messages: beam.PCollection,
    *,
    objects: Sequence[str],
    columns: Mapping[str, Sequence[str]],
    lookup: Lookup,
    sink: Callable[[str], beam.PTransform],
    run_id: str,
    reseed_seconds: float = 600.0,
) -> dict[str, beam.PCollection]:
    """The graph after the source: parse, resolve, and one CDC write per object; returns each branch's rows."""
    parsed = messages | "Parse" >> beam.ParDo(ParseChanges()).with_outputs(DEAD_LETTER, main="changes")
    rows = (
        parsed.changes
        | "KeyByRecord" >> beam.Map(lambda c: (f"{c.entity}|{c.record_id}", c))
        | "Resolve" >> beam.ParDo(ResolveFullRows(lookup, reseed_seconds))
    )
    index = {name: i for i, name in enumerate(objects)}
    def by_object(kv: tuple[str, Any], n: int) -> int:
        return index.get(kv[0], n - 1)

    branches = rows | "ByObject" >> beam.Partition(by_object, len(objects) + 1)  # type: ignore[arg-type]
    out: dict[str, beam.PCollection] = {"dead_letter": parsed[DEAD_LETTER]}
    for name, branch in zip(objects, branches, strict=False):
        cols = list(columns.get(name) or ())
        converted = branch | f"ToCdcRow{name}" >> beam.Map(lambda kv, c=cols: cdc_row(kv[1], c, run_id))
        converted | f"Write{name}" >> sink(name)
        out[name] = converted
    return out


def table_schemas(project: str, dataset: str, objects: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each raw table's BigQuery schema (the writes need it at construction), read at launch."""
    from google.cloud import bigquery

    client = bigquery.Client(project=project)
    out = {}
    for name in objects:
        table = client.get_table(f"{project}.{dataset}.{table_name(name)}")
        out[name] = {"fields": [{"name": f.name, "type": f.field_type, "mode": f.mode} for f in table.schema]}
    return out


def run(argv: Sequence[str] | None = None) -> beam.Pipeline:
    """Build the pipeline from Beam options and run it (on Dataflow it keeps running)."""
    from apache_beam.io.gcp.pubsub import ReadFromPubSub, WriteToPubSub
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    from sfpipe.ids import new_run_id

    options = PipelineOptions(list(argv or []), streaming=True)
    opts = options.view_as(CdcStreamOptions)
    if not opts.cdc_subscription:
        msg = "--cdc_subscription is required: projects/<project>/subscriptions/cdc-stream"
        raise BadInputError(msg, field="subscription")
    project = opts.cdc_bq_project or options.view_as(GoogleCloudOptions).project
    objects = [o.strip() for o in opts.cdc_objects.split(",") if o.strip()]
    schemas = table_schemas(project, opts.cdc_raw_dataset, objects)
    columns = {name: [f["name"] for f in schema["fields"]] for name, schema in schemas.items()}
    pipeline = beam.Pipeline(options=options)
    messages = pipeline | "Read" >> ReadFromPubSub(subscription=opts.cdc_subscription, with_attributes=True)
    outputs = build(
        pipeline, messages, objects=objects, columns=columns,
        lookup=BigQueryLookup(project, opts.cdc_raw_dataset),
        sink=lambda name: bigquery_sink(f"{project}:{opts.cdc_raw_dataset}.{table_name(name)}", schemas[name]),
        run_id=new_run_id(), reseed_seconds=opts.cdc_reseed_seconds,
    )  # fmt: skip
    if opts.cdc_dead_letter_topic:
        outputs["dead_letter"] | "DeadLetter" >> WriteToPubSub(opts.cdc_dead_letter_topic)
    log.info("CDC pipeline on %s: %d objects", options.view_as(StandardOptions).runner, len(objects))
    pipeline.run()
    return pipeline
