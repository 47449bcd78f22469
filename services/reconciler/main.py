"""Cloud Run / functions-framework entry of the reconciler.

Eventarc delivers ``sfpipe.load.completed`` here; the same code as ``python -m
sfpipe_reconciler`` handles it: reconcile what the run loaded, repair, verify repairs, alert.
"""

from __future__ import annotations

import functools

import functions_framework

from sfpipe.service import cloud_event_entry
from sfpipe_reconciler.service import build_service

handle = functions_framework.cloud_event(cloud_event_entry(functools.cache(build_service)))
