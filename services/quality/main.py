"""Cloud Run / functions-framework entry of the quality service.

Eventarc delivers ``sfpipe.transform.completed`` here; the same code as ``python -m
sfpipe_quality`` handles it (the suites run on BigQuery in gcp mode).
"""

from __future__ import annotations

import functools

import functions_framework

from sfpipe.service import cloud_event_entry
from sfpipe_quality.service import build_service

handle = functions_framework.cloud_event(cloud_event_entry(functools.cache(build_service)))
