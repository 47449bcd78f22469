"""Faults of the org itself: what makes incremental syncs silently miss data on a real Salesforce.

Three kinds, each deterministic by the fault seed and the number of the injection, and off
unless asked for (``POST /admin/faults/inject``, or a rate in the fault configuration that
follows live activity):

- ``late_commit``: a transaction that began ``late_commit_seconds`` ago commits now. Its
  records carry the old SystemModstamp (Salesforce stamps records when the work is done, and a
  long Apex transaction or a locked row can hold the commit back), older than an extractor's
  watermark minus its lookback: the next incremental window starts after it. Two in three
  update a record (a stale copy downstream), one in three creates one (a missing copy).
- ``formula_drift``: an account's Industry changes; Opportunity's formula field
  ``Account_Industry__c`` (``TEXT(Account.Industry)``) changes on every opportunity of the
  account without their SystemModstamp moving, and without a change event.
- ``hard_delete``: a record leaves the org for good. One in two is a record already in the
  recycle bin being purged (its deletion date is the original one, long before the current
  window, so an extractor's ``sobjects/X/deleted`` check of the window does not list it); the
  other is a live record hard-deleted now. Both disappear from queryAll and stay listed by
  ``sobjects/X/deleted`` for 15 days.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sfpipe_simulator import rules
from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.ids import make_id
from sfpipe_simulator.metadata import INDUSTRIES, ObjectDef, get_object
from sfpipe_simulator.rng import mix, stream_key
from sfpipe_simulator.store import Tx, q, utc_naive

if TYPE_CHECKING:
    from sfpipe_simulator.runtime import Runtime

Kind = Literal["late_commit", "formula_drift", "hard_delete"]
KINDS: tuple[Kind, ...] = ("late_commit", "formula_drift", "hard_delete")
ORIGIN = "com/salesforce/api/soap/62.0;client=sfpipe-faults"
LATE_OBJECTS = ("Account", "Contact", "Opportunity", "Lead", "Case")
PURGE_OBJECTS = ("Task", "Event", "OpportunityLineItem", "CampaignMember")
HARD_DELETE_OBJECTS = ("Task", "Event")
CANDIDATES = 24
CREATES: dict[str, dict[str, Any]] = {
    "Account": {"Name": "Late Commit Ltd", "Industry": "Technology"},
    "Lead": {"LastName": "Latecomer", "Company": "Late Commit Ltd", "Status": "Open - Not Contacted"},
}
"""Records a late transaction may create (the rest of the kinds update one)."""


class OrgFaults:
    """Injects org-level faults into a running org and remembers what it did."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._lock = threading.Lock()
        self._injections = 0
        self._activity_ops = 0
        self.injected: dict[str, int] = defaultdict(int)

    # ------------------------------------------------------------------ entry points

    def inject(
        self,
        kind: str,
        count: int = 1,
        *,
        objects: list[str] | None = None,
        age_seconds: float | None = None,
    ) -> dict[str, list[str]]:
        """Apply ``count`` faults of a kind now; returns the affected Ids per object."""
        if kind not in KINDS:
            raise ApiError(400, "INVALID_FAULT_CONFIG", f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not 1 <= count <= 10_000:
            raise ApiError(400, "INVALID_FAULT_CONFIG", f"count must be between 1 and 10000, got {count}")
        names = self._objects(kind, objects)
        out: dict[str, list[str]] = defaultdict(list)
        with self._lock:
            for _ in range(count):
                self._injections += 1
                rng = np.random.default_rng([self.rt.faults.config.seed, self._injections])
                done = self._one(kind, rng, names, age_seconds)
                for name, ids in done.items():
                    out[name].extend(ids)
                if done:
                    self.injected[kind] += 1
        return {k: sorted(v) for k, v in out.items()}

    def after_activity(self) -> None:
        """Called after each live-activity operation: inject faults at the configured rates."""
        config = self.rt.faults.config
        rates = {"late_commit": config.late_commit_rate, "formula_drift": config.formula_drift_rate,
                 "hard_delete": config.hard_delete_rate}  # fmt: skip
        if not any(rates.values()):
            return
        self._activity_ops += 1
        index = np.array([self._activity_ops], dtype=np.uint64)
        for kind, rate in rates.items():
            if not rate:
                continue
            draw = float(mix(stream_key(config.seed, "orgfaults", kind), index)[0] >> np.uint64(11)) / 2.0**53
            if draw < rate:
                try:
                    self.inject(kind, 1)
                except ApiError:
                    continue

    def status(self) -> dict[str, Any]:
        """How many faults of each kind were injected."""
        return dict(self.injected)

    # ------------------------------------------------------------------ the kinds

    def _objects(self, kind: str, objects: list[str] | None) -> list[ObjectDef]:
        defaults = {"late_commit": LATE_OBJECTS, "formula_drift": ("Account",), "hard_delete": PURGE_OBJECTS}
        out = []
        for name in objects or defaults[kind]:
            obj = get_object(name)
            if obj is None or not self.rt.store.has_object(obj.name):
                raise ApiError(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
            if kind != "formula_drift" and not obj.has_is_deleted:
                raise ApiError(400, "INVALID_TYPE", f"{obj.name} is never deleted and cannot take this fault")
            out.append(obj)
        if kind == "formula_drift" and [o.name for o in out] != ["Account"]:
            raise ApiError(400, "INVALID_TYPE", "formula drift changes accounts (Opportunity.Account_Industry__c)")
        return out

    def _one(self, kind: str, rng: np.random.Generator, objects: list[ObjectDef], age: float | None
             ) -> dict[str, list[str]]:  # fmt: skip
        if kind == "late_commit":
            return self._late_commit(rng, objects, age)
        if kind == "formula_drift":
            return self._formula_drift(rng)
        return self._hard_delete(rng, objects)

    def _user(self, tx: Tx) -> str:
        row = tx.select('SELECT Id FROM "User" WHERE IsActive ORDER BY Id LIMIT 1')
        return str(row[0][0]) if row else ""

    def _pick(self, tx: Tx, rng: np.random.Generator, obj: ObjectDef, where: str, params: list[Any]) -> str | None:
        top = self.rt.store.peek_number(obj.name)
        if top <= 0:
            return None
        numbers = rng.integers(1, top + 1, size=CANDIDATES)
        candidates = [make_id(obj.key_prefix, self.rt.plan.pod, int(n)) for n in numbers]
        marks = ", ".join("?" for _ in candidates)
        rows = tx.select(f"SELECT Id FROM {q(obj.table)} WHERE Id IN ({marks}) AND {where}", [*candidates, *params])
        found = {r[0] for r in rows}
        return next((c for c in candidates if c in found), None)

    def _late_commit(self, rng: np.random.Generator, objects: list[ObjectDef], age: float | None
                     ) -> dict[str, list[str]]:  # fmt: skip
        seconds = age if age is not None else self.rt.faults.config.late_commit_seconds
        started = (self.rt.clock.now() - timedelta(seconds=seconds)).replace(microsecond=0)
        obj = objects[int(rng.integers(len(objects)))]
        create = rng.random() < 1 / 3
        with self.rt.store.transaction(ORIGIN, "", started_at=started) as tx:
            tx.user_id = self._user(tx)
            if create and obj.name in CREATES:
                new_id = rules.create(tx, obj, dict(CREATES[obj.name], Description=f"late {self._injections}"),
                                      trusted=True)  # fmt: skip
                return {obj.name: [new_id]}
            # a record last changed before the transaction began (its row lock was held since then)
            record = self._pick(tx, rng, obj, "NOT IsDeleted AND SystemModstamp < ?", [utc_naive(started)])
            if record is None:
                return {}
            text = next(n for n in ("Description", "Subject", "Name") if (f := obj.field(n)) and f.updateable)
            rules.update(tx, obj, record, {text: f"Late commit {self._injections}"}, trusted=True)
            return {obj.name: [record]}

    def _formula_drift(self, rng: np.random.Generator) -> dict[str, list[str]]:
        account = get_object("Account")
        assert account is not None
        with self.rt.store.transaction(ORIGIN, "") as tx:
            tx.user_id = self._user(tx)
            record = self._pick(tx, rng, account, 'NOT IsDeleted AND Id IN (SELECT AccountId FROM "Opportunity")', [])
            if record is None:
                return {}
            current = tx.select('SELECT Industry FROM "Account" WHERE Id = ?', [record])[0][0]
            choices = [i for i in INDUSTRIES if i != current]
            rules.update(tx, account, record, {"Industry": choices[int(rng.integers(len(choices)))]}, trusted=True)
            moved = [r[0] for r in tx.select('SELECT Id FROM "Opportunity" WHERE AccountId = ? ORDER BY Id', [record])]
        return {"Account": [record], "Opportunity": moved}

    def _hard_delete(self, rng: np.random.Generator, objects: list[ObjectDef]) -> dict[str, list[str]]:
        purge = rng.random() < 0.5
        choices = objects if purge else [o for o in objects if o.name in HARD_DELETE_OBJECTS] or objects
        obj = choices[int(rng.integers(len(choices)))]
        with self.rt.store.transaction(ORIGIN, "") as tx:
            tx.user_id = self._user(tx)
            if purge:
                rows = tx.select(f"SELECT Id, SystemModstamp FROM {q(obj.table)} WHERE IsDeleted ORDER BY Id")
                if rows:
                    record, deleted_at = rows[int(rng.integers(len(rows)))]
                    tx.purge(obj, record, deleted_at, event=False)
                    return {obj.name: [record]}
            record = self._pick(tx, rng, obj, "NOT IsDeleted", [])
            if record is None:
                return {}
            tx.purge(obj, record, tx.stamp, event=True)
            return {obj.name: [record]}
