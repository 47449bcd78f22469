"""Cloud Run / functions-framework entry of the transform service.

Eventarc delivers ``sfpipe.load.completed`` here; the same code as ``python -m
sfpipe_transform`` handles it (compile and invoke through the Dataform API in gcp mode).
"""

from __future__ import annotations

import functools

import functions_framework

from sfpipe.service import cloud_event_entry
from sfpipe_transform.service import build_service

handle = functions_framework.cloud_event(cloud_event_entry(functools.cache(build_service)))
