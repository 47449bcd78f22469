"""The synthetic org: deterministic by seed, vectorised, streamed to Parquet in fixed chunks.

Every attribute of every record is a pure function of ``(seed, object, attribute, index)``
(:mod:`sfpipe_simulator.rng`), and parent–child links are arithmetic on indices: child ``j`` of
``n_c`` belongs to parent ``j * n_p // n_c``, so the children of a parent are a contiguous
index range that can be computed in both directions. A child can therefore recompute its
parent's owner, creation time, deletion or price without the parent being in memory, and an
Opportunity can sum its line items' prices. Nothing of the org is ever held in memory beyond
one chunk, and the output is byte-identical for the same seed, scale, ``as_of`` and per-object counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sfpipe_simulator import vocab
from sfpipe_simulator.ids import DIGITS, KEY_PREFIXES, make_id, make_ids
from sfpipe_simulator.metadata import (
    ACCOUNT_TYPES,
    CAMPAIGN_STATUSES,
    CAMPAIGN_TYPES,
    CASE_STATUSES,
    INDUSTRIES,
    LEAD_SOURCES,
    OBJECTS,
    OBJECTS_BY_NAME,
    OPPORTUNITY_TYPES,
    OPTIONAL_OBJECTS,
    OWNERSHIP,
    PRODUCT_FAMILIES,
    RATINGS,
    SALUTATIONS,
    STAGES,
    WIDE_FEATURES,
    WIDE_FIELDS,
    WIDE_KINDS,
    WIDE_REGIONS,
    WIDE_TIERS,
    ObjectDef,
)
from sfpipe_simulator.rng import Streams

SECOND = 1_000_000
DAY = 86_400 * SECOND
HISTORY_DAYS = 3 * 365
RECYCLE_BIN_DAYS = 15
DEFAULT_AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
"""``generate`` without ``--as-of`` anchors the org here, so that seed + scale alone fix the bytes."""
CHUNK_ROWS = 65_536
ROWS_PER_FILE = 16 * CHUNK_ROWS
MIN_SCALE = 1_000
MAX_SCALE = 10_000_000
FORMAT_VERSION = 1
ADMIN_USERNAME = "admin@sfpipe.example.com"
ORG_NAME = "sfpipe Simulated Org"

# share of the records left after the small, fixed-size objects
WEIGHTS: dict[str, float] = {
    "Account": 0.10,
    "Contact": 0.20,
    "Lead": 0.11,
    "Opportunity": 0.08,
    "OpportunityLineItem": 0.10,
    "OpportunityHistory": 0.13,
    "Task": 0.12,
    "Event": 0.05,
    "CampaignMember": 0.04,
    "Case": 0.05,
    "Order": 0.02,
}
PRICEBOOK_NAMES = ("Standard Price Book", "Partner Price Book", "Enterprise Price Book")
PRICEBOOK_FACTORS = np.array([1.0, 0.85, 0.95])
PRODUCT_SHARE = (0, 1, 2)
"""Opportunities whose index modulo 5 is in this set can have line items (60 %)."""


@dataclass(frozen=True)
class Role:
    """One role of the generated hierarchy."""

    name: str
    developer_name: str
    parent: int | None
    title: str


def _roles(users: int) -> tuple[Role, ...]:
    regions = ("AMER", "EMEA", "APAC")
    managers = max(1, min(8, users // 60))
    roles = [
        Role("CEO", "CEO", None, "Chief Executive Officer"),
        Role("VP, Sales", "VP_Sales", 0, "VP Sales"),
        Role("VP, Marketing", "VP_Marketing", 0, "VP Marketing"),
        Role("VP, Customer Support", "VP_Customer_Support", 0, "VP Customer Support"),
    ]
    directors = {}
    for region in regions:
        directors[region] = len(roles)
        roles.append(Role(f"{region} Sales Director", f"{region}_Sales_Director", 1, "Sales Director"))
    leads = {}
    for m in range(1, managers + 1):
        for region in regions:
            leads[(region, m)] = len(roles)
            roles.append(Role(f"{region} Sales Manager {m}", f"{region}_Sales_Manager_{m}", directors[region],
                              "Sales Manager"))  # fmt: skip
    for m in range(1, managers + 1):
        for region in regions:
            roles.append(Role(f"{region} Sales Rep {m}", f"{region}_Sales_Rep_{m}", leads[(region, m)],
                              "Account Executive"))  # fmt: skip
    roles.append(Role("Marketing Team", "Marketing_Team", 2, "Marketing Manager"))
    roles.append(Role("Customer Support, Tier 1", "Customer_Support_Tier_1", 3, "Support Engineer"))
    roles.append(Role("Customer Support, Tier 2", "Customer_Support_Tier_2", 3, "Senior Support Engineer"))
    # the first users head one role each: keep only as many roles as there are users to head them
    return tuple(roles[: max(1, users - 1)])


@dataclass(frozen=True)
class OrgPlan:
    """How many records of each object an org of a given scale has, and its identity."""

    seed: int
    scale: int
    as_of: datetime
    counts: dict[str, int]
    roles: tuple[Role, ...] = field(repr=False)
    overrides: tuple[tuple[str, int], ...] = ()
    """Per-object counts that were asked for instead of the scale's share (part of what fixes the bytes)."""

    @classmethod
    def build(
        cls, seed: int, scale: int, as_of: datetime | None = None, counts: Mapping[str, int] | None = None
    ) -> OrgPlan:
        """Split ``scale`` records across the objects in realistic proportions.

        ``counts`` fixes the records of named objects (``{"Opportunity": 1_000_000}``); the others
        keep their share of ``scale``. Parent–child links are arithmetic on the counts, so any mix
        stays consistent. Optional custom objects (``Wide__c``) exist only when given a count.
        """
        if not MIN_SCALE <= scale <= MAX_SCALE:
            msg = f"scale must be between {MIN_SCALE:,} and {MAX_SCALE:,} records, got {scale:,}"
            raise ValueError(msg)
        if seed < 0:
            msg = f"seed must be a non-negative integer, got {seed}"
            raise ValueError(msg)
        anchor = (as_of or DEFAULT_AS_OF).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        users = max(5, min(20_000, round(scale * 0.0005)))
        roles = _roles(users)
        products = max(5, min(2_000, round(scale * 0.0005)))
        pricebooks = 3 if scale >= 5_000 else 2
        campaigns = max(2, min(5_000, round(scale * 0.0005)))
        fixed = {
            "UserRole": len(roles),
            "User": users,
            "Product2": products,
            "Pricebook2": pricebooks,
            "PricebookEntry": products * pricebooks,
            "Campaign": campaigns,
        }
        rest = scale - sum(fixed.values())
        shares = {name: rest * w for name, w in WEIGHTS.items()}
        planned = {name: math.floor(v) for name, v in shares.items()}
        left = rest - sum(planned.values())
        for name in sorted(shares, key=lambda n: (planned[n] - shares[n], n))[:left]:
            planned[name] += 1
        planned.update(fixed)
        for name in OPTIONAL_OBJECTS:
            planned[name] = 0
        overrides = check_counts(counts or {})
        planned.update(overrides)
        ordered = {o.name: planned[o.name] for o in OBJECTS}
        return cls(seed=seed, scale=scale, as_of=anchor, counts=ordered, roles=roles,
                   overrides=tuple(sorted(overrides.items())))  # fmt: skip

    @property
    def pod(self) -> str:
        """Two Id characters that stand for the org's instance (derived from the seed)."""
        return DIGITS[1 + self.seed % 9] + DIGITS[36 + (self.seed // 9) % 26]

    @property
    def org_id(self) -> str:
        """The organization Id (``00D…``)."""
        return make_id(KEY_PREFIXES["Organization"], self.pod, 1)

    def profile_id(self, admin: bool) -> str:
        """The Id of the System Administrator or the Standard User profile."""
        return make_id(KEY_PREFIXES["Profile"], self.pod, 1 if admin else 2)

    def manifest(self) -> dict[str, Any]:
        """What ``_org.json`` records: everything that determines the output."""
        return {
            "format_version": FORMAT_VERSION,
            "seed": self.seed,
            "scale": self.scale,
            "as_of": self.as_of.isoformat(),
            "org_id": self.org_id,
            "pod": self.pod,
            "counts": self.counts,
        }

    @property
    def objects(self) -> tuple[str, ...]:
        """The org's objects: the standard ones, and optional custom ones that have records."""
        return tuple(name for name, n in self.counts.items() if n > 0 or name not in OPTIONAL_OBJECTS)


def check_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Per-object counts by API name (any case), each between 0 and the largest scale."""
    out: dict[str, int] = {}
    for name, value in counts.items():
        obj = OBJECTS_BY_NAME.get(name.lower())
        if obj is None:
            msg = f"counts: {name!r} is not a simulated object; expected one of {', '.join(o.name for o in OBJECTS)}"
            raise ValueError(msg)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SCALE:
            msg = f"counts: {obj.name} must be a whole number between 0 and {MAX_SCALE:,}, got {value!r}"
            raise ValueError(msg)
        out[obj.name] = value
    return out


def parse_counts(text: str | Iterable[str]) -> dict[str, int]:
    """``Opportunity=1000000,Wide__c=2000`` (or several such items) → ``{name: count}``."""
    items = [text] if isinstance(text, str) else list(text)
    out: dict[str, int] = {}
    for item in (p.strip() for chunk in items for p in chunk.split(",")):
        if not item:
            continue
        name, sep, number = item.partition("=")
        digits = number.strip().replace("_", "")
        if not sep or not digits.isdigit():
            msg = f"counts: {item!r} is not Object=N (e.g. Opportunity=1000000)"
            raise ValueError(msg)
        out[name.strip()] = int(digits)
    return check_counts(out)


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * SECOND


def _sec(values: np.ndarray) -> np.ndarray:
    """Salesforce keeps record audit times to the second."""
    return (values // SECOND) * SECOND


def ts(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Microseconds since the epoch → a UTC timestamp array."""
    return pa.array(values.astype(np.int64), type=pa.timestamp("us", tz="UTC"), mask=mask)


def dates(days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Days since the epoch → a date array."""
    return pa.array(days.astype(np.int32), type=pa.date32(), mask=mask)


def nums(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Floats → a double array."""
    return pa.array(values.astype(np.float64), type=pa.float64(), mask=mask)


def ints(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Integers → an int64 array."""
    return pa.array(values.astype(np.int64), type=pa.int64(), mask=mask)


def bools(values: np.ndarray) -> pa.Array:
    """Booleans → a boolean array."""
    return pa.array(values.astype(bool), type=pa.bool_())


def take(words: pa.Array, picks: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Words chosen by index (null where ``mask``)."""
    out = words.take(pa.array(picks.astype(np.int64)))
    return nullify(out, mask) if mask is not None else out


def const(value: Any, n: int, type_: pa.DataType | None = None) -> pa.Array:
    """The same value n times."""
    type_ = type_ or pa.string()
    return pa.array([value] * n, type=type_) if n < 64 else pa.repeat(pa.scalar(value, type_), n)


def nullify(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """Null where ``mask`` is true."""
    if not mask.any():
        return values
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def join(*parts: pa.Array | str, sep: str = "") -> pa.Array:
    """Element-wise string concatenation."""
    return pc.binary_join_element_wise(*parts, sep)


def numstr(values: np.ndarray, width: int = 0) -> pa.Array:
    """Integers as strings, zero-padded to ``width``."""
    text = pc.cast(pa.array(values.astype(np.int64)), pa.string())
    return pc.utf8_lpad(text, width=width, padding="0") if width else text


def slug(values: pa.Array) -> pa.Array:
    """Lower-case letters and digits only (for e-mail addresses and domains)."""
    return pc.replace_substring_regex(pc.utf8_lower(values), pattern="[^a-z0-9]", replacement="")


def _child_parent(child: np.ndarray, n_child: int, n_parent: int) -> np.ndarray:
    return (child * n_parent) // max(1, n_child)


def _first_child(parent: np.ndarray, n_child: int, n_parent: int) -> np.ndarray:
    return (parent * n_child + n_parent - 1) // max(1, n_parent)


class Org:
    """The org's records as functions of their index (see the module docstring)."""

    def __init__(self, plan: OrgPlan) -> None:
        self.plan = plan
        self.n = plan.counts
        self.as_of = _us(plan.as_of)
        self.start = self.as_of - HISTORY_DAYS * DAY
        self.org_start = self.start - 30 * DAY
        self.recycle_start = self.as_of - RECYCLE_BIN_DAYS * DAY
        self.s = {o.name: Streams(plan.seed, o.name) for o in OBJECTS}
        n_opp = self.n["Opportunity"]
        self.n_product_opps = (n_opp // 5) * len(PRODUCT_SHARE) + min(n_opp % 5, len(PRODUCT_SHARE))

    # ------------------------------------------------------------------ shared helpers

    def ids(self, obj: str, idx: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
        """18-character Ids of records by index (null where ``mask``)."""
        out = make_ids(KEY_PREFIXES[obj], self.plan.pod, idx + 1)
        return nullify(out, mask) if mask is not None else out

    def monotone_created(self, obj: str, idx: np.ndarray, begin: int, exponent: float = 0.6) -> np.ndarray:
        """Creation times that grow with the index (more records recently, as in a growing org)."""
        n = max(1, self.n[obj])
        frac = (idx + self.s[obj].uniform("created", idx)) / n
        return _sec(begin + ((self.as_of - SECOND - begin) * frac**exponent).astype(np.int64))

    def after(self, obj: str, name: str, idx: np.ndarray, base: np.ndarray, power: float = 3.0,
              share: float = 1.0) -> np.ndarray:  # fmt: skip
        """A time between ``base`` and now, biased towards ``base``."""
        span = np.maximum(self.as_of - SECOND - base, 0)
        return _sec(base + (span * share * self.s[obj].uniform(name, idx) ** power).astype(np.int64))

    def owner(self, obj: str, name: str, idx: np.ndarray) -> np.ndarray:
        """A user index, never the integration admin when there are other users."""
        users = self.n["User"]
        if users <= 1:
            return np.zeros(len(idx), dtype=np.int64)
        return self.s[obj].integers(name, idx, 1, users)

    def timeline(self, obj: str, idx: np.ndarray, created: np.ndarray, deleted: np.ndarray,
                 cascade_at: np.ndarray | None = None, power: float = 3.0) -> dict[str, np.ndarray]:  # fmt: skip
        """LastModifiedDate, SystemModstamp and the deletion time of records.

        Deleted records were deleted inside the recycle-bin window (15 days), after their last
        edit; a cascaded delete happens when its parent's did (or right after the child's own
        last edit, if that was later). Some records carry a later SystemModstamp than
        LastModifiedDate, as system updates do.
        """
        s = self.s[obj]
        modified = self.after(obj, "modified", idx, created, power)
        low = np.maximum(modified, self.recycle_start)
        own_deleted_at = _sec(low + ((self.as_of - SECOND - low) * s.uniform("deleted_at", idx)).astype(np.int64))
        own_deleted_at = np.maximum(own_deleted_at, modified)
        deleted_at = own_deleted_at
        if cascade_at is not None:
            cascaded = cascade_at > 0
            deleted_at = np.where(cascaded, np.maximum(cascade_at, modified), own_deleted_at)
        last_modified = np.where(deleted, deleted_at, modified)
        bump = (s.uniform("sysmod", idx) < 0.1) & ~deleted
        extra = (s.uniform("sysmod_by", idx) * 3 * DAY).astype(np.int64)
        system = np.where(bump, np.minimum(last_modified + _sec(extra), self.as_of - SECOND), last_modified)
        return {"modified": last_modified, "system": np.maximum(system, last_modified), "deleted_at": deleted_at}

    def audit(self, obj: str, idx: np.ndarray, created: np.ndarray, times: dict[str, np.ndarray],
              creator: np.ndarray | None = None) -> dict[str, pa.Array]:  # fmt: skip
        """CreatedDate … SystemModstamp columns."""
        creator = creator if creator is not None else self.owner(obj, "created_by", idx)
        modifier = np.where(self.s[obj].chance("same_modifier", idx, 0.7), creator,
                            self.owner(obj, "modified_by", idx))  # fmt: skip
        return {
            "CreatedDate": ts(created),
            "CreatedById": self.ids("User", creator),
            "LastModifiedDate": ts(times["modified"]),
            "LastModifiedById": self.ids("User", modifier),
            "SystemModstamp": ts(times["system"]),
        }

    def address(self, obj: str, prefix: str, idx: np.ndarray, with_codes: bool = True) -> dict[str, pa.Array]:
        """A postal address (US-heavy, a few other countries)."""
        s = self.s[obj]
        n = len(idx)
        number = s.integers(prefix + "number", idx, 1, 9_999)
        street = join(numstr(number), take(vocab.street_names(), s.integers(prefix + "street", idx, 0,
                      len(vocab.street_names()))), take(vocab.street_suffixes(), s.integers(
                      prefix + "suffix", idx, 0, len(vocab.street_suffixes()))), sep=" ")  # fmt: skip
        country = s.choice(prefix + "country", idx, [70, 6, 5, 4, 3, 3, 3, 2, 2, 2])
        us = country == 0
        state = s.integers(prefix + "state", idx, 0, len(vocab.STATE_NAMES))
        postal = numstr(s.integers(prefix + "zip", idx, 1_000, 99_999), 5)
        missing = s.chance(prefix + "missing", idx, 0.05)
        out = {
            f"{prefix}Street": nullify(street, missing),
            f"{prefix}City": take(vocab.city_names(), s.integers(prefix + "city", idx, 0, len(vocab.city_names())),
                                  missing),
            f"{prefix}State": take(vocab.STATE_NAMES, state, missing | ~us),
            f"{prefix}PostalCode": nullify(postal, missing),
            f"{prefix}Country": take(vocab.COUNTRY_NAMES, country, missing),
            f"{prefix}Latitude": nums(np.round(25 + 24 * s.uniform(prefix + "lat", idx), 6), missing),
            f"{prefix}Longitude": nums(np.round(-123 + 53 * s.uniform(prefix + "lon", idx), 6), missing),
            f"{prefix}GeocodeAccuracy": nullify(const("Address", n), missing),
        }  # fmt: skip
        if with_codes:
            out[f"{prefix}StateCode"] = take(vocab.STATE_CODES, state, missing | ~us)
            out[f"{prefix}CountryCode"] = take(vocab.COUNTRY_CODES, country, missing)
        return out

    def description(self, obj: str, idx: np.ndarray, present: float = 0.4) -> pa.Array:
        """Free text with commas, quotes, line breaks and non-ASCII characters; often null."""
        s = self.s[obj]
        picks = s.integers("description", idx, 0, len(vocab.DESCRIPTIONS))
        return take(vocab.DESCRIPTIONS, picks, ~s.chance("has_description", idx, present))

    def phone(self, obj: str, name: str, idx: np.ndarray, present: float = 0.8) -> pa.Array:
        """A North American phone number."""
        s = self.s[obj]
        area = numstr(s.integers(name + "area", idx, 201, 990))
        line = numstr(s.integers(name + "line", idx, 0, 10_000), 4)
        return nullify(join("(", area, ") 555-", line), ~s.chance(name + "present", idx, present))

    # ------------------------------------------------------------------ users and roles

    def user_first(self, u: np.ndarray) -> pa.Array:
        """Users' first names."""
        names = vocab.first_names()
        out = take(names, self.s["User"].integers("first", u, 0, len(names)))
        return pc.if_else(pa.array(u == 0), pa.scalar("Integration"), out)

    def user_last(self, u: np.ndarray) -> pa.Array:
        """Users' last names."""
        names = vocab.last_names()
        out = take(names, self.s["User"].integers("last", u, 0, len(names)))
        return pc.if_else(pa.array(u == 0), pa.scalar("Admin"), out)

    def user_role(self, u: np.ndarray) -> np.ndarray:
        """Role index of each user (-1: none). User r + 1 heads role r; the others fill leaf roles."""
        roles = self.plan.roles
        parents = {r.parent for r in roles}
        leaves = np.array([i for i in range(len(roles)) if i not in parents] or [0], dtype=np.int64)
        weights = [5.0 if "Rep" in roles[i].name else 1.0 for i in leaves]
        leaf = leaves[self.s["User"].choice("role", u, weights)]
        out = np.where(u <= len(roles), u - 1, leaf)
        return np.where(u == 0, -1, out)

    def user_manager(self, u: np.ndarray) -> np.ndarray:
        """Manager user index (-1: none): the head of the parent role (or of the own role for members)."""
        roles = self.plan.roles
        role = self.user_role(u)
        parent = np.array([-1 if r.parent is None else r.parent for r in roles] + [-1], dtype=np.int64)
        head = u <= len(roles)
        manager_role = np.where(head, parent[role], role)
        manager_role = np.where(role < 0, -1, manager_role)
        out = np.where(manager_role >= 0, manager_role + 1, -1)
        return np.where(out == u, -1, out)

    def user_created(self, u: np.ndarray) -> np.ndarray:
        """Users join over the org's first years; the admin first."""
        n = max(1, self.n["User"])
        span = int(HISTORY_DAYS * 0.8) * DAY
        return _sec(self.org_start + (span * (u / n)).astype(np.int64) + 3_600 * SECOND * (u > 0))

    # ------------------------------------------------------------------ accounts and contacts

    def account_created(self, a: np.ndarray) -> np.ndarray:
        """Accounts' creation times."""
        return self.monotone_created("Account", a, self.start)

    def account_owner(self, a: np.ndarray) -> np.ndarray:
        """Accounts' owners."""
        return self.owner("Account", "owner", a)

    def account_deleted(self, a: np.ndarray) -> np.ndarray:
        """Accounts in the recycle bin."""
        return self.s["Account"].chance("deleted", a, 0.015)

    def account_deleted_at(self, a: np.ndarray) -> np.ndarray:
        """Deletion time of deleted accounts, 0 for the others."""
        times = self.timeline("Account", a, self.account_created(a), self.account_deleted(a))
        return np.where(self.account_deleted(a), times["deleted_at"], 0)

    def account_industry(self, a: np.ndarray) -> pa.Array:
        """Account.Industry (Opportunity's formula field ``Account_Industry__c`` shows it too)."""
        s = self.s["Account"]
        return take(pa.array(INDUSTRIES), s.integers("industry", a, 0, len(INDUSTRIES)),
                    ~s.chance("has_industry", a, 0.9))  # fmt: skip

    def account_name(self, a: np.ndarray) -> pa.Array:
        """Company names."""
        s = self.s["Account"]
        last = take(vocab.last_names(), s.integers("name1", a, 0, len(vocab.last_names())))
        word = take(vocab.company_words(), s.integers("name2", a, 0, len(vocab.company_words())))
        suffix = take(vocab.COMPANY_SUFFIXES, s.integers("suffix", a, 0, len(vocab.COMPANY_SUFFIXES)))
        style = s.choice("style", a, [4, 3, 2])
        two = join(last, word, suffix, sep=" ")
        pair = join(join(last, take(vocab.last_names(), s.integers("name3", a, 0, len(vocab.last_names()))),
                         sep=" & "), suffix, sep=" ")  # fmt: skip
        one = join(last, suffix, sep=" ")
        return pc.if_else(pa.array(style == 0), one, pc.if_else(pa.array(style == 1), two, pair))

    def contact_account(self, c: np.ndarray) -> np.ndarray:
        """The account of each contact."""
        return _child_parent(c, self.n["Contact"], self.n["Account"])

    def contact_created(self, c: np.ndarray) -> np.ndarray:
        """Contacts are created with or soon after their account."""
        a = self.contact_account(c)
        return self.after("Contact", "created", c, self.account_created(a), power=4.0, share=0.5)

    def contact_first(self, c: np.ndarray) -> pa.Array:
        """Contacts' first names."""
        return take(vocab.first_names(), self.s["Contact"].integers("first", c, 0, len(vocab.first_names())))

    def contact_last(self, c: np.ndarray) -> pa.Array:
        """Contacts' last names."""
        return take(vocab.last_names(), self.s["Contact"].integers("last", c, 0, len(vocab.last_names())))

    def accounts_first_opportunity(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first opportunity index, number of opportunities) of each account."""
        first = _first_child(a, self.n["Opportunity"], self.n["Account"])
        after = _first_child(a + 1, self.n["Opportunity"], self.n["Account"])
        return first, after - first

    def accounts_first_contact(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first contact index, number of contacts) of each account."""
        first = _first_child(a, self.n["Contact"], self.n["Account"])
        after = _first_child(a + 1, self.n["Contact"], self.n["Account"])
        return first, after - first

    # ------------------------------------------------------------------ leads

    def lead_converted(self, lead: np.ndarray) -> np.ndarray:
        """Leads that were converted."""
        return self.s["Lead"].chance("converted", lead, 0.25)

    def lead_conversion(self, lead: np.ndarray) -> dict[str, np.ndarray]:
        """Contact, account and (maybe) opportunity each converted lead turned into."""
        s = self.s["Lead"]
        contact = s.integers("conv_contact", lead, 0, self.n["Contact"])
        account = self.contact_account(contact)
        first_opp, count = self.accounts_first_opportunity(account)
        has_opp = (count > 0) & s.chance("conv_has_opp", lead, 0.8)
        return {"contact": contact, "account": account, "opportunity": np.where(has_opp, first_opp, -1)}

    def lead_created(self, lead: np.ndarray) -> np.ndarray:
        """Unconverted leads arrive over time; a converted one shortly before its account was created."""
        converted = self.lead_converted(lead)
        conv = self.lead_conversion(lead)
        before = self.account_created(conv["account"]) - _sec(
            (self.s["Lead"].uniform("lead_time", lead) * 60 * DAY).astype(np.int64) + DAY
        )
        own = self.monotone_created("Lead", lead, self.start, exponent=0.5)
        return np.where(converted, np.maximum(before, self.org_start), own)

    def lead_owner(self, lead: np.ndarray) -> np.ndarray:
        """Leads' owners."""
        return self.owner("Lead", "owner", lead)

    # ------------------------------------------------------------------ products and price books

    def product_price(self, p: np.ndarray) -> np.ndarray:
        """List price of each product in the standard price book."""
        price = self.s["Product2"].lognormal("price", p, math.log(400.0), 1.1)
        return np.maximum(np.round(price), 5.0)

    def product_name(self, p: np.ndarray) -> pa.Array:
        """Unique product names."""
        words = len(vocab.PRODUCT_WORDS)
        tiers = len(vocab.PRODUCT_TIERS)
        base = join(take(vocab.PRODUCT_WORDS, p % words), take(vocab.PRODUCT_TIERS, (p // words) % tiers), sep=" ")
        generation = p // (words * tiers)
        return pc.if_else(pa.array(generation > 0), join(base, numstr(generation + 1), sep=" "), base)

    def product_code(self, p: np.ndarray) -> pa.Array:
        """Product codes."""
        return join("PRD-", numstr(p + 1, 5))

    def entry_price(self, e: np.ndarray) -> np.ndarray:
        """Unit price of each price book entry."""
        products = self.n["Product2"]
        return np.round(self.product_price(e % products) * PRICEBOOK_FACTORS[e // products], 2)

    # ------------------------------------------------------------------ opportunities and line items

    def product_opp_rank(self, k: np.ndarray) -> np.ndarray:
        """Rank of an opportunity among those that can have products (-1 for the others)."""
        share = len(PRODUCT_SHARE)
        eligible = (k % 5) < share
        return np.where(eligible, (k // 5) * share + k % 5, -1)

    def line_item_opportunity(self, m: np.ndarray) -> np.ndarray:
        """The opportunity of each line item."""
        q = _child_parent(m, self.n["OpportunityLineItem"], self.n_product_opps)
        share = len(PRODUCT_SHARE)
        return (q // share) * 5 + q % share

    def line_items_of(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first line item, count) of each product opportunity rank."""
        n_items = self.n["OpportunityLineItem"]
        first = _first_child(q, n_items, self.n_product_opps)
        after = _first_child(q + 1, n_items, self.n_product_opps)
        return first, np.where(q >= 0, after - first, 0)

    def opportunity_pricebook(self, k: np.ndarray) -> np.ndarray:
        """Price book of each opportunity (the standard one most of the time)."""
        books = self.n["Pricebook2"]
        s = self.s["Opportunity"]
        other = s.integers("pricebook_other", k, 1, max(2, books))
        return np.where(s.chance("pricebook_std", k, 0.7) | (books < 2), 0, other)

    def line_item_core(self, m: np.ndarray) -> dict[str, np.ndarray]:
        """Product, entry, quantity and prices of line items."""
        s = self.s["OpportunityLineItem"]
        k = self.line_item_opportunity(m)
        products = self.n["Product2"]
        product = s.integers("product", m, 0, products)
        entry = self.opportunity_pricebook(k) * products + product
        list_price = self.entry_price(entry)
        discount = np.array([0.0, 0.05, 0.1])[s.choice("discount", m, [6, 2, 1])]
        unit = np.round(list_price * (1 - discount), 2)
        quantity = s.integers("quantity", m, 1, 21).astype(np.float64)
        return {"opportunity": k, "product": product, "entry": entry, "list_price": list_price,
                "unit_price": unit, "quantity": quantity, "total": np.round(quantity * unit, 2)}  # fmt: skip

    def line_item_sums(self, k: np.ndarray) -> dict[str, np.ndarray]:
        """Per opportunity: number of line items, sum of TotalPrice and of Quantity."""
        q = self.product_opp_rank(k)
        first, count = self.line_items_of(q)
        n = len(k)
        if not (count > 0).any():
            return {"count": count, "total": np.zeros(n), "quantity": np.zeros(n)}
        lo = int(first[count > 0].min())
        hi = int((first + count)[count > 0].max())
        m = np.arange(lo, hi, dtype=np.int64)
        core = self.line_item_core(m)
        owner_pos = np.searchsorted(k, core["opportunity"])
        owner_pos = np.clip(owner_pos, 0, n - 1)
        matched = k[owner_pos] == core["opportunity"]
        total = np.bincount(owner_pos[matched], weights=core["total"][matched], minlength=n)
        quantity = np.bincount(owner_pos[matched], weights=core["quantity"][matched], minlength=n)
        return {"count": count, "total": np.round(total, 2), "quantity": quantity}

    def opportunity_core(self, k: np.ndarray) -> dict[str, Any]:
        """Account, dates, stage, amount and deletion of opportunities (sorted ``k``)."""
        s = self.s["Opportunity"]
        a = _child_parent(k, self.n["Opportunity"], self.n["Account"])
        created = self.after("Opportunity", "created", k, self.account_created(a), power=2.0)
        age_days = (self.as_of - created) // DAY
        p_closed = np.where(age_days > 180, 0.92, np.where(age_days > 60, 0.5, 0.15))
        closed = s.uniform("closed", k) < p_closed
        won = s.chance("won", k, 0.45)
        open_weights = [14, 12, 11, 9, 8, 7, 6, 5]
        stage = np.where(closed, np.where(won, 8, 9), s.choice("stage", k, open_weights))
        sums = self.line_item_sums(k)
        has_items = sums["count"] > 0
        lognormal = np.round(s.lognormal("amount", k, math.log(25_000.0), 1.1), 2)
        amount = np.where(has_items, sums["total"], lognormal)
        amount_null = ~has_items & s.chance("amount_null", k, 0.02)
        created_day = created // DAY
        today = self.as_of // DAY
        closed_span = np.clip(age_days, 8, 180)
        close_closed = np.minimum(created_day + s.integers("close_closed", k, 7, 181) % closed_span + 1, today - 1)
        close_open = created_day + s.integers("close_open", k, 30, 241)
        close_date = np.where(closed, np.maximum(close_closed, created_day), close_open)
        base = np.where(closed, np.maximum(created, close_date * DAY + 12 * 3_600 * SECOND), created)
        base = np.minimum(base, self.as_of - SECOND)
        deleted_parent = self.account_deleted(a)
        deleted = s.chance("deleted", k, 0.01) | deleted_parent
        cascade = np.where(deleted_parent, self.account_deleted_at(a), 0)
        modified_pre = self.after("Opportunity", "modified", k, base, power=4.0)
        times = self.timeline("Opportunity", k, created, deleted, cascade, power=4.0)
        times["modified"] = np.where(deleted, np.maximum(times["modified"], modified_pre), modified_pre)
        times["system"] = np.maximum(times["system"], times["modified"])
        times["deleted_at"] = np.where(deleted, times["modified"], 0)
        return {"account": a, "created": created, "stage": stage, "amount": amount, "amount_null": amount_null,
                "close_date": close_date, "deleted": deleted, "has_items": has_items, "times": times,
                "modified_pre": modified_pre, "items_quantity": sums["quantity"], "closed": closed}  # fmt: skip

    def opportunity_name(self, k: np.ndarray, a: np.ndarray) -> pa.Array:
        """``<Account> - <n> <product>`` names."""
        s = self.s["Opportunity"]
        what = take(vocab.PRODUCT_WORDS, s.integers("name_word", k, 0, len(vocab.PRODUCT_WORDS)))
        count = numstr(s.integers("name_count", k, 1, 500))
        return join(self.account_name(a), join(count, what, sep=" "), sep=" - ")

    def opportunity_owner(self, k: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Opportunities are mostly owned by their account's owner."""
        return np.where(self.s["Opportunity"].chance("own_owner", k, 0.2), self.owner("Opportunity", "owner", k),
                        self.account_owner(a))  # fmt: skip


# ---------------------------------------------------------------------- stage arrays

STAGE_NAMES = pa.array([s.name for s in STAGES])
STAGE_PROBABILITY = np.array([s.probability for s in STAGES], dtype=np.float64)
STAGE_FORECAST = pa.array([s.forecast_category for s in STAGES])
STAGE_FORECAST_NAME = pa.array([s.forecast_category_name for s in STAGES])
STAGE_CLOSED = np.array([s.is_closed for s in STAGES])
STAGE_WON = np.array([s.is_won for s in STAGES])


def _days_to_ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    moment = days.astype("datetime64[D]")
    years = moment.astype("datetime64[Y]").astype(np.int64) + 1970
    months = moment.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return years, months


# ---------------------------------------------------------------------- per-object builders

Builder = Callable[[Org, np.ndarray], dict[str, pa.Array]]


def build_user_role(org: Org, r: np.ndarray) -> dict[str, pa.Array]:
    """UserRole rows."""
    roles = [org.plan.roles[i] for i in r]
    n = len(r)
    heads = r + 1
    stamp = np.full(n, org.org_start, dtype=np.int64)
    return {
        "Id": org.ids("UserRole", r),
        "Name": pa.array([x.name for x in roles]),
        "ParentRoleId": org.ids("UserRole", np.array([x.parent or 0 for x in roles]),
                                np.array([x.parent is None for x in roles])),
        "RollupDescription": pa.array([x.name for x in roles]),
        "OpportunityAccessForAccountOwner": const("None", n),
        "CaseAccessForAccountOwner": const("Edit", n),
        "ContactAccessForAccountOwner": const("Edit", n),
        "ForecastUserId": org.ids("User", heads, heads >= org.n["User"]),
        "MayForecastManagerShare": bools(np.zeros(n, dtype=bool)),
        "LastModifiedDate": ts(stamp),
        "LastModifiedById": org.ids("User", np.zeros(n, dtype=np.int64)),
        "SystemModstamp": ts(stamp),
        "DeveloperName": pa.array([x.developer_name for x in roles]),
        "PortalType": const("None", n),
    }  # fmt: skip


def build_user(org: Org, u: np.ndarray) -> dict[str, pa.Array]:
    """User rows: the integration admin first, then one head per role, then team members."""
    s = org.s["User"]
    n = len(u)
    first, last = org.user_first(u), org.user_last(u)
    domain = f"sfpipe-{org.plan.pod.lower()}.example.com"
    username = join(slug(first), ".", slug(last), numstr(u), "@", domain)
    username = pc.if_else(pa.array(u == 0), pa.scalar(ADMIN_USERNAME), username)
    role = org.user_role(u)
    manager = org.user_manager(u)
    titles = pa.array([r.title for r in org.plan.roles] + ["System Administrator"])
    created = org.user_created(u)
    active = (u == 0) | ~s.chance("inactive", u, 0.05)
    times = org.timeline("User", u, created, np.zeros(n, dtype=bool))
    login = org.after("User", "login", u, np.maximum(created, org.as_of - 30 * DAY), power=0.5)
    profile = pc.if_else(pa.array(u == 0), pa.scalar(org.plan.profile_id(True)),
                         pa.scalar(org.plan.profile_id(False)))  # fmt: skip
    return {
        "Id": org.ids("User", u),
        "Username": username,
        "LastName": last,
        "FirstName": first,
        "Name": join(first, last, sep=" "),
        "CompanyName": const("sfpipe Demo", n),
        "Department": take(vocab.DEPARTMENTS, s.integers("department", u, 0, len(vocab.DEPARTMENTS))),
        "Title": take(titles, np.where(role < 0, len(titles) - 1, role)),
        **org.address("User", "", u),
        "Email": username,
        "Phone": org.phone("User", "phone", u, 0.9),
        "MobilePhone": org.phone("User", "mobile", u, 0.5),
        "Alias": pc.utf8_slice_codeunits(join(pc.utf8_slice_codeunits(slug(first), 0, 1), slug(last)), 0, 8),
        "CommunityNickname": join(slug(first), numstr(u)),
        "IsActive": bools(active),
        "TimeZoneSidKey": take(pa.array(["America/Los_Angeles", "America/New_York", "Europe/London",
                                         "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney"]),
                               s.choice("tz", u, [4, 4, 2, 2, 1, 1])),
        "UserRoleId": org.ids("UserRole", np.maximum(role, 0), role < 0),
        "LocaleSidKey": const("en_US", n),
        "EmailEncodingKey": const("UTF-8", n),
        "ProfileId": profile,
        "UserType": const("Standard", n),
        "LanguageLocaleKey": const("en_US", n),
        "EmployeeNumber": join("E", numstr(u + 1, 5)),
        "ManagerId": org.ids("User", np.maximum(manager, 0), manager < 0),
        "LastLoginDate": ts(login, ~active),
        **org.audit("User", u, created, times, np.zeros(n, dtype=np.int64)),
    }  # fmt: skip


def build_account(org: Org, a: np.ndarray) -> dict[str, pa.Array]:
    """Account rows."""
    s = org.s["Account"]
    n = len(a)
    created = org.account_created(a)
    deleted = org.account_deleted(a)
    times = org.timeline("Account", a, created, deleted)
    name = org.account_name(a)
    parent = s.integers("parent", a, 0, np.maximum(a, 1))
    has_parent = (a > 10) & s.chance("has_parent", a, 0.05)
    employees = np.round(s.lognormal("employees", a, math.log(250.0), 1.6)).astype(np.int64) + 1
    revenue = np.round(employees * s.lognormal("revenue_per", a, math.log(180_000.0), 0.5), -3)
    billing = org.address("Account", "Billing", a)
    same_shipping = s.chance("same_shipping", a, 0.7)
    shipping_src = org.address("Account", "Shipping", a)
    shipping = {
        key.replace("Billing", "Shipping"): pc.if_else(pa.array(same_shipping), value, shipping_src[
            key.replace("Billing", "Shipping")])
        for key, value in billing.items()
    }  # fmt: skip
    return {
        "Id": org.ids("Account", a),
        "IsDeleted": bools(deleted),
        "Name": name,
        "Type": take(pa.array(ACCOUNT_TYPES), s.choice("type", a, [30, 35, 10, 8, 4, 4, 9])),
        "ParentId": org.ids("Account", parent, ~has_parent),
        **billing,
        **shipping,
        "Phone": org.phone("Account", "phone", a, 0.9),
        "Fax": org.phone("Account", "fax", a, 0.2),
        "AccountNumber": join("CD", numstr(a + 1, 7)),
        "Website": nullify(join("https://www.", slug(name), ".example.com"), ~s.chance("has_web", a, 0.8)),
        "Sic": numstr(s.integers("sic", a, 1_000, 9_999)),
        "Industry": org.account_industry(a),
        "AnnualRevenue": nums(revenue, ~s.chance("has_revenue", a, 0.7)),
        "NumberOfEmployees": ints(employees, ~s.chance("has_employees", a, 0.8)),
        "Ownership": take(pa.array(OWNERSHIP), s.choice("ownership", a, [3, 5, 1, 1]),
                          ~s.chance("has_ownership", a, 0.5)),
        "TickerSymbol": nullify(pc.utf8_upper(pc.utf8_slice_codeunits(slug(name), 0, 4)),
                                ~s.chance("public", a, 0.05)),
        "Description": org.description("Account", a),
        "Rating": take(pa.array(RATINGS), s.integers("rating", a, 0, 3), ~s.chance("has_rating", a, 0.6)),
        "Site": nullify(const("Headquarters", n), ~s.chance("has_site", a, 0.3)),
        "OwnerId": org.ids("User", org.account_owner(a)),
        **org.audit("Account", a, created, times),
        "AccountSource": take(pa.array(LEAD_SOURCES), s.integers("source", a, 0, len(LEAD_SOURCES)),
                              ~s.chance("has_source", a, 0.7)),
    }  # fmt: skip


def build_contact(org: Org, c: np.ndarray) -> dict[str, pa.Array]:
    """Contact rows; the first contact of an account is the one the others report to."""
    s = org.s["Contact"]
    a = org.contact_account(c)
    first_contact, _ = org.accounts_first_contact(a)
    created = org.contact_created(c)
    parent_deleted = org.account_deleted(a)
    deleted = s.chance("deleted", c, 0.01) | parent_deleted
    times = org.timeline("Contact", c, created, deleted, np.where(parent_deleted, org.account_deleted_at(a), 0))
    first, last = org.contact_first(c), org.contact_last(c)
    domain = join(slug(org.account_name(a)), ".example.com")
    email = join(join(slug(first), slug(last), sep="."), domain, sep="@")
    return {
        "Id": org.ids("Contact", c),
        "IsDeleted": bools(deleted),
        "AccountId": org.ids("Account", a),
        "LastName": last,
        "FirstName": first,
        "Salutation": take(pa.array(SALUTATIONS), s.choice("salutation", c, [5, 5, 2, 1, 1]),
                           ~s.chance("has_salutation", c, 0.5)),
        "Name": join(first, last, sep=" "),
        **org.address("Contact", "Mailing", c),
        "Phone": org.phone("Contact", "phone", c, 0.8),
        "MobilePhone": org.phone("Contact", "mobile", c, 0.5),
        "HomePhone": org.phone("Contact", "home", c, 0.05),
        "ReportsToId": org.ids("Contact", first_contact, first_contact >= c),
        "Email": nullify(email, ~s.chance("has_email", c, 0.9)),
        "Title": take(vocab.jobs(), s.integers("title", c, 0, len(vocab.jobs())), ~s.chance("has_title", c, 0.8)),
        "Department": take(vocab.DEPARTMENTS, s.integers("department", c, 0, len(vocab.DEPARTMENTS)),
                           ~s.chance("has_department", c, 0.6)),
        "LeadSource": take(pa.array(LEAD_SOURCES), s.integers("source", c, 0, len(LEAD_SOURCES)),
                           ~s.chance("has_source", c, 0.6)),
        "Birthdate": dates(s.integers("birth", c, -15_000, 5_000), ~s.chance("has_birth", c, 0.1)),
        "Description": org.description("Contact", c, 0.2),
        "OwnerId": org.ids("User", org.account_owner(a)),
        "HasOptedOutOfEmail": bools(s.chance("opt_out", c, 0.08)),
        "DoNotCall": bools(s.chance("dnc", c, 0.04)),
        **org.audit("Contact", c, created, times),
        "IsEmailBounced": bools(np.zeros(len(c), dtype=bool)),
    }  # fmt: skip


def build_lead(org: Org, lead: np.ndarray) -> dict[str, pa.Array]:
    """Lead rows; converted leads point at the records they became."""
    s = org.s["Lead"]
    converted = org.lead_converted(lead)
    conv = org.lead_conversion(lead)
    created = org.lead_created(lead)
    deleted = ~converted & s.chance("deleted", lead, 0.015)
    times = org.timeline("Lead", lead, created, deleted)
    conv_time = org.account_created(conv["account"])
    # a converted lead was last modified by its conversion
    modified = np.where(converted, np.maximum(conv_time, created), times["modified"])
    times = {**times, "modified": modified, "system": np.where(converted, modified, times["system"])}
    first = pc.if_else(pa.array(converted), org.contact_first(conv["contact"]),
                       take(vocab.first_names(), s.integers("first", lead, 0, len(vocab.first_names()))))
    last = pc.if_else(pa.array(converted), org.contact_last(conv["contact"]),
                      take(vocab.last_names(), s.integers("last", lead, 0, len(vocab.last_names()))))
    company = pc.if_else(pa.array(converted), org.account_name(conv["account"]),
                         org.account_name(s.integers("company", lead, 0, 1 << 40)))
    open_status = s.choice("status", lead, [4, 4, 3])
    status = np.where(converted, 2, np.array([0, 1, 3])[open_status])
    no_opp = conv["opportunity"] < 0
    return {
        "Id": org.ids("Lead", lead),
        "IsDeleted": bools(deleted),
        "LastName": last,
        "FirstName": first,
        "Salutation": take(pa.array(SALUTATIONS), s.choice("salutation", lead, [5, 5, 2, 1, 1]),
                           ~s.chance("has_salutation", lead, 0.4)),
        "Name": join(first, last, sep=" "),
        "Title": take(vocab.jobs(), s.integers("title", lead, 0, len(vocab.jobs())),
                      ~s.chance("has_title", lead, 0.7)),
        "Company": company,
        **org.address("Lead", "", lead),
        "Phone": org.phone("Lead", "phone", lead, 0.8),
        "MobilePhone": org.phone("Lead", "mobile", lead, 0.3),
        "Email": nullify(join(join(slug(first), slug(last), sep="."), join(slug(company), ".example.com"),
                              sep="@"), ~s.chance("has_email", lead, 0.9)),
        "Website": nullify(join("https://www.", slug(company), ".example.com"), ~s.chance("has_web", lead, 0.5)),
        "Description": org.description("Lead", lead, 0.3),
        "LeadSource": take(pa.array(LEAD_SOURCES), s.integers("source", lead, 0, len(LEAD_SOURCES))),
        "Status": take(pa.array(["Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                                 "Closed - Not Converted"]), status),
        "Industry": take(pa.array(INDUSTRIES), s.integers("industry", lead, 0, len(INDUSTRIES)),
                         ~s.chance("has_industry", lead, 0.7)),
        "Rating": take(pa.array(RATINGS), s.integers("rating", lead, 0, 3), ~s.chance("has_rating", lead, 0.5)),
        "AnnualRevenue": nums(np.round(s.lognormal("revenue", lead, math.log(5e6), 1.5), -3),
                              ~s.chance("has_revenue", lead, 0.4)),
        "NumberOfEmployees": ints(np.round(s.lognormal("employees", lead, math.log(120.0), 1.4)) + 1,
                                  ~s.chance("has_employees", lead, 0.5)),
        "OwnerId": org.ids("User", org.lead_owner(lead)),
        "HasOptedOutOfEmail": bools(s.chance("opt_out", lead, 0.05)),
        "IsConverted": bools(converted),
        "ConvertedDate": dates(conv_time // DAY, ~converted),
        "ConvertedAccountId": org.ids("Account", conv["account"], ~converted),
        "ConvertedContactId": org.ids("Contact", conv["contact"], ~converted),
        "ConvertedOpportunityId": org.ids("Opportunity", np.maximum(conv["opportunity"], 0), ~converted | no_opp),
        "IsUnreadByOwner": bools((status == 0) & s.chance("unread", lead, 0.5)),
        **org.audit("Lead", lead, created, times),
        "DoNotCall": bools(s.chance("dnc", lead, 0.03)),
    }  # fmt: skip


def build_campaign(org: Org, x: np.ndarray) -> dict[str, pa.Array]:
    """Campaign rows."""
    s = org.s["Campaign"]
    created = org.monotone_created("Campaign", x, org.start, exponent=0.8)
    start_day = created // DAY + s.integers("lead_time", x, 7, 60)
    end_day = start_day + s.integers("duration", x, 1, 90)
    today = org.as_of // DAY
    status = np.where(end_day < today, np.where(s.chance("aborted", x, 0.05), 3, 2),
                      np.where(start_day <= today, 1, 0))  # fmt: skip
    deleted = s.chance("deleted", x, 0.01)
    times = org.timeline("Campaign", x, created, deleted)
    years, _ = _days_to_ymd(start_day)
    budget = np.round(s.lognormal("budget", x, math.log(20_000.0), 0.8), -2)
    return {
        "Id": org.ids("Campaign", x),
        "IsDeleted": bools(deleted),
        "Name": join(take(vocab.CAMPAIGN_TOPICS, s.integers("topic", x, 0, len(vocab.CAMPAIGN_TOPICS))),
                     numstr(years), join("#", numstr(x + 1)), sep=" "),
        "ParentId": org.ids("Campaign", np.zeros(len(x), dtype=np.int64), (x == 0) | ~s.chance("child", x, 0.1)),
        "Type": take(pa.array(CAMPAIGN_TYPES), s.integers("type", x, 0, len(CAMPAIGN_TYPES))),
        "Status": take(pa.array(CAMPAIGN_STATUSES), status),
        "StartDate": dates(start_day),
        "EndDate": dates(end_day),
        "ExpectedRevenue": nums(budget * np.round(2 + 8 * s.uniform("roi", x))),
        "BudgetedCost": nums(budget),
        "ActualCost": nums(np.round(budget * (0.7 + 0.6 * s.uniform("actual", x)), -2), status < 2),
        "ExpectedResponse": nums(np.round(1 + 9 * s.uniform("response", x), 2)),
        "NumberSent": nums(np.round(s.lognormal("sent", x, math.log(2_000.0), 1.0))),
        "IsActive": bools(status == 1),
        "Description": org.description("Campaign", x, 0.5),
        "OwnerId": org.ids("User", org.owner("Campaign", "owner", x)),
        **org.audit("Campaign", x, created, times),
    }  # fmt: skip


def build_opportunity(org: Org, k: np.ndarray) -> dict[str, pa.Array]:
    """Opportunity rows; stage-derived fields follow the OpportunityStage metadata."""
    s = org.s["Opportunity"]
    core = org.opportunity_core(k)
    a = core["account"]
    stage = core["stage"]
    probability = STAGE_PROBABILITY[stage]
    amount = core["amount"]
    amount_null = core["amount_null"]
    years, months = _days_to_ymd(core["close_date"])
    quarter = (months - 1) // 3 + 1
    first_contact, contacts = org.accounts_first_contact(a)
    stage_changed = stage > 0
    pricebook = org.opportunity_pricebook(k)
    return {
        "Id": org.ids("Opportunity", k),
        "IsDeleted": bools(core["deleted"]),
        "AccountId": org.ids("Account", a),
        "IsPrivate": bools(np.zeros(len(k), dtype=bool)),
        "Name": org.opportunity_name(k, a),
        "Description": org.description("Opportunity", k, 0.3),
        "StageName": take(STAGE_NAMES, stage),
        "Amount": nums(amount, amount_null),
        "Probability": nums(probability),
        "ExpectedRevenue": nums(np.round(amount * probability / 100.0, 2), amount_null),
        "TotalOpportunityQuantity": nums(core["items_quantity"], ~core["has_items"]),
        "CloseDate": dates(core["close_date"]),
        "Type": take(pa.array(OPPORTUNITY_TYPES), s.choice("type", k, [2, 1, 1, 4]), ~s.chance("has_type", k, 0.8)),
        "NextStep": take(vocab.NEXT_STEPS, s.integers("next", k, 0, len(vocab.NEXT_STEPS)),
                         STAGE_CLOSED[stage]),
        "LeadSource": take(pa.array(LEAD_SOURCES), s.integers("source", k, 0, len(LEAD_SOURCES)),
                           ~s.chance("has_source", k, 0.7)),
        "IsClosed": bools(STAGE_CLOSED[stage]),
        "IsWon": bools(STAGE_WON[stage]),
        "ForecastCategory": take(STAGE_FORECAST, stage),
        "ForecastCategoryName": take(STAGE_FORECAST_NAME, stage),
        "CampaignId": org.ids("Campaign", s.integers("campaign", k, 0, org.n["Campaign"]),
                              ~s.chance("has_campaign", k, 0.2)),
        "HasOpportunityLineItem": bools(core["has_items"]),
        "Pricebook2Id": org.ids("Pricebook2", pricebook, ~core["has_items"]),
        "OwnerId": org.ids("User", org.opportunity_owner(k, a)),
        **org.audit("Opportunity", k, core["created"], core["times"]),
        "PushCount": ints(np.zeros(len(k))),
        "LastStageChangeDate": ts(core["modified_pre"], ~stage_changed),
        "FiscalQuarter": ints(quarter),
        "FiscalYear": ints(years),
        "Fiscal": join(numstr(years), numstr(quarter), sep=" "),
        "ContactId": org.ids("Contact", first_contact, (contacts == 0) | ~s.chance("has_contact", k, 0.5)),
        "HasOpenActivity": bools(np.zeros(len(k), dtype=bool)),
        "HasOverdueTask": bools(np.zeros(len(k), dtype=bool)),
        "Account_Industry__c": org.account_industry(a),
    }  # fmt: skip


def build_product2(org: Org, p: np.ndarray) -> dict[str, pa.Array]:
    """Product2 rows."""
    s = org.s["Product2"]
    created = _sec(org.org_start + (p * 200 * DAY) // max(1, org.n["Product2"]))
    times = org.timeline("Product2", p, created, np.zeros(len(p), dtype=bool))
    return {
        "Id": org.ids("Product2", p),
        "Name": org.product_name(p),
        "ProductCode": org.product_code(p),
        "Description": org.description("Product2", p, 0.5),
        "IsActive": bools(~s.chance("inactive", p, 0.1)),
        **org.audit("Product2", p, created, times, np.zeros(len(p), dtype=np.int64)),
        "Family": take(pa.array(PRODUCT_FAMILIES), s.integers("family", p, 0, len(PRODUCT_FAMILIES))),
        "ExternalId": join("EXT-", numstr(p + 1, 6)),
        "QuantityUnitOfMeasure": take(pa.array(["Each", "Hour", "License", "Seat"]), s.integers("uom", p, 0, 4)),
        "IsDeleted": bools(np.zeros(len(p), dtype=bool)),
        "IsArchived": bools(np.zeros(len(p), dtype=bool)),
        "StockKeepingUnit": join("SKU-", numstr(p + 1, 6)),
        "CanUseQuantitySchedule": bools(np.zeros(len(p), dtype=bool)),
        "CanUseRevenueSchedule": bools(np.zeros(len(p), dtype=bool)),
    }  # fmt: skip


def build_pricebook2(org: Org, b: np.ndarray) -> dict[str, pa.Array]:
    """Pricebook2 rows: the standard price book and custom ones."""
    created = _sec(np.full(len(b), org.org_start) + b * DAY)
    times = org.timeline("Pricebook2", b, created, np.zeros(len(b), dtype=bool))
    return {
        "Id": org.ids("Pricebook2", b),
        "IsDeleted": bools(np.zeros(len(b), dtype=bool)),
        "Name": take(pa.array(PRICEBOOK_NAMES), b),
        **org.audit("Pricebook2", b, created, times, np.zeros(len(b), dtype=np.int64)),
        "IsActive": bools(np.ones(len(b), dtype=bool)),
        "IsArchived": bools(np.zeros(len(b), dtype=bool)),
        "Description": take(pa.array(["Standard list prices", "Prices for channel partners",
                                      "Negotiated enterprise prices"]), b),
        "IsStandard": bools(b == 0),
    }  # fmt: skip


def build_pricebook_entry(org: Org, e: np.ndarray) -> dict[str, pa.Array]:
    """PricebookEntry rows: every product in every price book."""
    products = org.n["Product2"]
    p = e % products
    b = e // products
    created = _sec(org.org_start + (p * 200 * DAY) // max(1, products) + (b + 1) * 3_600 * SECOND)
    times = org.timeline("PricebookEntry", e, created, np.zeros(len(e), dtype=bool))
    return {
        "Id": org.ids("PricebookEntry", e),
        "Name": org.product_name(p),
        "Pricebook2Id": org.ids("Pricebook2", b),
        "Product2Id": org.ids("Product2", p),
        "UnitPrice": nums(org.entry_price(e)),
        "IsActive": bools(~org.s["Product2"].chance("inactive", p, 0.1)),
        "UseStandardPrice": bools(np.zeros(len(e), dtype=bool)),
        **org.audit("PricebookEntry", e, created, times, np.zeros(len(e), dtype=np.int64)),
        "ProductCode": org.product_code(p),
        "IsDeleted": bools(np.zeros(len(e), dtype=bool)),
        "IsArchived": bools(np.zeros(len(e), dtype=bool)),
    }  # fmt: skip


def build_line_item(org: Org, m: np.ndarray) -> dict[str, pa.Array]:
    """OpportunityLineItem rows; TotalPrice = Quantity × UnitPrice, their sum is the opportunity's Amount."""
    core = org.line_item_core(m)
    k = core["opportunity"]
    order = np.argsort(k, kind="stable")
    unique_k, inverse = np.unique(k[order], return_inverse=True)
    opp = org.opportunity_core(unique_k)
    back = np.empty_like(inverse)
    back[order] = inverse
    q = org.product_opp_rank(k)
    first, _ = org.line_items_of(q)
    created = org.after("OpportunityLineItem", "created", m, opp["created"][back], power=6.0, share=0.2)
    created = np.minimum(created, opp["modified_pre"][back])
    deleted = opp["deleted"][back]
    cascade = np.where(deleted, opp["times"]["deleted_at"][back], 0)
    times = org.timeline("OpportunityLineItem", m, created, deleted, cascade)
    account = opp["account"][back]
    return {
        "Id": org.ids("OpportunityLineItem", m),
        "OpportunityId": org.ids("Opportunity", k),
        "SortOrder": ints(m - first + 1),
        "PricebookEntryId": org.ids("PricebookEntry", core["entry"]),
        "Product2Id": org.ids("Product2", core["product"]),
        "ProductCode": org.product_code(core["product"]),
        "Name": join(org.opportunity_name(k, account), org.product_name(core["product"]), sep=" "),
        "Quantity": nums(core["quantity"]),
        "TotalPrice": nums(core["total"]),
        "UnitPrice": nums(core["unit_price"]),
        "ListPrice": nums(core["list_price"]),
        **org.audit("OpportunityLineItem", m, created, times),
        "IsDeleted": bools(deleted),
        "Subtotal": nums(core["total"]),
        "HasRevenueSchedule": bools(np.zeros(len(m), dtype=bool)),
        "HasQuantitySchedule": bools(np.zeros(len(m), dtype=bool)),
        "HasSchedule": bools(np.zeros(len(m), dtype=bool)),
    }  # fmt: skip


def build_opportunity_history(org: Org, h: np.ndarray) -> dict[str, pa.Array]:
    """OpportunityHistory rows: each opportunity's path through the stages, ending at its current stage."""
    s = org.s["OpportunityHistory"]
    n_opp, n_hist = org.n["Opportunity"], org.n["OpportunityHistory"]
    k = _child_parent(h, n_hist, n_opp)
    first = _first_child(k, n_hist, n_opp)
    rows = _first_child(k + 1, n_hist, n_opp) - first
    position = h - first
    unique_k, back = np.unique(k, return_inverse=True)
    opp = org.opportunity_core(unique_k)
    final = opp["stage"][back]
    lost_from = org.s["Opportunity"].integers("lost_from", k, 0, 7)
    path_len = np.where(final <= 7, final + 1, np.where(final == 8, 9, lost_from + 2))
    step = np.where(rows > 1, np.rint(position * (path_len - 1) / np.maximum(rows - 1, 1)), path_len - 1)
    step = step.astype(np.int64)
    stage = np.where(step >= path_len - 1, final, step)
    created_opp = opp["created"][back]
    span = np.maximum(opp["modified_pre"][back] - created_opp, 0)
    created = _sec(created_opp + (span * position // np.maximum(rows - 1, 1)))
    amount = opp["amount"][back]
    amount_null = opp["amount_null"][back]
    probability = STAGE_PROBABILITY[stage]
    deleted = opp["deleted"][back]
    system = np.where(deleted, np.maximum(opp["times"]["deleted_at"][back], created), created)
    owner = org.opportunity_owner(k, opp["account"][back])
    close = opp["close_date"][back]
    return {
        "Id": org.ids("OpportunityHistory", h),
        "OpportunityId": org.ids("Opportunity", k),
        "CreatedById": org.ids("User", np.where(s.chance("by_owner", h, 0.9), owner, 0)),
        "CreatedDate": ts(created),
        "StageName": take(STAGE_NAMES, stage),
        "Amount": nums(amount, amount_null),
        "ExpectedRevenue": nums(np.round(amount * probability / 100.0, 2), amount_null),
        "CloseDate": dates(close),
        "Probability": nums(probability),
        "ForecastCategory": take(STAGE_FORECAST, stage),
        "SystemModstamp": ts(system),
        "IsDeleted": bools(deleted),
        "PrevAmount": nums(amount, amount_null | (position == 0)),
        "PrevCloseDate": dates(close, position == 0),
    }  # fmt: skip


def _activity_links(org: Org, obj: str, t: np.ndarray) -> dict[str, np.ndarray]:
    """Who (contact or lead) and what (account or opportunity) an activity is about."""
    s = org.s[obj]
    kind = s.choice("who_kind", t, [7, 2, 1])
    contact = s.integers("contact", t, 0, org.n["Contact"])
    lead = s.integers("lead", t, 0, org.n["Lead"])
    account_of_contact = org.contact_account(contact)
    first_opp, opp_count = org.accounts_first_opportunity(account_of_contact)
    what_kind = s.choice("what_kind", t, [5, 3, 2])
    random_account = s.integers("account", t, 0, org.n["Account"])
    is_contact = kind == 0
    what_account = np.where(is_contact, account_of_contact, random_account)
    what_is_opp = is_contact & (what_kind == 1) & (opp_count > 0)
    what_is_account = (is_contact & ((what_kind == 0) | ((what_kind == 1) & (opp_count == 0)))) | (
        (kind == 2) & (what_kind != 2)
    )
    return {
        "kind": kind,
        "contact": contact,
        "lead": lead,
        "what_opp": np.where(what_is_opp, first_opp, -1),
        "what_account": np.where(what_is_account, what_account, -1),
        "account": np.where(is_contact | what_is_account, what_account, -1),
    }


def _who_what(org: Org, links: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    kind = links["kind"]
    who = pc.if_else(pa.array(kind == 0), org.ids("Contact", links["contact"]), org.ids("Lead", links["lead"]))
    who = nullify(who, kind == 2)
    what = pc.if_else(pa.array(links["what_opp"] >= 0), org.ids("Opportunity", np.maximum(links["what_opp"], 0)),
                      org.ids("Account", np.maximum(links["what_account"], 0)))  # fmt: skip
    what = nullify(what, (links["what_opp"] < 0) & (links["what_account"] < 0))
    return {
        "WhoId": who,
        "WhatId": what,
        "WhoCount": ints((kind != 2).astype(np.int64)),
        "WhatCount": ints(((links["what_opp"] >= 0) | (links["what_account"] >= 0)).astype(np.int64)),
        "AccountId": org.ids("Account", np.maximum(links["account"], 0), links["account"] < 0),
    }


def build_task(org: Org, t: np.ndarray) -> dict[str, pa.Array]:
    """Task rows (calls, e-mails, to-dos) with polymorphic WhoId / WhatId."""
    s = org.s["Task"]
    links = _activity_links(org, "Task", t)
    created = org.monotone_created("Task", t, org.start, exponent=0.5)
    due = created // DAY + s.integers("due", t, -5, 30)
    today = org.as_of // DAY
    status = np.where(due < today, np.where(s.chance("done", t, 0.85), 2, s.choice("late", t, [3, 2, 1, 1]) % 5),
                      s.choice("open", t, [5, 3, 0, 1, 1]))  # fmt: skip
    status = np.where(status == 2, 2, np.where(status > 4, 0, status))
    closed = status == 2
    completed = org.after("Task", "completed", t, created, power=2.0, share=0.3)
    subtype = s.choice("subtype", t, [5, 3, 2])
    priority = s.choice("priority", t, [15, 75, 10])
    deleted = s.chance("deleted", t, 0.02)
    times = org.timeline("Task", t, created, deleted)
    times["modified"] = np.where(closed & ~deleted, np.maximum(times["modified"], completed), times["modified"])
    times["system"] = np.maximum(times["system"], times["modified"])
    owner = np.where(links["account"] >= 0, org.account_owner(np.maximum(links["account"], 0)),
                     org.owner("Task", "owner", t))  # fmt: skip
    is_call = subtype == 2
    return {
        "Id": org.ids("Task", t),
        **_who_what(org, links),
        "Subject": take(vocab.SUBJECTS_TASK, s.integers("subject", t, 0, len(vocab.SUBJECTS_TASK))),
        "ActivityDate": dates(due),
        "Status": take(pa.array(["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"]),
                       status),
        "Priority": take(pa.array(["High", "Normal", "Low"]), priority),
        "IsHighPriority": bools(priority == 0),
        "OwnerId": org.ids("User", owner),
        "Description": org.description("Task", t, 0.3),
        "Type": take(pa.array(["Other", "Email", "Call"]), subtype),
        "IsDeleted": bools(deleted),
        "IsClosed": bools(closed),
        **org.audit("Task", t, created, times, owner),
        "IsArchived": bools(np.zeros(len(t), dtype=bool)),
        "CallDurationInSeconds": ints(s.integers("duration", t, 20, 3_600), ~is_call),
        "CallType": take(pa.array(["Internal", "Inbound", "Outbound"]), s.choice("call_type", t, [1, 3, 6]),
                         ~is_call),
        "IsReminderSet": bools(np.zeros(len(t), dtype=bool)),
        "IsRecurrence": bools(np.zeros(len(t), dtype=bool)),
        "TaskSubtype": take(pa.array(["Task", "Email", "Call"]), subtype),
        "CompletedDateTime": ts(completed, ~closed),
    }  # fmt: skip


def build_event(org: Org, v: np.ndarray) -> dict[str, pa.Array]:
    """Event rows (meetings) with polymorphic WhoId / WhatId."""
    s = org.s["Event"]
    links = _activity_links(org, "Event", v)
    created = org.monotone_created("Event", v, org.start, exponent=0.5)
    all_day = s.chance("all_day", v, 0.05)
    start_day = created // DAY + s.integers("ahead", v, 1, 30)
    hour = s.integers("hour", v, 8, 18)
    start = np.where(all_day, start_day * DAY, start_day * DAY + hour * 3_600 * SECOND)
    minutes = np.where(all_day, 1_440, np.array([30, 60, 90, 120])[s.choice("minutes", v, [4, 5, 2, 1])])
    end = start + minutes * 60 * SECOND
    deleted = s.chance("deleted", v, 0.02)
    times = org.timeline("Event", v, created, deleted)
    owner = np.where(links["account"] >= 0, org.account_owner(np.maximum(links["account"], 0)),
                     org.owner("Event", "owner", v))  # fmt: skip
    n = len(v)
    who_what = _who_what(org, links)
    return {
        "Id": org.ids("Event", v),
        **who_what,
        "Subject": take(vocab.SUBJECTS_EVENT, s.integers("subject", v, 0, len(vocab.SUBJECTS_EVENT))),
        "Location": take(pa.array(["Zoom", "Customer office", "HQ", "Phone", "Conference center"]),
                         s.integers("location", v, 0, 5), ~s.chance("has_location", v, 0.6)),
        "IsAllDayEvent": bools(all_day),
        "ActivityDateTime": ts(start),
        "ActivityDate": dates(start // DAY),
        "DurationInMinutes": ints(minutes),
        "StartDateTime": ts(start),
        "EndDateTime": ts(end),
        "EndDate": dates((end - 1) // DAY),
        "Description": org.description("Event", v, 0.3),
        "OwnerId": org.ids("User", owner),
        "Type": const("Meeting", n),
        "IsPrivate": bools(np.zeros(n, dtype=bool)),
        "ShowAs": take(pa.array(["Busy", "OutOfOffice", "Free"]), s.choice("show_as", v, [8, 1, 1])),
        "IsDeleted": bools(deleted),
        "IsChild": bools(np.zeros(n, dtype=bool)),
        "IsGroupEvent": bools(np.zeros(n, dtype=bool)),
        "GroupEventType": const("0", n),
        **org.audit("Event", v, created, times, owner),
        "IsArchived": bools(np.zeros(n, dtype=bool)),
        "IsRecurrence": bools(np.zeros(n, dtype=bool)),
        "IsReminderSet": bools(np.zeros(n, dtype=bool)),
        "EventSubtype": const("Event", n),
    }  # fmt: skip


def build_campaign_member(org: Org, x: np.ndarray) -> dict[str, pa.Array]:
    """CampaignMember rows: distinct contacts and leads per campaign."""
    s = org.s["CampaignMember"]
    n_camp, n_members = org.n["Campaign"], org.n["CampaignMember"]
    campaign = _child_parent(x, n_members, n_camp)
    position = x - _first_child(campaign, n_members, n_camp)
    is_contact = (position % 2 == 0) | (org.n["Lead"] == 0)
    camp_streams = org.s["Campaign"]
    contact = (camp_streams.integers("member_contacts", campaign, 0, org.n["Contact"]) + position // 2) % org.n[
        "Contact"]
    lead = (camp_streams.integers("member_leads", campaign, 0, max(1, org.n["Lead"])) + position // 2) % max(
        1, org.n["Lead"])
    campaign_created = org.monotone_created("Campaign", campaign, org.start, exponent=0.8)
    created = org.after("CampaignMember", "created", x, campaign_created, power=6.0, share=0.2)
    responded = s.chance("responded", x, 0.3)
    camp_deleted = camp_streams.chance("deleted", campaign, 0.01)
    camp_times = org.timeline("Campaign", campaign, campaign_created, camp_deleted)
    times = org.timeline("CampaignMember", x, created, camp_deleted, np.where(camp_deleted,
                         camp_times["deleted_at"], 0))  # fmt: skip
    first_response = org.after("CampaignMember", "responded_at", x, created, power=2.0, share=0.1)
    owner = np.where(is_contact, org.account_owner(org.contact_account(contact)), org.lead_owner(lead))
    member = pc.if_else(pa.array(is_contact), org.ids("Contact", contact), org.ids("Lead", lead))
    return {
        "Id": org.ids("CampaignMember", x),
        "IsDeleted": bools(camp_deleted),
        "CampaignId": org.ids("Campaign", campaign),
        "LeadId": org.ids("Lead", lead, is_contact),
        "ContactId": org.ids("Contact", contact, ~is_contact),
        "Status": take(pa.array(["Sent", "Responded"]), responded.astype(np.int64)),
        "HasResponded": bools(responded),
        **org.audit("CampaignMember", x, created, times),
        "FirstRespondedDate": dates(first_response // DAY, ~responded),
        "Type": pc.if_else(pa.array(is_contact), pa.scalar("Contact"), pa.scalar("Lead")),
        "LeadOrContactId": member,
        "LeadOrContactOwnerId": org.ids("User", owner),
    }  # fmt: skip


def build_case(org: Org, c: np.ndarray) -> dict[str, pa.Array]:
    """Case rows."""
    s = org.s["Case"]
    has_contact = s.chance("has_contact", c, 0.9)
    contact = s.integers("contact", c, 0, org.n["Contact"])
    account = np.where(has_contact, org.contact_account(contact), s.integers("account", c, 0, org.n["Account"]))
    created = org.monotone_created("Case", c, org.start, exponent=0.5)
    age_days = (org.as_of - created) // DAY
    status = np.where(age_days > 30, np.where(s.chance("closed_old", c, 0.95), 3, 1),
                      s.choice("status", c, [3, 4, 1, 4]))  # fmt: skip
    closed = status == 3
    closed_at = org.after("Case", "closed_at", c, created, power=3.0, share=0.2)
    parent_deleted = org.account_deleted(account)
    deleted = s.chance("deleted", c, 0.01) | parent_deleted
    times = org.timeline("Case", c, created, deleted, np.where(parent_deleted, org.account_deleted_at(account), 0))
    times["modified"] = np.where(closed & ~deleted, np.maximum(times["modified"], closed_at), times["modified"])
    times["system"] = np.maximum(times["system"], times["modified"])
    origin = s.choice("origin", c, [4, 4, 2])
    return {
        "Id": org.ids("Case", c),
        "IsDeleted": bools(deleted),
        "CaseNumber": numstr(c + 1, 8),
        "ContactId": org.ids("Contact", contact, ~has_contact),
        "AccountId": org.ids("Account", account),
        "Type": take(pa.array(["Mechanical", "Electrical", "Electronic", "Structural", "Other"]),
                     s.integers("type", c, 0, 5), ~s.chance("has_type", c, 0.7)),
        "Status": take(pa.array(CASE_STATUSES), status),
        "Reason": take(pa.array(["Installation", "Equipment Complexity", "Performance", "Breakdown",
                                 "Equipment Design", "Feedback", "Other"]), s.integers("reason", c, 0, 7),
                       ~s.chance("has_reason", c, 0.6)),
        "Origin": take(pa.array(["Phone", "Email", "Web"]), origin),
        "Subject": take(vocab.CASE_SUBJECTS, s.integers("subject", c, 0, len(vocab.CASE_SUBJECTS))),
        "Priority": take(pa.array(["High", "Medium", "Low"]), s.choice("priority", c, [2, 5, 3])),
        "Description": org.description("Case", c, 0.6),
        "IsClosed": bools(closed),
        "ClosedDate": ts(closed_at, ~closed),
        "IsEscalated": bools(status == 2),
        "OwnerId": org.ids("User", org.owner("Case", "owner", c)),
        **org.audit("Case", c, created, times),
    }  # fmt: skip


def build_order(org: Org, o: np.ndarray) -> dict[str, pa.Array]:
    """Order rows, billed to their account's address."""
    s = org.s["Order"]
    account = s.integers("account", o, 0, org.n["Account"])
    created = np.maximum(org.monotone_created("Order", o, org.start, exponent=0.6), org.account_created(account))
    activated = s.chance("activated", o, 0.7)
    deleted = ~activated & s.chance("deleted", o, 0.01)
    times = org.timeline("Order", o, created, deleted)
    activated_at = org.after("Order", "activated_at", o, created, power=3.0, share=0.1)
    times["modified"] = np.where(activated & ~deleted, np.maximum(times["modified"], activated_at),
                                 times["modified"])  # fmt: skip
    times["system"] = np.maximum(times["system"], times["modified"])
    effective = created // DAY + s.integers("effective", o, 0, 30)
    owner = org.account_owner(account)
    billing_src = org.address("Account", "Billing", account)
    billing = {key: value for key, value in billing_src.items()}
    shipping = {key.replace("Billing", "Shipping"): value for key, value in billing_src.items()}
    status = pc.if_else(pa.array(activated), pa.scalar("Activated"), pa.scalar("Draft"))
    return {
        "Id": org.ids("Order", o),
        "OwnerId": org.ids("User", owner),
        "AccountId": org.ids("Account", account),
        "Pricebook2Id": org.ids("Pricebook2", np.zeros(len(o), dtype=np.int64)),
        "EffectiveDate": dates(effective),
        "EndDate": dates(effective + 365, ~s.chance("has_end", o, 0.6)),
        "IsReductionOrder": bools(np.zeros(len(o), dtype=bool)),
        "Status": status,
        "Description": org.description("Order", o, 0.2),
        "Type": take(pa.array(["New", "Renewal", "Upsell"]), s.choice("type", o, [5, 3, 2])),
        **billing,
        **shipping,
        "ActivatedDate": ts(activated_at, ~activated),
        "ActivatedById": org.ids("User", owner, ~activated),
        "StatusCode": status,
        "OrderNumber": numstr(o + 1, 8),
        "TotalAmount": nums(np.round(s.lognormal("amount", o, math.log(15_000.0), 1.0), 2)),
        **org.audit("Order", o, created, times, owner),
        "IsDeleted": bools(deleted),
    }  # fmt: skip


def _wide_values(org: Org, w: np.ndarray, index: int, stem: str, type_: str) -> pa.Array:
    """One custom field of ``Wide__c``, by its kind (each field has its own random stream)."""
    s = org.s["Wide__c"]
    name = f"f{index}"
    absent = ~s.chance(name + "present", w, 0.8)
    if type_ == "picklist":
        values = pa.array(WIDE_REGIONS if stem == "Sales_Region" else WIDE_TIERS)
        return take(values, s.integers(name, w, 0, len(values)), absent)
    if type_ == "multipicklist":
        combos = pa.array([";".join(f for bit, f in enumerate(WIDE_FEATURES) if m >> bit & 1)
                           for m in range(1, 2 ** len(WIDE_FEATURES))])  # fmt: skip
        return take(combos, s.integers(name, w, 0, len(combos)), absent)
    if type_ == "double":
        raw = s.integers(name, w, 0, 10_000) if stem == "Licensed_Units" else np.round(s.uniform(name, w) * 100, 2)
        return nums(np.asarray(raw, dtype=np.float64), absent)
    if type_ == "currency":
        return nums(np.round(s.lognormal(name, w, math.log(5_000.0), 1.2), 2), absent)
    if type_ == "percent":
        return nums(np.round(s.uniform(name, w) * 100, 1), absent)
    if type_ == "date":
        return dates(org.as_of // DAY - s.integers(name, w, 0, HISTORY_DAYS), absent)
    if type_ == "datetime":
        return ts(org.after("Wide__c", name, w, np.full(len(w), org.start), power=1.0), absent)
    if type_ == "boolean":
        return bools(s.chance(name, w, 0.5))
    if type_ == "textarea":
        return take(vocab.DESCRIPTIONS, s.integers(name, w, 0, len(vocab.DESCRIPTIONS)), absent)
    if type_ == "email":
        who = slug(take(vocab.last_names(), s.integers(name, w, 0, len(vocab.last_names()))))
        domain = take(vocab.DOMAINS, s.integers(name + "domain", w, 0, len(vocab.DOMAINS)))
        return nullify(join(who, "@", domain), absent)
    if type_ == "phone":
        return org.phone("Wide__c", name, w)
    if type_ == "url":
        return nullify(join("https://portal.example.com/accounts/", numstr(s.integers(name, w, 1, 10**9))), absent)
    return nullify(join(stem[:3].upper(), "-", numstr(s.integers(name, w, 0, 10**6), 6)), absent)


def build_wide(org: Org, w: np.ndarray) -> dict[str, pa.Array]:
    """``Wide__c`` rows: a heavily customised object, 820 custom fields of every common type."""
    s = org.s["Wide__c"]
    account = _child_parent(w, org.n["Wide__c"], max(1, org.n["Account"]))
    created = org.monotone_created("Wide__c", w, org.start)
    deleted = s.chance("deleted", w, 0.01)
    times = org.timeline("Wide__c", w, created, deleted)
    owner = org.owner("Wide__c", "owner", w)
    out: dict[str, pa.Array] = {
        "Id": org.ids("Wide__c", w),
        "OwnerId": org.ids("User", owner),
        "IsDeleted": bools(deleted),
        "Name": join("W-", numstr(w + 1, 7)),
        **org.audit("Wide__c", w, created, times, owner),
        "Account__c": org.ids("Account", account, ~s.chance("has_account", w, 0.9)),
    }
    for i in range(1, WIDE_FIELDS + 1):
        stem, type_ = WIDE_KINDS[i % len(WIDE_KINDS)]
        out[f"{stem}_{i:03d}__c"] = _wide_values(org, w, i, stem, type_)
    return out


BUILDERS: dict[str, Builder] = {
    "UserRole": build_user_role,
    "User": build_user,
    "Account": build_account,
    "Contact": build_contact,
    "Lead": build_lead,
    "Campaign": build_campaign,
    "Opportunity": build_opportunity,
    "Product2": build_product2,
    "Pricebook2": build_pricebook2,
    "PricebookEntry": build_pricebook_entry,
    "OpportunityLineItem": build_line_item,
    "OpportunityHistory": build_opportunity_history,
    "Task": build_task,
    "Event": build_event,
    "CampaignMember": build_campaign_member,
    "Case": build_case,
    "Order": build_order,
    "Wide__c": build_wide,
}


def record_batch(org: Org, obj: ObjectDef, start: int, stop: int) -> pa.RecordBatch:
    """Records ``[start, stop)`` of one object, every stored column in describe order."""
    idx = np.arange(start, stop, dtype=np.int64)
    columns = BUILDERS[obj.name](org, idx)
    schema = obj.arrow_schema()
    unknown = set(columns) - set(schema.names)
    if unknown:
        msg = f"{obj.name}: the generator produced fields that describe does not have: {sorted(unknown)}"
        raise KeyError(msg)
    arrays = []
    for f in schema:
        value = columns.get(f.name)
        if value is None:
            arrays.append(pa.nulls(len(idx), f.type))
        else:
            if isinstance(value, pa.ChunkedArray):
                value = value.combine_chunks()
            arrays.append(value if value.type == f.type else value.cast(f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def chunk_rows_for(obj: ObjectDef) -> int:
    """Rows per chunk: fewer for very wide objects, so that a chunk stays a few tens of MB."""
    columns = len(obj.stored_fields)
    return CHUNK_ROWS if columns <= 200 else max(1_024, CHUNK_ROWS * 64 // columns // 1_024 * 1_024)


def iter_batches(plan: OrgPlan, obj: ObjectDef, chunk_rows: int | None = None) -> Iterator[pa.RecordBatch]:
    """One object's records in chunks."""
    org = Org(plan)
    chunk_rows = chunk_rows or chunk_rows_for(obj)
    total = plan.counts[obj.name]
    for start in range(0, total, chunk_rows):
        yield record_batch(org, obj, start, min(total, start + chunk_rows))


Progress = Callable[[str, int], None]


def write_parquet(plan: OrgPlan, out: Path, progress: Progress | None = None,
                  objects: tuple[str, ...] | None = None) -> dict[str, Any]:  # fmt: skip
    """Write the org as ``out/<Object>/part-NNNNN.parquet`` plus ``out/_org.json``; return the manifest.

    Writer options are fixed (zstd, fixed row groups, no wall-clock metadata), so two runs with
    the same plan give byte-identical files. ``_org.json`` is written last: a folder without it is
    an interrupted run.
    """
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "_org.json"
    marker.unlink(missing_ok=True)
    names = objects or plan.objects
    files: dict[str, list[str]] = {}
    for name in names:
        obj = OBJECTS_BY_NAME[name.lower()]
        folder = out / obj.name
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("part-*.parquet"):
            stale.unlink()
        files[obj.name] = []
        writer: pq.ParquetWriter | None = None
        rows_in_file = 0
        for batch in iter_batches(plan, obj):
            if writer is None or rows_in_file >= ROWS_PER_FILE:
                if writer is not None:
                    writer.close()
                path = folder / f"part-{len(files[obj.name]):05d}.parquet"
                files[obj.name].append(path.name)
                writer = _parquet_writer(path, obj.arrow_schema())
                rows_in_file = 0
            writer.write_batch(batch, row_group_size=CHUNK_ROWS)
            rows_in_file += batch.num_rows
            if progress is not None:
                progress(obj.name, batch.num_rows)
        if writer is None:
            path = folder / "part-00000.parquet"
            files[obj.name].append(path.name)
            writer = _parquet_writer(path, obj.arrow_schema())
        writer.close()
    manifest = {**plan.manifest(), "files": files}
    marker.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
        data_page_version="1.0",
        store_schema=True,
    )


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a finished generation in ``folder``, or None."""
    marker = folder / "_org.json"
    if not marker.exists():
        return None
    data: dict[str, Any] = json.loads(marker.read_text())
    return data


def as_of_today() -> datetime:
    """Midnight UTC today: what a served org is anchored at by default."""
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def parse_as_of(text: str) -> datetime:
    """``YYYY-MM-DD`` (or ``today``) → midnight UTC."""
    if text == "today":
        return as_of_today()
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC) + timedelta(0)
    except ValueError as exc:
        msg = f"expected a date as YYYY-MM-DD or 'today', got {text!r}"
        raise ValueError(msg) from exc
