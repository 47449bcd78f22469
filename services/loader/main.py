"""Cloud Run / functions-framework entry of the loader.

``functions-framework --target handle --signature-type cloudevent`` serves it.

Eventarc delivers the lake bucket's finalize events here; the function is the same
EventService that ``python -m sfpipe_loader`` serves over HTTP.
"""

from __future__ import annotations

import functools

from sfpipe.service import EventService, cloud_event_entry
from sfpipe_loader.service import build_service


@functools.cache
def _service() -> EventService:
    return build_service()


handle = cloud_event_entry(_service)
