"""The quality suites, as code: ``raw``, ``marts`` and ``reconcile``.

Each module has ``VERSION`` (bumped when a check changes meaning), ``suite(facts, catalog)``
and ``tables()``. Results record the suite name; the version is in each check's Data Docs
metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe.errors import BadInputError
from sfpipe_quality.spec import Catalog, Suite
from sfpipe_quality.suites import marts, raw, reconcile
from sfpipe_quality.suites.context import RunFacts

SUITES: dict[str, ModuleType] = {"raw": raw, "marts": marts, "reconcile": reconcile}
ORDER = tuple(SUITES)

Builder = Callable[[RunFacts, Catalog], Suite]


def names(wanted: Iterable[str] | None) -> list[str]:
    """Suite names in run order; unknown names are a clear error."""
    if wanted is None:
        return list(ORDER)
    chosen = [w.strip() for w in wanted if w.strip()]
    unknown = sorted(set(chosen) - set(SUITES))
    if unknown:
        msg = f"unknown quality suite(s) {unknown}; expected some of {list(ORDER)}"
        raise BadInputError(msg, field="suite")
    return [name for name in ORDER if name in chosen]


def tables(chosen: Iterable[str]) -> list[TableRef]:
    """Every table that the chosen suites may read (to look up which exist)."""
    seen: dict[TableRef, None] = {}
    for name in chosen:
        for ref in SUITES[name].tables():
            seen[ref] = None
    return list(seen)


def build(name: str, facts: RunFacts, catalog: Catalog) -> tuple[Suite, list[str]]:
    """A suite restricted to the checks that can run on this warehouse, and notes on the rest."""
    full: Suite = SUITES[name].suite(facts, catalog)
    kept, notes = [], list(full.notes)
    for table in full.tables:
        applicable, why = catalog.applicable(table)
        notes.extend(why)
        if applicable is not None:
            kept.append(applicable)
    return Suite(full.name, full.version, tuple(kept), tuple(notes)), notes
