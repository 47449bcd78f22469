"""Runs in the lake exactly as the extractor writes them, for the loader's tests and benchmark.

Parquet per object under ``salesforce/<Object>/ingest_date=…/run_id=…/part-NNNNN.parquet``
(zstd, Salesforce API names, types through :mod:`sfpipe.salesforce.types`), then the
run's ``_manifest.json`` last. Values are generated column by column with numpy, so a
million Opportunity rows take seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sfpipe.adapters.storage import ObjectStore
from sfpipe.lake import Manifest, ManifestField, ManifestFile, ManifestObject, data_uri, manifest_uri
from sfpipe.salesforce.types import FieldInfo, arrow_schema, schema_fingerprint

OPPORTUNITY_FIELDS: list[tuple[str, str]] = [
    ("Id", "id"),
    ("IsDeleted", "boolean"),
    ("AccountId", "reference"),
    ("RecordTypeId", "reference"),
    ("IsPrivate", "boolean"),
    ("Name", "string"),
    ("Description", "textarea"),
    ("StageName", "picklist"),
    ("Amount", "currency"),
    ("Probability", "percent"),
    ("ExpectedRevenue", "currency"),
    ("TotalOpportunityQuantity", "double"),
    ("CloseDate", "date"),
    ("Type", "picklist"),
    ("NextStep", "string"),
    ("LeadSource", "picklist"),
    ("IsClosed", "boolean"),
    ("IsWon", "boolean"),
    ("ForecastCategory", "picklist"),
    ("ForecastCategoryName", "picklist"),
    ("CampaignId", "reference"),
    ("HasOpportunityLineItem", "boolean"),
    ("Pricebook2Id", "reference"),
    ("OwnerId", "reference"),
    ("CreatedDate", "datetime"),
    ("CreatedById", "reference"),
    ("LastModifiedDate", "datetime"),
    ("LastModifiedById", "reference"),
    ("SystemModstamp", "datetime"),
    ("LastActivityDate", "date"),
    ("LastStageChangeDate", "datetime"),
    ("FiscalQuarter", "int"),
    ("FiscalYear", "int"),
    ("Fiscal", "string"),
    ("ContactId", "reference"),
    ("LastViewedDate", "datetime"),
    ("LastReferencedDate", "datetime"),
    ("SyncedQuoteId", "reference"),
    ("HasOpenActivity", "boolean"),
    ("HasOverdueTask", "boolean"),
]

ACCOUNT_FIELDS: list[tuple[str, str]] = [
    ("Id", "id"),
    ("IsDeleted", "boolean"),
    ("MasterRecordId", "reference"),
    ("Name", "string"),
    ("Type", "picklist"),
    ("ParentId", "reference"),
    ("BillingStreet", "textarea"),
    ("BillingCity", "string"),
    ("BillingState", "string"),
    ("BillingPostalCode", "string"),
    ("BillingCountry", "string"),
    ("Phone", "phone"),
    ("Website", "url"),
    ("Industry", "picklist"),
    ("AnnualRevenue", "currency"),
    ("NumberOfEmployees", "int"),
    ("OwnerId", "reference"),
    ("CreatedDate", "datetime"),
    ("LastModifiedDate", "datetime"),
    ("SystemModstamp", "datetime"),
    ("LastActivityDate", "date"),
]

FIELDS: dict[str, list[tuple[str, str]]] = {"Opportunity": OPPORTUNITY_FIELDS, "Account": ACCOUNT_FIELDS}
PREFIXES = {"Opportunity": "006", "Account": "001", "Contact": "003", "User": "005", "Campaign": "701"}

_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_SUFFIX = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)
_WORDS = np.array(
    ["Acme", "Global", "Summit", "Northwind", "Contoso", "Initech", "Umbrella", "Stark", "Wayne", "Tyrell"],
    dtype=object,
)
_PICKLISTS: dict[str, list[str]] = {
    "StageName": [
        "Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote", "Closed Won", "Closed Lost"
    ],
    "Type": ["New Customer", "Existing Customer - Upgrade", "Existing Customer - Replacement"],
    "LeadSource": ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"],
    "ForecastCategory": ["Pipeline", "BestCase", "Commit", "Closed", "Omitted"],
    "ForecastCategoryName": ["Pipeline", "Best Case", "Commit", "Closed", "Omitted"],
    "Industry": ["Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Energy"],
}


def salesforce_ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """18-character Salesforce Ids (with the case-safe checksum suffix) for record numbers."""
    n = len(numbers)
    chars = np.empty((n, 18), dtype=np.uint8)
    chars[:, :3] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    chars[:, 3:6] = np.frombuffer(b"Dn0", dtype=np.uint8)
    rest = numbers.astype(np.int64).copy()
    for pos in range(14, 5, -1):
        chars[:, pos] = _BASE62[rest % 62]
        rest //= 62
    upper = (chars[:, :15] >= ord("A")) & (chars[:, :15] <= ord("Z"))
    weights = 1 << np.arange(5)
    for chunk in range(3):
        bits = (upper[:, chunk * 5 : chunk * 5 + 5] * weights).sum(axis=1)
        chars[:, 15 + chunk] = _SUFFIX[bits]
    return pa.array(chars.view("S18").ravel().astype(str))


def _timestamps(rng: np.random.Generator, n: int, start: datetime, spread: timedelta) -> pa.Array:
    base = np.datetime64(start.astimezone(UTC).replace(tzinfo=None), "us")
    offsets = rng.integers(0, max(int(spread.total_seconds() * 1e6), 1), n).astype("timedelta64[us]")
    return pa.array(base + offsets).cast(pa.timestamp("us", tz="UTC"))


def records(
    sobject: str,
    numbers: np.ndarray,
    modstamps: np.ndarray,
    *,
    seed: int = 0,
    fields: Sequence[tuple[str, str]] | None = None,
    overrides: Mapping[str, pa.Array] | None = None,
) -> pa.Table:
    """Records of an object: ``numbers`` pick the Ids, ``modstamps`` (datetime64[us], UTC) the versions."""
    fields = list(fields or FIELDS[sobject])
    schema = arrow_schema([FieldInfo(name, sf_type) for name, sf_type in fields])
    rng = np.random.default_rng(seed)
    n = len(numbers)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    columns: dict[str, pa.Array] = {}
    for name, sf_type in fields:
        kind = sf_type.lower()
        if name == "Id":
            columns[name] = salesforce_ids(PREFIXES.get(sobject, "a00"), numbers)
        elif name in ("SystemModstamp", "LastModifiedDate"):
            columns[name] = pa.array(modstamps.astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC"))
        elif name == "IsDeleted":
            columns[name] = pa.array(np.zeros(n, dtype=bool))
        elif name == "Name":
            words = _WORDS[rng.integers(0, len(_WORDS), n)]
            columns[name] = pa.array([f"{w} {i}" for w, i in zip(words, numbers, strict=True)])
        elif kind in ("reference", "id"):
            values = salesforce_ids(PREFIXES.get(name.removesuffix("Id"), "a0X"), rng.integers(0, 50_000, n))
            mask = pa.array(rng.random(n) < 0.1)
            columns[name] = pa.compute.if_else(mask, pa.scalar(None, pa.string()), values)
        elif kind == "boolean":
            columns[name] = pa.array(rng.random(n) < 0.3)
        elif kind in ("currency", "double", "percent"):
            columns[name] = pa.array(np.round(rng.random(n) * 100_000, 2))
        elif kind in ("int", "long"):
            columns[name] = pa.array(rng.integers(1, 5000, n))
        elif kind == "date":
            columns[name] = pa.array(np.datetime64("2024-01-01") + rng.integers(0, 900, n).astype("timedelta64[D]"))
        elif kind == "datetime":
            columns[name] = _timestamps(rng, n, start, timedelta(days=700))
        elif name in _PICKLISTS:
            choices = np.array(_PICKLISTS[name], dtype=object)
            columns[name] = pa.array(choices[rng.integers(0, len(choices), n)])
        elif kind == "textarea":
            text = np.array(["Discussed the renewal and next steps with the buying committee.", None], dtype=object)
            columns[name] = pa.array(text[rng.integers(0, 2, n)])
        else:
            columns[name] = pa.array(_WORDS[rng.integers(0, len(_WORDS), n)])
    for name, values in (overrides or {}).items():
        columns[name] = values
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema]
    types = [pa.field(f.name, columns[f.name].type if f.name in (overrides or {}) else f.type) for f in schema]
    return pa.Table.from_arrays([a.cast(t.type) for a, t in zip(arrays, types, strict=True)], schema=pa.schema(types))


@dataclass
class ObjectPart:
    """One object's share of a run: its files' tables and what the manifest says about it."""

    tables: list[pa.Table] = field(default_factory=list)
    fields: list[tuple[str, str]] | None = None
    hard_deleted_ids: list[str] = field(default_factory=list)
    kind: str = "incremental"
    corrupt: set[int] = field(default_factory=set)
    """Indexes of files replaced by garbage after their manifest entry was made."""
    missing: set[int] = field(default_factory=set)
    """Indexes of files named in the manifest but never uploaded."""


def write_run(
    store: ObjectStore,
    bucket: str,
    run_id: str,
    objects: Mapping[str, ObjectPart],
    *,
    created_at: datetime | None = None,
    window_from: datetime | None = None,
    window_to: datetime | None = None,
    mode: str = "incremental",
    upload_manifest: bool = True,
) -> Manifest:
    """Upload a run's Parquet files, then its manifest (last), as the extractor does."""
    created_at = created_at or datetime.now(UTC)
    window_to = window_to or created_at
    entries: dict[str, ManifestObject] = {}
    with tempfile.TemporaryDirectory(prefix="lakegen-") as tmp:
        for sobject, part in objects.items():
            fields = part.fields or FIELDS[sobject]
            files = []
            for i, table in enumerate(part.tables):
                uri = data_uri(bucket, sobject, created_at.date(), run_id, i)
                local = Path(tmp) / f"{sobject}-{i}.parquet"
                pq.write_table(table, local, compression="zstd")
                size = local.stat().st_size
                if i in part.corrupt:
                    data = local.read_bytes()
                    local.write_bytes(b"not parquet" + data[len(data) // 2 :])
                if i in part.missing:
                    files.append(ManifestFile(uri=uri, generation=1, rows=table.num_rows, bytes=size))
                    continue
                stored = store.upload_file(uri, str(local))
                files.append(
                    ManifestFile(uri=uri, generation=stored.generation, rows=table.num_rows, bytes=stored.size)
                )
            schema = part.tables[0].schema if part.tables else arrow_schema([FieldInfo(n, t) for n, t in fields])
            watermark = None
            if part.tables:
                stamps = [t.column("SystemModstamp") for t in part.tables if t.num_rows]
                watermark = max(pa.compute.max(s).as_py() for s in stamps) if stamps else None
            entries[sobject] = ManifestObject(
                files=files,
                rows=sum(t.num_rows for t in part.tables),
                window_from=window_from,
                window_to=window_to,
                schema_fingerprint=schema_fingerprint(schema),
                fields=[ManifestField(name=n, type=t) for n, t in fields],
                watermark=watermark,
                api="bulk" if sum(t.num_rows for t in part.tables) > 50_000 else "rest",
                kind=part.kind,
                hard_deleted_ids=list(part.hard_deleted_ids),
            )
    manifest = Manifest(run_id=run_id, created_at=created_at, mode=mode, objects=entries)
    if upload_manifest:
        store.put_bytes(
            manifest_uri(bucket, run_id), manifest.model_dump_json(indent=2).encode(), content_type="application/json"
        )
    return manifest


def opportunity_backfill(
    rows: int, files: int, repeated: float = 0.2, *, seed: int = 7, start: datetime | None = None
) -> list[pa.Table]:
    """``rows`` Opportunity rows in ``files`` tables; a ``repeated`` share re-sends an Id with another version."""
    rng = np.random.default_rng(seed)
    unique = round(rows / (1 + repeated))
    repeats = rows - unique
    numbers = np.concatenate([np.arange(unique), rng.choice(unique, repeats, replace=False)])
    rng.shuffle(numbers)
    base = np.datetime64((start or datetime(2025, 1, 1, tzinfo=UTC)).replace(tzinfo=None), "us")
    stamps = base + rng.integers(0, 365 * 86_400 * 10**6, rows).astype("timedelta64[us]")
    return [
        records("Opportunity", chunk_numbers, chunk_stamps, seed=seed + i)
        for i, (chunk_numbers, chunk_stamps) in enumerate(
            zip(np.array_split(numbers, files), np.array_split(stamps, files), strict=True)
        )
    ]
