"""The loader as an event-driven service: a lake object finalize event in, a load out.

It accepts the event as Eventarc delivers it (a binary-mode CloudEvent) and as a Pub/Sub
push of a GCS notification (the local emulator, or a push subscription in the cloud).
Objects that are not run manifests of this lake are acknowledged and ignored;
``EventService`` records bucket + object + generation in ``sfpipe_ops.processed_events``
so that a redelivered event changes nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from sfpipe.adapters import factory
from sfpipe.config import LoadPath, Settings, get_settings
from sfpipe.errors import BadInputError, TerminalError
from sfpipe.events import GCS_FINALIZED, CloudEvent, StorageObject
from sfpipe.lake import is_manifest_name
from sfpipe.service import EventService, HandlerContext, Outcome
from sfpipe_loader.loader import SERVICE, Loader, run_id_from_uri

log = logging.getLogger(__name__)


def build_loader(settings: Settings, *, shared: bool = True) -> Loader:
    """The loader on this mode's warehouse, lake, bus and pipeline launcher (the process's own, if shared)."""
    if shared:
        return Loader(
            settings,
            factory.shared_warehouse(),
            factory.shared_object_store(),
            factory.shared_publisher(),
            launcher=lambda: factory.pipeline_launcher(settings),
        )
    return Loader(
        settings,
        factory.warehouse(settings),
        factory.object_store(settings),
        factory.event_publisher(settings),
        launcher=lambda: factory.pipeline_launcher(settings),
    )


def make_handler(
    settings: Settings, loader: Loader | None = None, forced: LoadPath | None = None
) -> Callable[[CloudEvent, HandlerContext], Outcome]:
    """The CloudEvent handler over one loader (built on first use)."""

    @functools.cache
    def current() -> Loader:
        return loader or build_loader(settings)

    def handle(event: CloudEvent, ctx: HandlerContext) -> Outcome:
        try:
            obj = StorageObject.model_validate(event.data)
        except ValueError as exc:
            msg = f"the event's data is not a storage object (bucket, name, generation): {exc}"
            raise BadInputError(msg, field="data") from None
        if obj.bucket != settings.lake_bucket:
            return Outcome(204, {"ignored": f"{obj.uri} is not in the lake bucket {settings.lake_bucket}"})
        if not is_manifest_name(obj.name):
            return Outcome(204, {"ignored": f"{obj.uri} is not a run manifest"})
        ctx.run_id = run_id_from_uri(obj.name)
        result = current().load_object_event(obj, event.idempotency_key, forced=forced)
        if result.ignored:
            log.info("ignoring %s: %s", obj.uri, result.ignored)
            return Outcome(204, {"ignored": result.ignored})
        ctx.run_id = result.run_id or ctx.run_id
        if not result.ok:
            raise TerminalError(result.summary())
        return Outcome(200, result.body())

    return handle


def build_service(
    settings: Settings | None = None, loader: Loader | None = None, forced: LoadPath | None = None
) -> EventService:
    """The loader's EventService (idempotent on bucket + object + generation)."""
    settings = settings or get_settings()
    return EventService(
        SERVICE,
        make_handler(settings, loader, forced),
        accepts={GCS_FINALIZED},
        warehouse=lambda: loader.warehouse if loader is not None else factory.shared_warehouse(),
        settings=settings,
    )
