"""The raw columns the Dataform project reads (``dataform/required_raw_columns.yaml``).

The file is the contract with the simulator and the loader; this module turns it into
Arrow schemas, so that tests, the benchmark and fixtures build raw tables exactly as the
loader would (Salesforce types through :mod:`sfpipe.salesforce.types`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import yaml

from sfpipe.adapters.warehouse.schema import arrow_type as warehouse_arrow_type
from sfpipe.errors import BadInputError
from sfpipe.salesforce.types import arrow_type as salesforce_arrow_type

FILE_NAME = "required_raw_columns.yaml"


@dataclass(frozen=True)
class RawObject:
    """One Salesforce object's raw table and the fields the project reads."""

    name: str
    table: str
    fields: dict[str, str]


@dataclass(frozen=True)
class RawContract:
    """Every raw table the project reads."""

    objects: dict[str, RawObject]
    metadata: dict[str, str]
    change_logs: dict[str, tuple[str, list[str]]]

    @classmethod
    def load(cls, project_dir: Path) -> RawContract:
        """Read the contract from the Dataform project folder."""
        path = project_dir / FILE_NAME
        try:
            document = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            msg = f"{path} is missing"
            raise BadInputError(msg, field="dataform_dir") from None
        objects = {
            name: RawObject(name, spec["table"], dict(spec["fields"])) for name, spec in document["objects"].items()
        }
        change_logs = {
            table: (spec["object"], list(spec["fields"])) for table, spec in (document.get("change_logs") or {}).items()
        }
        return cls(objects, dict(document["metadata_columns"]), change_logs)

    def metadata_fields(self) -> list[pa.Field]:
        """The loader's metadata columns."""
        return [pa.field(name, warehouse_arrow_type(kind)) for name, kind in self.metadata.items()]

    def schema(self, obj: str) -> pa.Schema:
        """The raw table of an object: its fields, then the metadata columns."""
        spec = self.objects[obj]
        fields = [pa.field(name, salesforce_arrow_type(kind)) for name, kind in spec.fields.items()]
        return pa.schema([*fields, *self.metadata_fields()])

    def change_log_schema(self, table: str) -> pa.Schema:
        """A change log's columns: the object's raw table plus ``_source_file``."""
        obj, _ = self.change_logs[table]
        return self.schema(obj).append(pa.field("_source_file", pa.string()))

    def tables(self) -> dict[str, pa.Schema]:
        """Every raw table the project reads, by table name."""
        out = {spec.table: self.schema(name) for name, spec in self.objects.items()}
        out.update({table: self.change_log_schema(table) for table in self.change_logs})
        return out
