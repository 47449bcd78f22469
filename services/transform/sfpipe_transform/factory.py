"""Which transformer runs the project: the one decision, made from the adapters factory.

The adapters factory knows the mode: it hands out a Dataform API client in gcp mode and
none locally. With a client, the Dataform service compiles and runs the project; without
one, the Dataform CLI compiles it and the local runner executes it on the warehouse.
"""

from __future__ import annotations

from sfpipe.adapters import factory as adapters
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings, get_settings
from sfpipe_transform.dataform_api import DataformApiRunner
from sfpipe_transform.local import LocalRunner
from sfpipe_transform.result import Transformer


def transformer(settings: Settings | None = None, warehouse: Warehouse | None = None) -> Transformer:
    """The transformer of this mode."""
    settings = settings or get_settings()
    client = adapters.dataform_client(settings)
    if client is not None:
        return DataformApiRunner(
            client,
            settings.dataform_repository,
            settings.project,
            release_config=settings.dataform_release_config,
            git_commitish=settings.dataform_git_commitish,
            service_account=settings.dataform_service_account,
            timeout_seconds=settings.transform_timeout_seconds,
        )
    return LocalRunner.for_project(
        warehouse or adapters.warehouse(settings), settings.dataform_dir, default_database=settings.project
    )
