"""The Dataflow CDC pipeline: its BigQuery CDC write configuration, its graph on FnApiRunner, and its
per-record last-writer-wins agreeing with the warehouse MERGE."""

import importlib.util
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apache_beam as beam
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that

from sfpipe_beam.cdc.changes import RowState
from sfpipe_beam.cdc.pipeline import CdcStreamOptions, bigquery_sink, build, cdc_row

RUN = "20260301T000000Z-0a1b2c3d"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _local_options():
    """FnApiRunner options; other pipelines' required options (parsed by every run) get placeholders."""
    import argparse

    args = ["--runner=FnApiRunner"]
    pending = list(PipelineOptions.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        parser = argparse.ArgumentParser()
        cls._add_argparse_args(parser)
        args += [f"{a.option_strings[0]}=placeholder" for a in parser._actions if a.required and a.option_strings]
    return PipelineOptions(args)


def _apply_tests():
    path = Path(__file__).parent / "test_beam_cdc_apply.py"
    spec = importlib.util.spec_from_file_location("cdc_apply_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writes_are_storage_write_api_cdc_upserts_on_the_primary_key():
    schema = {"fields": [{"name": "Id", "type": "STRING", "mode": "NULLABLE"}]}
    sink = bigquery_sink("proj:sfpipe_raw.account", schema)
    assert isinstance(sink, WriteToBigQuery)
    assert sink.method == WriteToBigQuery.Method.STORAGE_WRITE_API
    assert sink._use_cdc_writes is True and sink._primary_key == ["Id"]
    assert sink.use_at_least_once is True  # CDC writes require the default (at-least-once) stream
    assert sink.create_disposition == BigQueryDisposition.CREATE_NEVER
    assert sink.write_disposition == BigQueryDisposition.WRITE_APPEND
    assert sink.table_reference.datasetId == "sfpipe_raw" and sink.table_reference.tableId == "account"


def test_options_parse():
    opts = PipelineOptions(["--cdc_subscription=projects/p/subscriptions/cdc-stream", "--cdc_objects=Account,Contact"])
    cdc = opts.view_as(CdcStreamOptions)
    assert cdc.cdc_subscription.endswith("/cdc-stream") and cdc.cdc_raw_dataset == "sfpipe_raw"
    assert cdc.cdc_objects == "Account,Contact"


def _message(entity, rid, kind, ms, cn, values=None, changed=None, types=None):
    body = {"run_id": RUN, "entity": entity, "change_type": kind, "record_ids": [rid],
            "changed_fields": changed or [], "nulled_fields": [], "diff_fields": [], "values": values or {},
            "commit_timestamp": (T0 + timedelta(milliseconds=ms)).isoformat(), "commit_number": cn,
            "transaction_key": f"tx{cn}", "sequence_number": 1, "commit_user": "005U",
            "field_types": types or {}}  # fmt: skip
    return PubsubMessage(json.dumps(body).encode(), {"ce-id": f"tx{cn}.1.{rid}"})


def test_graph_resolves_partial_updates_into_whole_rows_in_any_order():
    seeded = {("Account", "001A"): {"Id": "001A", "Name": "Acme", "Rating": "Cold", "IsDeleted": False,
                                    "_version": T0, "_commit_number": 0}}  # fmt: skip
    messages = [
        _message("Account", "001A", "UPDATE", 1500, 11, {"Rating": "Hot"}, ["Rating"]),
        _message("Account", "001A", "UPDATE", 900, 10, {"Rating": "Warm", "Website": "w"}, ["Rating", "Website"]),
        _message("Account", "001A", "UPDATE", 1500, 11, {"Rating": "Hot"}, ["Rating"]),
        _message("Account", "001B", "CREATE", 2000, 12, {"Id": "001B", "Name": "Beta"}, [],
                 {"Name": "string", "Rating": "picklist", "IsDeleted": "boolean"}),
        _message("Account", "001B", "DELETE", 3000, 13),
        PubsubMessage(b"{broken", {}),
    ]  # fmt: skip
    columns = {"Account": ["Id", "Name", "Rating", "Website", "IsDeleted", "SystemModstamp"]}

    def newest(rows):
        best = {}
        for row in rows:
            key = row["record"]["Id"]
            seq = tuple(int(p, 16) for p in row["row_mutation_info"]["change_sequence_number"].split("/"))
            if key not in best or seq > best[key][0]:
                best[key] = (seq, row)
        return {k: v[1] for k, v in best.items()}

    def check(rows):
        final = newest(rows)
        a, b = final["001A"]["record"], final["001B"]["record"]
        assert (a["Name"], a["Rating"], a["Website"], a["_commit_number"]) == ("Acme", "Hot", "w", 11), a
        assert (b["Name"], b["IsDeleted"], b["_hard_deleted"], b["_commit_number"]) == ("Beta", True, False, 13), b
        assert all(r["row_mutation_info"]["mutation_type"] == "UPSERT" for r in rows)
        assert all(set(r["record"]) >= {"_run_id", "_source", "_version", "_ingested_at"} for r in rows)

    def dead(items):
        assert items == [b"{broken"]

    with beam.Pipeline(options=_local_options()) as p:
        out = build(p, p | beam.Create(messages), objects=["Account", "Contact"], columns=columns,
                    lookup=lambda entity, rid: seeded.get((entity, rid)),
                    sink=lambda name: beam.Map(lambda row: row), run_id=RUN)  # fmt: skip
        assert_that(out["Account"], check, label="rows")
        assert_that(out["dead_letter"], dead, label="dead")


def test_row_state_agrees_with_the_warehouse_merge(tmp_path):
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
    from sfpipe_beam.cdc.apply import CdcApplier

    cases = _apply_tests()
    for seed in (7, 8):
        rng = random.Random(seed)
        history = cases._history(rng, records=5, steps=60)
        deliveries = history + rng.sample(history, 15)
        rng.shuffle(deliveries)
        states: dict[str, RowState] = {}
        for change in deliveries:
            states.setdefault(change.record_id, RowState()).apply(change)
        wh = DuckDBWarehouse(EmbeddedSession(tmp_path / f"w{seed}.duckdb"), scratch=tmp_path / f"s{seed}")
        applier = CdcApplier(wh)
        for change in history:
            applier.apply([change], run_id=RUN)
        columns = ["Name", "Rating", "AnnualRevenue", "Title", "IsDeleted", "SystemModstamp", "_hard_deleted"]
        for row in cases.rows(wh, "account", ["Id", *columns, "_version", "_commit_number"]):
            state = states[row["Id"]]
            assert {c: state.values.get(c) for c in columns} == {c: row[c] for c in columns}, row["Id"]
            assert state.row_version == (row["_version"], row["_commit_number"])


def test_cdc_row_names_every_column():
    state = RowState()
    from sfpipe_beam.cdc.changes import Change

    state.apply(Change("Account", "001A", "UPDATE", T0, 4, 1, {"Rating": "Hot"}, ("Rating",)))
    state.emitted = 3
    row = {**state.values, "Id": "001A", "_version": T0, "_commit_number": 4, "_sequence": state.sequence_number()}
    out = cdc_row(row, ["Id", "Name", "Rating"], RUN)
    assert out["record"]["Name"] is None and out["record"]["Rating"] == "Hot" and out["record"]["_hard_deleted"] is False
    millis = int(T0.timestamp() * 1000)
    assert out["row_mutation_info"]["change_sequence_number"] == f"{millis:X}/4/3"


class _State:
    def __init__(self):
        self.value = None

    def read(self):
        return self.value

    def write(self, value):
        self.value = value


def test_an_old_state_is_reseeded_from_the_raw_row_a_batch_load_wrote():
    from sfpipe_beam.cdc.changes import Change
    from sfpipe_beam.cdc.pipeline import ResolveFullRows

    rows = {"001A": {"Id": "001A", "Name": "Acme", "Rating": "Cold", "_version": T0, "_commit_number": 0}}
    resolve = ResolveFullRows(lambda entity, rid: rows.get(rid), reseed_seconds=0.0)
    state = _State()
    first = Change("Account", "001A", "UPDATE", T0 + timedelta(seconds=1), 5, 1, {"Rating": "Hot"}, ("Rating",))
    [(_, row)] = list(resolve.process(("Account|001A", first), state=state))
    assert (row["Name"], row["Rating"]) == ("Acme", "Hot")
    # a batch load writes a newer row; the next change starts from it, not from the state
    rows["001A"] = {"Id": "001A", "Name": "Acme Corp", "Rating": "Warm", "_version": T0 + timedelta(seconds=3),
                    "_commit_number": 0}  # fmt: skip
    second = Change("Account", "001A", "UPDATE", T0 + timedelta(seconds=4), 6, 1, {"Website": "w"}, ("Website",))
    [(_, row)] = list(resolve.process(("Account|001A", second), state=state))
    assert (row["Name"], row["Rating"], row["Website"], row["_commit_number"]) == ("Acme Corp", "Warm", "w", 6)
    assert state.value.emitted == 2
