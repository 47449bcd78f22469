"""Live activity: the org keeps changing, the way sales teams change a real one.

A background thread applies operations at a configurable rate — new accounts, contacts,
leads, opportunities, tasks, events and cases; opportunities moving through the stages,
amounts and close dates changing, line items added; leads converted; tasks completed, cases
progressing; records deleted and undeleted. Every operation goes through
:mod:`sfpipe_simulator.rules` in one store transaction, so derived fields, cascades,
OpportunityHistory rows and change-log entries are exactly what a REST write would produce.
The sequence of operations is drawn from one seeded generator: with the same seed and starting
org, ``apply(n)`` makes the same changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from sfpipe_simulator import rules
from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.ids import make_id
from sfpipe_simulator.metadata import INDUSTRIES, LEAD_SOURCES, OPEN_STAGES, STAGES, get_object
from sfpipe_simulator.store import Tx, q

if TYPE_CHECKING:
    from sfpipe_simulator.runtime import Runtime

log = logging.getLogger(__name__)

ORIGIN = "com/salesforce/api/soap/62.0;client=sfpipe-activity"
TICK_SECONDS = 0.05
FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kofi", "Lena", "Mateo",
         "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wen", "Yusuf", "Zoe")  # fmt: skip
LAST = ("Adams", "Berg", "Costa", "Diaz", "Ekström", "Fischer", "Garcia", "Huang", "Ivanova", "Jensen", "Kim",
        "Lopez", "Müller", "Nakamura", "O'Brien", "Patel", "Rossi", "Schmidt", "Tanaka", "Usman", "Weber")  # fmt: skip
COMPANY = ("Northwind", "Contoso", "Fabrikam", "Initech", "Globex", "Umbrella", "Stark", "Wayne", "Acme", "Hooli",
           "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Gringotts")  # fmt: skip
SUFFIX = ("Inc", "LLC", "Group", "Ltd", "GmbH", "Partners", "Systems")
TITLES = ("CEO", "CFO", "VP Sales", "IT Manager", "Procurement Lead", "Head of Operations", "Analyst")
SUBJECTS = ("Call", "Email", "Follow up", "Send Quote", "Demo")


class ActivityEngine:
    """Applies live changes to the org, on demand or continuously."""

    def __init__(self, rt: Runtime, seed: int) -> None:
        self.rt = rt
        self.rng = np.random.default_rng(seed)
        self.rate = 0.0
        self.applied: Counter[str] = Counter()
        self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._users: list[str] = []
        self._ops: list[tuple[str, float, Callable[[Tx], None]]] = [
            ("create_account", 5, self.create_account),
            ("create_contact", 8, self.create_contact),
            ("create_lead", 9, self.create_lead),
            ("create_opportunity", 8, self.create_opportunity),
            ("create_task", 12, self.create_task),
            ("create_event", 4, self.create_event),
            ("create_case", 5, self.create_case),
            ("advance_stage", 14, self.advance_stage),
            ("change_amount", 6, self.change_amount),
            ("change_close_date", 3, self.change_close_date),
            ("add_line_item", 3, self.add_line_item),
            ("convert_lead", 4, self.convert_lead),
            ("update_contact", 4, self.update_contact),
            ("update_account", 3, self.update_account),
            ("complete_task", 4, self.complete_task),
            ("progress_case", 4, self.progress_case),
            ("delete_record", 3, self.delete_record),
            ("undelete_record", 1.5, self.undelete_record),
        ]
        weights = np.array([w for _, w, _ in self._ops], dtype=np.float64)
        self._weights = weights / weights.sum()

    # ------------------------------------------------------------------ control

    @property
    def running(self) -> bool:
        """Whether the background thread is applying changes."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, rate: float) -> None:
        """Apply ``rate`` operations per second in the background (restarts with the new rate)."""
        if rate <= 0:
            msg = f"rate must be positive, got {rate}"
            raise ValueError(msg)
        self.stop()
        self.rate = rate
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sfpipe-activity", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self.rate = 0.0

    def _loop(self) -> None:
        started = time.monotonic()
        done = 0
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.rate) - done
            if due > self.rate:
                # more than a second behind (the store is slower than the rate): drop the backlog
                done += due - 1
                due = 1
            if due <= 0:
                self._stop.wait(min(TICK_SECONDS, 1.0 / self.rate))
                continue
            self.apply_one()
            done += 1

    def apply(self, count: int) -> dict[str, int]:
        """Apply ``count`` operations now; returns how many of each kind were applied."""
        before = Counter(self.applied)
        for _ in range(count):
            self.apply_one()
        return dict(self.applied - before)

    def apply_one(self) -> str | None:
        """One operation (retried with another kind when the chosen one finds nothing to act on)."""
        with self._lock:
            for _ in range(5):
                index = int(self.rng.choice(len(self._ops), p=self._weights))
                name, _, operation = self._ops[index]
                user = self._user()
                try:
                    with self.rt.store.transaction(ORIGIN, user) as tx:
                        operation(tx)
                except _Skip:
                    continue
                except ApiError as exc:
                    self.failed += 1
                    log.debug("activity %s refused: %s", name, exc)
                    continue
                self.applied[name] += 1
                if self.rt.org_faults is not None:
                    self.rt.org_faults.after_activity()
                return name
        return None

    def status(self) -> dict[str, Any]:
        """Running state, rate and counts."""
        return {"running": self.running, "rate": self.rate, "applied": dict(self.applied),
                "total": sum(self.applied.values()), "refused": self.failed}  # fmt: skip

    # ------------------------------------------------------------------ picking records

    def _user(self) -> str:
        if not self._users:
            with self.rt.store.reader() as cur:
                self._users = [r[0] for r in cur.execute('SELECT Id FROM "User" WHERE IsActive ORDER BY Id').fetchall()]
        return self._users[int(self.rng.integers(len(self._users)))]

    def _pick(self, tx: Tx, name: str, where: str = "", columns: tuple[str, ...] = (), tries: int = 12
              ) -> dict[str, Any]:  # fmt: skip
        """A random live record matching ``where`` (its Id and the named columns)."""
        obj = get_object(name)
        assert obj is not None
        top = self.rt.store.peek_number(name)
        if top <= 0:
            raise _Skip
        names = ["Id", *columns]
        extra = f" AND ({where})" if where else ""
        numbers = self.rng.integers(1, top + 1, size=tries)
        candidates = [make_id(obj.key_prefix, self.rt.plan.pod, int(n)) for n in numbers]
        marks = ", ".join("?" for _ in candidates)
        rows = tx.select(f"SELECT {', '.join(q(n) for n in names)} FROM {q(obj.table)} "
                         f"WHERE Id IN ({marks}) AND NOT IsDeleted{extra}", candidates)  # fmt: skip
        found = {row[0]: row for row in rows}
        for candidate in candidates:  # the first candidate that qualifies: deterministic for the seed
            if candidate in found:
                return dict(zip(names, found[candidate], strict=True))
        raise _Skip

    def _choice(self, values: tuple[str, ...] | list[str]) -> str:
        return values[int(self.rng.integers(len(values)))]

    def _company(self) -> str:
        return f"{self._choice(COMPANY)} {self._choice(LAST)} {self._choice(SUFFIX)}"

    def _today(self) -> Any:
        return self.rt.clock.today()

    # ------------------------------------------------------------------ operations

    def create_account(self, tx: Tx) -> None:
        """A new account with one to three contacts."""
        account = get_object("Account")
        contact = get_object("Contact")
        assert account and contact
        account_id = rules.create(tx, account, {
            "Name": self._company(), "Industry": self._choice(INDUSTRIES), "Type": "Prospect",
            "AccountSource": self._choice(LEAD_SOURCES), "OwnerId": tx.user_id,
            "NumberOfEmployees": int(self.rng.integers(5, 5_000)),
            "BillingCity": self._choice(("Boston", "Austin", "Denver", "Seattle")), "BillingCountry": "United States",
            "BillingCountryCode": "US"}, trusted=True)  # fmt: skip
        for _ in range(int(self.rng.integers(1, 4))):
            rules.create(tx, contact, self._person(account_id), trusted=True)

    def _person(self, account_id: str | None) -> dict[str, Any]:
        first, last = self._choice(FIRST), self._choice(LAST)
        email_last = "".join(ch for ch in last.lower() if ch.isascii() and ch.isalpha())
        return {"AccountId": account_id, "FirstName": first, "LastName": last, "Title": self._choice(TITLES),
                "Email": f"{first.lower()}.{email_last}@example.com", "LeadSource": self._choice(LEAD_SOURCES)}

    def create_contact(self, tx: Tx) -> None:
        """A new contact at an existing account."""
        account = self._pick(tx, "Account", columns=("OwnerId",))
        contact = get_object("Contact")
        assert contact
        rules.create(tx, contact, {**self._person(account["Id"]), "OwnerId": account["OwnerId"]}, trusted=True)

    def create_lead(self, tx: Tx) -> None:
        """A new lead."""
        lead = get_object("Lead")
        assert lead
        person = self._person(None)
        person.pop("AccountId")
        rules.create(tx, lead, {**person, "Company": self._company(), "Industry": self._choice(INDUSTRIES),
                                "Status": "Open - Not Contacted", "OwnerId": tx.user_id}, trusted=True)  # fmt: skip

    def create_opportunity(self, tx: Tx) -> None:
        """A new opportunity at an existing account."""
        account = self._pick(tx, "Account", columns=("Name", "OwnerId"))
        opp = get_object("Opportunity")
        assert opp
        amount = round(float(self.rng.lognormal(np.log(25_000), 1.0)), 2)
        rules.create(tx, opp, {
            "AccountId": account["Id"], "Name": f"{account['Name']} - {int(self.rng.integers(1, 500))} seats"[:120],
            "StageName": OPEN_STAGES[0].name, "Amount": amount, "OwnerId": account["OwnerId"],
            "CloseDate": self._today() + timedelta(days=int(self.rng.integers(30, 180))),
            "LeadSource": self._choice(LEAD_SOURCES), "Type": "New Customer"}, trusted=True)  # fmt: skip

    def _activity_target(self, tx: Tx) -> dict[str, Any]:
        contact = self._pick(tx, "Contact", columns=("AccountId", "OwnerId"))
        return {"WhoId": contact["Id"], "WhatId": contact["AccountId"], "OwnerId": contact["OwnerId"]}

    def create_task(self, tx: Tx) -> None:
        """A new task about a contact."""
        task = get_object("Task")
        assert task
        rules.create(tx, task, {**self._activity_target(tx), "Subject": self._choice(SUBJECTS),
                                "ActivityDate": self._today() + timedelta(days=int(self.rng.integers(0, 14))),
                                "Priority": self._choice(("High", "Normal", "Normal", "Low")),
                                "TaskSubtype": "Task"}, trusted=True)  # fmt: skip

    def create_event(self, tx: Tx) -> None:
        """A new meeting."""
        event = get_object("Event")
        assert event
        start = self.rt.clock.now().replace(minute=0, second=0, microsecond=0, tzinfo=None) + timedelta(
            days=int(self.rng.integers(1, 20)))
        rules.create(tx, event, {**self._activity_target(tx), "Subject": "Meeting", "StartDateTime": start,
                                 "DurationInMinutes": int(self._choice(("30", "60", "90")))}, trusted=True)  # fmt: skip

    def create_case(self, tx: Tx) -> None:
        """A new support case."""
        contact = self._pick(tx, "Contact", columns=("AccountId",))
        case = get_object("Case")
        assert case
        rules.create(tx, case, {"ContactId": contact["Id"], "AccountId": contact["AccountId"],
                                "Subject": self._choice(("Cannot log in", "Invoice question", "Outage")),
                                "Origin": self._choice(("Phone", "Email", "Web")), "Status": "New",
                                "Priority": self._choice(("High", "Medium", "Low"))}, trusted=True)  # fmt: skip

    def advance_stage(self, tx: Tx) -> None:
        """An open opportunity moves on: the next stage, or closed won / lost."""
        opp = self._pick(tx, "Opportunity", "NOT IsClosed", ("StageName",))
        order = [s.name for s in STAGES]
        position = order.index(opp["StageName"])
        roll = float(self.rng.random())
        if roll < 0.15:
            stage = "Closed Lost"
        elif position >= len(OPEN_STAGES) - 1:
            stage = "Closed Won" if roll < 0.7 else "Closed Lost"
        else:
            stage = order[position + 1]
        values: dict[str, Any] = {"StageName": stage}
        if stage.startswith("Closed"):
            values["CloseDate"] = self._today()
        obj = get_object("Opportunity")
        assert obj
        rules.update(tx, obj, opp["Id"], values, trusted=True)

    def change_amount(self, tx: Tx) -> None:
        """An open opportunity without products changes its amount."""
        opp = self._pick(tx, "Opportunity", "NOT IsClosed AND NOT HasOpportunityLineItem AND Amount IS NOT NULL",
                         ("Amount",))
        factor = float(self.rng.choice([0.8, 0.9, 1.1, 1.25, 1.5]))
        obj = get_object("Opportunity")
        assert obj
        rules.update(tx, obj, opp["Id"], {"Amount": round(opp["Amount"] * factor, 2)}, trusted=True)

    def change_close_date(self, tx: Tx) -> None:
        """An open opportunity slips."""
        opp = self._pick(tx, "Opportunity", "NOT IsClosed", ("CloseDate",))
        obj = get_object("Opportunity")
        assert obj
        later = opp["CloseDate"] + timedelta(days=int(self.rng.integers(7, 60)))
        rules.update(tx, obj, opp["Id"], {"CloseDate": later}, trusted=True)

    def add_line_item(self, tx: Tx) -> None:
        """A product is added to an open opportunity (its amount follows)."""
        opp = self._pick(tx, "Opportunity", "NOT IsClosed AND (HasOpportunityLineItem OR Amount IS NULL "
                         "OR Pricebook2Id IS NOT NULL)", ("Pricebook2Id",))  # fmt: skip
        pricebook = opp["Pricebook2Id"]
        where = "Pricebook2Id = ?" if pricebook else "Pricebook2Id = (SELECT Id FROM Pricebook2 WHERE IsStandard)"
        entries = tx.select(f"SELECT Id FROM PricebookEntry WHERE {where} AND IsActive AND NOT IsDeleted ORDER BY Id",
                            [pricebook] if pricebook else [])  # fmt: skip
        if not entries:
            raise _Skip
        entry = entries[int(self.rng.integers(len(entries)))][0]
        item = get_object("OpportunityLineItem")
        assert item
        rules.create(tx, item, {"OpportunityId": opp["Id"], "PricebookEntryId": entry,
                                "Quantity": float(self.rng.integers(1, 10))}, trusted=True)  # fmt: skip

    def convert_lead(self, tx: Tx) -> None:
        """An open lead converts into an account, a contact and (mostly) an opportunity."""
        lead = self._pick(tx, "Lead", "NOT IsConverted AND Status <> 'Closed - Not Converted'")
        rules.convert_lead(tx, lead["Id"], create_opportunity=bool(self.rng.random() < 0.8), today=self._today())

    def update_contact(self, tx: Tx) -> None:
        """A contact changes title or phone."""
        contact = self._pick(tx, "Contact")
        obj = get_object("Contact")
        assert obj
        values = ({"Title": self._choice(TITLES)} if self.rng.random() < 0.5 else
                  {"Phone": f"(555) 555-{int(self.rng.integers(0, 10_000)):04d}"})  # fmt: skip
        rules.update(tx, obj, contact["Id"], values, trusted=True)

    def update_account(self, tx: Tx) -> None:
        """An account changes rating, type or size."""
        account = self._pick(tx, "Account")
        obj = get_object("Account")
        assert obj
        values = {"Rating": self._choice(("Hot", "Warm", "Cold")), "Type": self._choice(("Prospect",
                  "Customer - Direct", "Customer - Channel"))}  # fmt: skip
        rules.update(tx, obj, account["Id"], values, trusted=True)

    def complete_task(self, tx: Tx) -> None:
        """An open task is done."""
        task = self._pick(tx, "Task", "NOT IsClosed")
        obj = get_object("Task")
        assert obj
        rules.update(tx, obj, task["Id"], {"Status": "Completed"}, trusted=True)

    def progress_case(self, tx: Tx) -> None:
        """An open case moves on."""
        case = self._pick(tx, "Case", "NOT IsClosed", ("Status",))
        nxt = {"New": "Working", "Working": "Closed", "Escalated": "Closed"}.get(case["Status"], "Closed")
        if case["Status"] == "Working" and self.rng.random() < 0.2:
            nxt = "Escalated"
        obj = get_object("Case")
        assert obj
        rules.update(tx, obj, case["Id"], {"Status": nxt}, trusted=True)

    def delete_record(self, tx: Tx) -> None:
        """A record goes to the recycle bin (accounts and opportunities take their children along)."""
        name = self._choice(("Task", "Task", "Event", "Contact", "Lead", "Opportunity", "Case", "Account"))
        record = self._pick(tx, name, "NOT IsConverted" if name == "Lead" else "")
        obj = get_object(name)
        assert obj
        rules.delete(tx, obj, record["Id"])

    def undelete_record(self, tx: Tx) -> None:
        """A record in the recycle bin is restored."""
        name = self._choice(("Task", "Contact", "Lead", "Opportunity", "Case", "Account"))
        obj = get_object(name)
        assert obj
        recent = tx.select(f"SELECT Id FROM {q(obj.table)} WHERE IsDeleted ORDER BY Id DESC LIMIT 20")
        if not recent:
            raise _Skip
        record_id = recent[int(self.rng.integers(len(recent)))][0]
        parent = _deleted_parent(tx, name, record_id)
        if parent:
            raise _Skip
        rules.undelete(tx, obj, record_id)


class _Skip(Exception):
    """The chosen operation found nothing suitable to act on."""


def _deleted_parent(tx: Tx, name: str, record_id: str) -> bool:
    """Whether a record's cascade parent is itself deleted (then it comes back only with its parent)."""
    parents = {"Contact": ("Account", "AccountId"), "Opportunity": ("Account", "AccountId"),
               "Case": ("Account", "AccountId")}  # fmt: skip
    if name not in parents:
        return False
    parent, column = parents[name]
    rows = tx.select(f"SELECT p.IsDeleted FROM {q(name)} c JOIN {q(parent)} p ON p.Id = c.{q(column)} "
                     "WHERE c.Id = ?", [record_id])  # fmt: skip
    return bool(rows and rows[0][0])
