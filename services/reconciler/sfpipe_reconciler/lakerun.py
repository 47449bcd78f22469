"""Writing a repair or formula run to the lake exactly as the extractor writes an extract.

Parts go through the extractor's :class:`~sfpipe_extractor.writer.ObjectWriter` (zstd Parquet,
describe's types, streamed, an aborted part cancelled) under the same
``salesforce/<Object>/ingest_date=…/run_id=…/`` layout; the manifest is written last and its
finalize notification makes the loader load the run, on the same path as any extract. The run's
``kind`` (``repair`` or ``formula``) tells the loader that an equal version may replace the
stored one, and ``hard_deleted_ids`` become tombstones. Watermarks are not touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Literal

from sfpipe.adapters.storage import ObjectStore
from sfpipe.ids import new_run_id
from sfpipe.lake import Manifest, ManifestField, ManifestObject, data_uri, manifest_uri
from sfpipe.salesforce.types import FieldInfo, schema_fingerprint
from sfpipe_extractor.convert import PageConverter
from sfpipe_extractor.writer import ObjectWriter

log = logging.getLogger(__name__)

Kind = Literal["repair", "formula"]


@dataclass
class RunWriter:
    """One repair or formula run: objects are added one by one, the manifest goes last."""

    store: ObjectStore
    bucket: str
    kind: Kind
    run_id: str = field(default_factory=new_run_id)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    objects: dict[str, ManifestObject] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def writer(self, sobject: str, converter: PageConverter) -> ObjectWriter:
        """A Parquet writer for one object's rows in this run."""
        return ObjectWriter(
            self.store, partial(data_uri, self.bucket, sobject, self.created_at.date(), self.run_id), converter.schema
        )

    def add(
        self,
        sobject: str,
        writer: ObjectWriter,
        fields: list[FieldInfo],
        converter: PageConverter,
        *,
        hard_deleted: list[str] | None = None,
        seconds: float | None = None,
    ) -> ManifestObject:
        """Close an object's parts and list them (with its hard deletes) for the manifest."""
        files = writer.close()
        entry = ManifestObject(
            files=files,
            rows=writer.rows,
            window_from=None,
            window_to=datetime.now(UTC),
            schema_fingerprint=schema_fingerprint(converter.schema),
            fields=[ManifestField(name=f.name, type=f.type, calculated=f.calculated) for f in fields],
            watermark=None,
            api="rest" if files else "none",
            kind=self.kind,
            hard_deleted_ids=sorted(set(hard_deleted or [])),
            seconds=round(seconds, 3) if seconds is not None else None,
        )
        self.objects[sobject] = entry
        return entry

    def commit(self, org_id: str | None) -> str | None:
        """Write the manifest (last); returns its URI, or None when the run holds nothing."""
        if not self.objects:
            return None
        manifest = Manifest(
            run_id=self.run_id,
            created_at=self.created_at,
            mode=self.kind,
            org_id=org_id,
            objects=self.objects,
            failed=self.failed,
            completed_at=datetime.now(UTC),
        )
        uri = manifest_uri(self.bucket, self.run_id)
        self.store.put_bytes(uri, manifest.model_dump_json(indent=2).encode(), content_type="application/json")
        log.info("wrote %s (%s of %d objects)", uri, self.kind, len(self.objects))
        return uri
