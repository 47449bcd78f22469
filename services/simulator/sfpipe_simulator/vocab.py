"""Word lists the generator draws names, companies, streets and texts from, as Arrow arrays.

Faker's English lists are used as data only (no Faker calls per record: those cost tens of
microseconds each); records pick entries by counter-based random indices, vectorised.
"""

from __future__ import annotations

import functools

import pyarrow as pa
from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.company.en_US import Provider as CompanyProvider
from faker.providers.job.en_US import Provider as JobProvider
from faker.providers.person.en_US import Provider as PersonProvider

from sfpipe_simulator.metadata import COUNTRIES, US_STATES


@functools.cache
def first_names() -> pa.StringArray:
    """Given names."""
    names = sorted(set(PersonProvider.first_names_female) | set(PersonProvider.first_names_male))
    return pa.array(names, pa.string())


@functools.cache
def last_names() -> pa.StringArray:
    """Family names (also used for company names)."""
    return pa.array(sorted(set(PersonProvider.last_names)), pa.string())


@functools.cache
def company_words() -> pa.StringArray:
    """Words that make up company names."""
    words = sorted({w.capitalize() for group in CompanyProvider.catch_phrase_words for w in group if w.isalpha()})
    return pa.array(words, pa.string())


COMPANY_SUFFIXES = pa.array(
    ["Inc", "LLC", "Group", "Ltd", "Corp", "Holdings", "Partners", "Systems", "Labs", "& Co", "GmbH", "SA"]
)
DOMAINS = pa.array(["example.com", "example.org", "example.net", "mail.example.com", "corp.example.com"])


@functools.cache
def jobs() -> pa.StringArray:
    """Job titles."""
    return pa.array(sorted({j[:80] for j in JobProvider.jobs}), pa.string())


@functools.cache
def street_names() -> pa.StringArray:
    """Street name stems."""
    return last_names()


@functools.cache
def street_suffixes() -> pa.StringArray:
    """Street types."""
    return pa.array(sorted(set(AddressProvider.street_suffixes)), pa.string())


@functools.cache
def city_names() -> pa.StringArray:
    """City names (prefix + stem + suffix combinations precomputed)."""
    stems = sorted(set(PersonProvider.last_names))[:120]
    cities = sorted({f"{stem}{suffix}" for stem in stems for suffix in AddressProvider.city_suffixes})
    return pa.array(cities, pa.string())


COUNTRY_NAMES = pa.array([name for name, _ in COUNTRIES])
COUNTRY_CODES = pa.array([code for _, code in COUNTRIES])
STATE_NAMES = pa.array([name for name, _ in US_STATES])
STATE_CODES = pa.array([code for _, code in US_STATES])
DEPARTMENTS = pa.array(
    ["Sales", "Marketing", "Finance", "Engineering", "Operations", "Procurement", "IT", "Legal", "Support", "HR"]
)

# Free-text samples: some with commas, quotes, line breaks and non-ASCII characters, so that
# every CSV and JSON path is exercised by ordinary generated data.
DESCRIPTIONS = pa.array(
    [
        "Met at the annual conference; interested in a pilot.",
        'Customer asked for "enterprise" pricing, follow up next week.',
        "Renewal discussion.\nBudget approved for Q3.",
        "Prefers e-mail, not phone calls.",
        "Key contacts: CFO, VP Operations, Head of IT",
        "Référence client: société française — contact via partenaire.",
        "Multi-line note:\n- kickoff done\n- \"security review\" pending\n- legal, then signature",
        "Großkunde, Rahmenvertrag läuft bis Jahresende.",
        "Needs integration with ERP, SSO and data warehouse.",
        "Referred by existing customer.",
        "Trial extended by 30 days.",
        "日本支社との共同案件。",
        "Quoted 10% discount, pending approval",
        "Churn risk: low usage in the last quarter.",
        "Line one\r\nline two with a comma, and a quote \"here\"",
        "Upsell opportunity for premium support.",
    ]
)
SUBJECTS_TASK = pa.array(["Call", "Send Letter", "Send Quote", "Email", "Follow up", "Demo", "Other"])
SUBJECTS_EVENT = pa.array(["Meeting", "Demo", "Lunch", "Conference call", "On-site visit", "Quarterly review"])
CASE_SUBJECTS = pa.array(
    [
        "Cannot log in",
        "Invoice is wrong",
        "Feature request: export to CSV",
        "Performance degraded",
        "Integration error 500",
        "Need help with setup",
        "Data missing after sync",
        "Password reset",
    ]
)
PRODUCT_WORDS = pa.array(
    ["Analytics", "Platform", "Gateway", "Connector", "Suite", "Cloud", "Edge", "Insights", "Vault", "Flow",
     "Studio", "Engine", "Hub", "Monitor", "Sensor", "Router"]
)  # fmt: skip
PRODUCT_TIERS = pa.array(["Basic", "Standard", "Professional", "Enterprise", "Unlimited", "Starter"])
CAMPAIGN_TOPICS = pa.array(
    ["Spring Launch", "Customer Summit", "Product Webinar", "Partner Day", "Holiday Promo", "Industry Expo",
     "Roadshow", "Newsletter", "Retargeting", "Field Event"]
)  # fmt: skip
NEXT_STEPS = pa.array(["Schedule demo", "Send proposal", "Negotiate terms", "Legal review", "Await signature",
                       "Technical validation", None])  # fmt: skip
