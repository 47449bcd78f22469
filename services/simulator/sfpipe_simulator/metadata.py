"""The simulated org's schema: every object, every field, every picklist — the one source of describe.

The generator, the DuckDB store, the SOQL compiler, the REST describe responses, the Bulk CSV
headers and the truth export all read their columns from here, so a field can never exist in
one place and be missing in another. Field names, types and flags follow a real org's
describe of the standard objects (API v59–v62); fields that the fivetran/dbt_salesforce
staging models select are all present. Objects a field merely points at (Profile,
RecordType, Individual, Contract, Quote) are not simulated: such references are null or point
at a fixed set of Ids.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from sfpipe.salesforce.types import arrow_type
from sfpipe_simulator.ids import KEY_PREFIXES

COMPOUND_TYPES = frozenset({"address", "location"})
TEXT_TYPES = frozenset(
    {"string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone", "url", "encryptedstring"}
)
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
INTEGER_TYPES = frozenset({"int", "long"})

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "long": "xsd:long",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "time": "xsd:time",
    "address": "urn:address",
    "location": "urn:location",
    "anytype": "xsd:anyType",
}


# --------------------------------------------------------------------------- stage metadata


@dataclass(frozen=True)
class Stage:
    """One value of the OpportunityStage picklist with the metadata a real org attaches to it."""

    name: str
    probability: int
    forecast_category: str
    is_closed: bool
    is_won: bool

    @property
    def forecast_category_name(self) -> str:
        """The label that ``ForecastCategoryName`` holds for the category."""
        return FORECAST_CATEGORY_LABELS[self.forecast_category]


# A new org's default OpportunityStage values (Setup → Opportunity → Stage), in sort order.
STAGES: tuple[Stage, ...] = (
    Stage("Prospecting", 10, "Pipeline", False, False),
    Stage("Qualification", 10, "Pipeline", False, False),
    Stage("Needs Analysis", 20, "Pipeline", False, False),
    Stage("Value Proposition", 50, "Pipeline", False, False),
    Stage("Id. Decision Makers", 60, "Pipeline", False, False),
    Stage("Perception Analysis", 70, "Pipeline", False, False),
    Stage("Proposal/Price Quote", 75, "Pipeline", False, False),
    Stage("Negotiation/Review", 90, "Pipeline", False, False),
    Stage("Closed Won", 100, "Closed", True, True),
    Stage("Closed Lost", 0, "Omitted", True, False),
)
STAGE_BY_NAME = {stage.name.lower(): stage for stage in STAGES}
OPEN_STAGES = tuple(s for s in STAGES if not s.is_closed)
FORECAST_CATEGORY_LABELS = {
    "Omitted": "Omitted",
    "Pipeline": "Pipeline",
    "BestCase": "Best Case",
    "Forecast": "Commit",
    "Closed": "Closed",
}
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
LEAD_CONVERTED_STATUS = "Closed - Converted"
CASE_STATUSES = ("New", "Working", "Escalated", "Closed")
CASE_CLOSED_STATUSES = frozenset({"Closed"})
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_CLOSED_STATUSES = frozenset({"Completed"})
INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction",
    "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental",
    "Finance", "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance", "Machinery",
    "Manufacturing", "Media", "Not For Profit", "Other", "Recreation", "Retail", "Shipping", "Technology",
    "Telecommunications", "Transportation", "Utilities",
)  # fmt: skip
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
ACCOUNT_TYPES = (
    "Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
    "Installation Partner", "Technology Partner", "Other",
)  # fmt: skip
OPPORTUNITY_TYPES = (
    "Existing Customer - Upgrade", "Existing Customer - Replacement", "Existing Customer - Downgrade", "New Customer",
)  # fmt: skip
RATINGS = ("Hot", "Warm", "Cold")
OWNERSHIP = ("Public", "Private", "Subsidiary", "Other")
SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
CAMPAIGN_TYPES = (
    "Conference", "Webinar", "Trade Show", "Public Relations", "Partners", "Referral Program", "Advertisement",
    "Banner Ads", "Direct Mail", "Email", "Telemarketing", "Other",
)  # fmt: skip
CAMPAIGN_STATUSES = ("Planned", "In Progress", "Completed", "Aborted")
PRODUCT_FAMILIES = ("Hardware", "Software", "Services", "Support")
COUNTRIES = (
    ("United States", "US"), ("Canada", "CA"), ("United Kingdom", "GB"), ("Germany", "DE"), ("France", "FR"),
    ("Australia", "AU"), ("Japan", "JP"), ("Brazil", "BR"), ("India", "IN"), ("Netherlands", "NL"),
)  # fmt: skip
US_STATES = (
    ("California", "CA"), ("New York", "NY"), ("Texas", "TX"), ("Illinois", "IL"), ("Washington", "WA"),
    ("Massachusetts", "MA"), ("Georgia", "GA"), ("Colorado", "CO"), ("Florida", "FL"), ("Oregon", "OR"),
)  # fmt: skip


# --------------------------------------------------------------------------- field and object model


@dataclass(frozen=True)
class FieldDef:
    """One field of an sObject, with the describe attributes clients read."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    calculated: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    child_relationship: str | None = None
    cascade_delete: bool = False
    picklist: tuple[str, ...] = ()
    picklist_labels: tuple[str, ...] = ()
    default_value: Any = None
    compound_field_name: str | None = None
    name_field: bool = False
    id_lookup: bool = False
    external_id: bool = False
    unique: bool = False
    auto_number: bool = False
    html_formatted: bool = False
    formula: str | None = None
    """The formula of a calculated field (describe's ``calculatedFormula``)."""

    @property
    def custom(self) -> bool:
        """Custom fields end in ``__c``."""
        return self.name.endswith("__c")

    @property
    def is_compound(self) -> bool:
        """Address and location fields are views over component fields, not stored columns."""
        return self.type in COMPOUND_TYPES

    @property
    def is_text(self) -> bool:
        """Text-like (compared case-insensitively in SOQL)."""
        return self.type in TEXT_TYPES

    @property
    def is_long_text(self) -> bool:
        """Long text areas: not filterable, not sortable."""
        return self.type == "textarea" and self.length > 4000

    @property
    def polymorphic(self) -> bool:
        """A reference that can point at more than one object (WhoId, WhatId)."""
        return len(self.reference_to) > 1

    @property
    def filterable(self) -> bool:
        """Whether SOQL may filter on the field."""
        return not self.is_long_text and not self.is_compound

    @property
    def sortable(self) -> bool:
        """Whether SOQL may order by the field."""
        return self.filterable and self.type != "multipicklist"

    @property
    def groupable(self) -> bool:
        """Whether SOQL may group by the field."""
        return self.sortable and self.type not in {"double", "currency", "percent", "datetime", "textarea"}

    @property
    def aggregatable(self) -> bool:
        """Whether aggregate functions accept the field."""
        return self.filterable

    @property
    def arrow(self) -> pa.DataType:
        """The Arrow type of the stored column (through the shared type mapping)."""
        return arrow_type(self.type)

    def describe(self) -> dict[str, Any]:
        """The field's entry in an sObject describe, with every key a real describe has."""
        text = self.type in TEXT_TYPES
        length = self.length if text else (18 if self.type in ID_TYPES else 0)
        values = []
        labels = self.picklist_labels or self.picklist
        for value, label in zip(self.picklist, labels, strict=True):
            values.append(
                {
                    "active": True,
                    "defaultValue": value == self.default_value,
                    "label": label,
                    "validFor": None,
                    "value": value,
                }
            )
        return {
            "aggregatable": self.aggregatable,
            "aiPredictionField": False,
            "autoNumber": self.auto_number,
            "byteLength": length * 3 if text else length,
            "calculated": self.calculated,
            "calculatedFormula": self.formula,
            "cascadeDelete": self.cascade_delete,
            "caseSensitive": False,
            "compoundFieldName": self.compound_field_name,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default_value if self.type == "boolean" else None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.defaulted_on_create,
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": self.digits,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": _extra_type_info(self),
            "filterable": self.filterable,
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False,
            "groupable": self.groupable,
            "highScaleNumber": False,
            "htmlFormatted": self.html_formatted,
            "idLookup": self.id_lookup,
            "inlineHelpText": None,
            "label": self.label,
            "length": length,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": self.polymorphic,
            "nillable": self.nillable,
            "permissionable": self.nillable and self.updateable and not self.name_field,
            "picklistValues": values,
            "polymorphicForeignKey": self.polymorphic,
            "precision": self.precision,
            "queryByDistance": False,
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.type == "picklist",
            "scale": self.scale,
            "searchPrefilterable": self.type == "reference",
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.sortable,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


def _extra_type_info(f: FieldDef) -> str | None:
    if f.type == "textarea":
        return "plaintextarea"
    if f.type == "url" and f.name.endswith("PhotoUrl"):
        return "imageurl"
    if f.reference_to and f.name in {"OwnerId", "CreatedById", "LastModifiedById"}:
        return None
    return None


@dataclass(frozen=True)
class ObjectDef:
    """One sObject: its describe-level flags and its fields in describe order."""

    name: str
    label: str
    label_plural: str
    fields: tuple[FieldDef, ...]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    undeletable: bool = True
    triggerable: bool = True
    mergeable: bool = False
    feed_enabled: bool = False
    searchable: bool = True
    by_name: dict[str, FieldDef] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.name.lower(): f for f in self.fields})

    @property
    def key_prefix(self) -> str:
        """The 3-character Id prefix."""
        return KEY_PREFIXES[self.name]

    @property
    def table(self) -> str:
        """The store's table name (the API name)."""
        return self.name

    @property
    def stored_fields(self) -> tuple[FieldDef, ...]:
        """Fields kept as columns: every field except compound ones."""
        return tuple(f for f in self.fields if not f.is_compound)

    @property
    def has_is_deleted(self) -> bool:
        """Whether the object soft-deletes (User and UserRole do not)."""
        return "isdeleted" in self.by_name

    @property
    def has_created_date(self) -> bool:
        """Whether the object has a CreatedDate (UserRole has none)."""
        return "createddate" in self.by_name

    @property
    def has_last_modified(self) -> bool:
        """Whether the object has LastModifiedDate (OpportunityHistory has none)."""
        return "lastmodifieddate" in self.by_name

    def field(self, name: str) -> FieldDef | None:
        """A field by API name, case-insensitively."""
        return self.by_name.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field behind a relationship name (``Account`` → ``AccountId``)."""
        lowered = name.lower()
        for f in self.fields:
            if f.relationship_name and f.relationship_name.lower() == lowered:
                return f
        return None

    def arrow_schema(self) -> pa.Schema:
        """The stored columns as an Arrow schema (Salesforce names, shared type mapping)."""
        return pa.schema([pa.field(f.name, f.arrow, nullable=True) for f in self.stored_fields])

    def compound_parts(self, compound: FieldDef) -> list[FieldDef]:
        """The component fields of an address or location field."""
        return [f for f in self.fields if f.compound_field_name == compound.name]


# --------------------------------------------------------------------------- field helpers

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _label(name: str) -> str:
    words = _CAMEL.sub(" ", name)
    if words.endswith(" Id"):
        words = words[:-3] + " ID"
    return words


def F(name: str, type_: str, **kw: Any) -> FieldDef:
    """A field, with Salesforce's usual precision and length for its type."""
    if type_ in {"currency", "double"}:
        kw.setdefault("precision", 18)
        kw.setdefault("scale", 2)
    if type_ == "percent":
        kw.setdefault("precision", 3)
        kw.setdefault("scale", 0)
    if type_ == "int":
        kw.setdefault("digits", 9)
    if type_ in TEXT_TYPES and "length" not in kw:
        kw["length"] = {"textarea": 32000, "email": 80, "phone": 40, "url": 255, "picklist": 255}.get(type_, 255)
    if type_ == "boolean":
        kw.setdefault("nillable", False)
        kw.setdefault("default_value", False)
        kw.setdefault("defaulted_on_create", True)
    label = kw.pop("label", None) or _label(name)
    return FieldDef(name=name, type=type_, label=label, **kw)


def ref(name: str, to: str | tuple[str, ...], rel: str | None, **kw: Any) -> FieldDef:
    """A lookup field."""
    targets = (to,) if isinstance(to, str) else to
    return F(name, "reference", reference_to=targets, relationship_name=rel, **kw)


def pick(name: str, values: Iterable[str], **kw: Any) -> FieldDef:
    """A picklist field."""
    return F(name, "picklist", picklist=tuple(values), **kw)


def readonly(f: FieldDef) -> FieldDef:
    """The same field, maintained by the system only."""
    return replace(f, createable=False, updateable=False)


def id_field() -> FieldDef:
    """The primary key."""
    return F("Id", "id", nillable=False, createable=False, updateable=False, defaulted_on_create=True, id_lookup=True)


def is_deleted() -> FieldDef:
    """The soft-delete flag."""
    return readonly(F("IsDeleted", "boolean"))


def audit_fields(created: bool = True, modified: bool = True) -> list[FieldDef]:
    """CreatedDate … SystemModstamp, as every replicated object has them."""
    out: list[FieldDef] = []
    if created:
        out += [
            readonly(F("CreatedDate", "datetime", nillable=False, defaulted_on_create=True)),
            readonly(ref("CreatedById", "User", "CreatedBy", nillable=False, defaulted_on_create=True)),
        ]
    if modified:
        out += [
            readonly(F("LastModifiedDate", "datetime", nillable=False, defaulted_on_create=True)),
            readonly(ref("LastModifiedById", "User", "LastModifiedBy", nillable=False, defaulted_on_create=True)),
        ]
    out.append(readonly(F("SystemModstamp", "datetime", nillable=False, defaulted_on_create=True)))
    return out


def viewed_fields() -> list[FieldDef]:
    """LastViewedDate and LastReferencedDate."""
    return [readonly(F("LastViewedDate", "datetime")), readonly(F("LastReferencedDate", "datetime"))]


def address(prefix: str, compound: str, states: bool = True) -> list[FieldDef]:
    """The component fields of an address, then the compound field."""
    out = [
        F(f"{prefix}Street", "textarea", length=255, compound_field_name=compound),
        F(f"{prefix}City", "string", length=40, compound_field_name=compound),
        F(f"{prefix}State", "string", length=80, compound_field_name=compound),
        F(f"{prefix}PostalCode", "string", length=20, compound_field_name=compound),
        F(f"{prefix}Country", "string", length=80, compound_field_name=compound),
    ]
    if states:
        out += [
            pick(f"{prefix}StateCode", [code for _, code in US_STATES], compound_field_name=compound,
                 picklist_labels=tuple(name for name, _ in US_STATES)),
            pick(f"{prefix}CountryCode", [code for _, code in COUNTRIES], compound_field_name=compound,
                 picklist_labels=tuple(name for name, _ in COUNTRIES)),
        ]  # fmt: skip
    out += [
        F(f"{prefix}Latitude", "double", precision=18, scale=15, compound_field_name=compound),
        F(f"{prefix}Longitude", "double", precision=18, scale=15, compound_field_name=compound),
        pick(f"{prefix}GeocodeAccuracy", ["Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip",
                                          "Neighborhood", "City", "County", "State", "Unknown"],
             compound_field_name=compound),
        readonly(F(compound, "address")),
    ]  # fmt: skip
    return out


def name_parts(compound: str = "Name") -> list[FieldDef]:
    """Salutation, FirstName, LastName and the read-only full Name."""
    return [
        F("LastName", "string", length=80, nillable=False, compound_field_name=compound),
        F("FirstName", "string", length=40, compound_field_name=compound),
        pick("Salutation", SALUTATIONS, compound_field_name=compound),
        readonly(F(compound, "string", length=121, name_field=True)),
    ]


def _stage_picklist() -> FieldDef:
    return pick("StageName", [s.name for s in STAGES], nillable=False, label="Stage")


# --------------------------------------------------------------------------- the objects

USER_ROLE = ObjectDef(
    "UserRole", "Role", "Roles",
    (
        id_field(),
        F("Name", "string", length=80, nillable=False, name_field=True),
        ref("ParentRoleId", "UserRole", None, label="Parent Role ID"),
        F("RollupDescription", "string", length=80),
        pick("OpportunityAccessForAccountOwner", ["None", "Read", "Edit"], nillable=False),
        pick("CaseAccessForAccountOwner", ["None", "Read", "Edit"]),
        pick("ContactAccessForAccountOwner", ["None", "Read", "Edit"]),
        ref("ForecastUserId", "User", "ForecastUser"),
        F("MayForecastManagerShare", "boolean"),
        *audit_fields(created=False),
        F("DeveloperName", "string", length=80),
        pick("PortalType", ["None", "CustomerPortal", "Partner"]),
    ),
    deletable=False, undeletable=False, triggerable=False,
)  # fmt: skip

USER = ObjectDef(
    "User", "User", "Users",
    (
        id_field(),
        F("Username", "string", length=80, nillable=False, unique=True, id_lookup=True),
        F("LastName", "string", length=80, nillable=False, compound_field_name="Name"),
        F("FirstName", "string", length=40, compound_field_name="Name"),
        readonly(F("Name", "string", length=121, name_field=True)),
        F("CompanyName", "string", length=80),
        F("Division", "string", length=80),
        F("Department", "string", length=80),
        F("Title", "string", length=80),
        *address("", "Address"),
        F("Email", "email", length=128, nillable=False),
        F("Phone", "phone"),
        F("MobilePhone", "phone"),
        F("Alias", "string", length=8, nillable=False),
        F("CommunityNickname", "string", length=40, nillable=False, unique=True),
        F("IsActive", "boolean", default_value=True),
        pick("TimeZoneSidKey", ["America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Berlin",
                                "Asia/Tokyo", "Australia/Sydney"], nillable=False),
        ref("UserRoleId", "UserRole", "UserRole", label="Role ID"),
        pick("LocaleSidKey", ["en_US", "en_GB", "de_DE", "fr_FR", "ja_JP"], nillable=False),
        pick("EmailEncodingKey", ["UTF-8", "ISO-8859-1"], nillable=False),
        ref("ProfileId", "Profile", "Profile", nillable=False),
        readonly(pick("UserType", ["Standard", "PowerPartner", "CsnOnly", "Guest"])),
        pick("LanguageLocaleKey", ["en_US", "de", "fr", "ja"], nillable=False),
        F("EmployeeNumber", "string", length=20),
        ref("ManagerId", "User", "Manager"),
        readonly(F("LastLoginDate", "datetime")),
        *audit_fields(),
        ref("ContactId", "Contact", "Contact"),
        ref("AccountId", "Account", "Account"),
        ref("IndividualId", "Individual", "Individual"),
        *viewed_fields(),
        F("FederationIdentifier", "string", length=512),
    ),
    deletable=False, undeletable=False, feed_enabled=True,
)  # fmt: skip

ACCOUNT = ObjectDef(
    "Account", "Account", "Accounts",
    (
        id_field(),
        is_deleted(),
        readonly(ref("MasterRecordId", "Account", "MasterRecord")),
        F("Name", "string", nillable=False, name_field=True, label="Account Name"),
        pick("Type", ACCOUNT_TYPES, label="Account Type"),
        ref("RecordTypeId", "RecordType", "RecordType"),
        ref("ParentId", "Account", "Parent", child_relationship="ChildAccounts"),
        *address("Billing", "BillingAddress"),
        *address("Shipping", "ShippingAddress"),
        F("Phone", "phone"),
        F("Fax", "phone"),
        F("AccountNumber", "string", length=40),
        F("Website", "url"),
        readonly(F("PhotoUrl", "url")),
        F("Sic", "string", length=20),
        pick("Industry", INDUSTRIES),
        F("AnnualRevenue", "currency"),
        F("NumberOfEmployees", "int", digits=8, label="Employees"),
        pick("Ownership", OWNERSHIP),
        F("TickerSymbol", "string", length=20),
        F("Description", "textarea"),
        pick("Rating", RATINGS),
        F("Site", "string", length=80),
        ref("OwnerId", "User", "Owner", nillable=False, defaulted_on_create=True),
        *audit_fields(),
        readonly(F("LastActivityDate", "date")),
        *viewed_fields(),
        F("Jigsaw", "string", length=20),
        readonly(F("JigsawCompanyId", "string", length=20)),
        pick("AccountSource", LEAD_SOURCES),
        F("SicDesc", "string", length=80),
    ),
    mergeable=True, feed_enabled=True,
)  # fmt: skip

CONTACT = ObjectDef(
    "Contact", "Contact", "Contacts",
    (
        id_field(),
        is_deleted(),
        readonly(ref("MasterRecordId", "Contact", "MasterRecord")),
        ref("AccountId", "Account", "Account", child_relationship="Contacts"),
        *name_parts(),
        *address("Mailing", "MailingAddress"),
        F("Phone", "phone", label="Business Phone"),
        F("Fax", "phone"),
        F("MobilePhone", "phone"),
        F("HomePhone", "phone"),
        F("OtherPhone", "phone"),
        F("AssistantPhone", "phone"),
        ref("ReportsToId", "Contact", "ReportsTo"),
        F("Email", "email"),
        F("Title", "string", length=128),
        F("Department", "string", length=80),
        F("AssistantName", "string", length=40),
        pick("LeadSource", LEAD_SOURCES),
        F("Birthdate", "date"),
        F("Description", "textarea"),
        ref("OwnerId", "User", "Owner", nillable=False, defaulted_on_create=True),
        F("HasOptedOutOfEmail", "boolean", label="Email Opt Out"),
        F("DoNotCall", "boolean"),
        *audit_fields(),
        readonly(F("LastActivityDate", "date")),
        readonly(F("LastCURequestDate", "datetime")),
        readonly(F("LastCUUpdateDate", "datetime")),
        *viewed_fields(),
        F("EmailBouncedReason", "string"),
        F("EmailBouncedDate", "datetime"),
        readonly(F("IsEmailBounced", "boolean")),
        readonly(F("PhotoUrl", "url")),
        F("Jigsaw", "string", length=20),
        readonly(F("JigsawContactId", "string", length=20)),
        ref("IndividualId", "Individual", "Individual"),
    ),
    mergeable=True, feed_enabled=True,
)  # fmt: skip

LEAD = ObjectDef(
    "Lead", "Lead", "Leads",
    (
        id_field(),
        is_deleted(),
        readonly(ref("MasterRecordId", "Lead", "MasterRecord")),
        *name_parts(),
        F("Title", "string", length=128),
        F("Company", "string", nillable=False),
        *address("", "Address"),
        F("Phone", "phone"),
        F("MobilePhone", "phone"),
        F("Fax", "phone"),
        F("Email", "email"),
        F("Website", "url"),
        readonly(F("PhotoUrl", "url")),
        F("Description", "textarea"),
        pick("LeadSource", LEAD_SOURCES),
        pick("Status", LEAD_STATUSES, nillable=False, default_value="Open - Not Contacted",
             defaulted_on_create=True),
        pick("Industry", INDUSTRIES),
        pick("Rating", RATINGS),
        F("AnnualRevenue", "currency"),
        F("NumberOfEmployees", "int", digits=8),
        ref("OwnerId", ("User",), "Owner", nillable=False, defaulted_on_create=True),
        F("HasOptedOutOfEmail", "boolean"),
        readonly(F("IsConverted", "boolean")),
        readonly(F("ConvertedDate", "date")),
        readonly(ref("ConvertedAccountId", "Account", "ConvertedAccount")),
        readonly(ref("ConvertedContactId", "Contact", "ConvertedContact")),
        readonly(ref("ConvertedOpportunityId", "Opportunity", "ConvertedOpportunity")),
        F("IsUnreadByOwner", "boolean"),
        *audit_fields(),
        readonly(F("LastActivityDate", "date")),
        F("DoNotCall", "boolean"),
        *viewed_fields(),
        F("Jigsaw", "string", length=20),
        readonly(F("JigsawContactId", "string", length=20)),
        F("EmailBouncedReason", "string"),
        F("EmailBouncedDate", "datetime"),
        ref("IndividualId", "Individual", "Individual"),
    ),
    mergeable=True, feed_enabled=True,
)  # fmt: skip

CAMPAIGN = ObjectDef(
    "Campaign", "Campaign", "Campaigns",
    (
        id_field(),
        is_deleted(),
        F("Name", "string", length=80, nillable=False, name_field=True),
        ref("ParentId", "Campaign", "Parent", child_relationship="ChildCampaigns"),
        pick("Type", CAMPAIGN_TYPES),
        pick("Status", CAMPAIGN_STATUSES),
        F("StartDate", "date"),
        F("EndDate", "date"),
        F("ExpectedRevenue", "currency", scale=0),
        F("BudgetedCost", "currency", scale=0),
        F("ActualCost", "currency", scale=0),
        F("ExpectedResponse", "percent", precision=8, scale=2),
        F("NumberSent", "double", scale=0),
        F("IsActive", "boolean"),
        F("Description", "textarea"),
        ref("OwnerId", "User", "Owner", nillable=False, defaulted_on_create=True),
        *audit_fields(),
        readonly(F("LastActivityDate", "date")),
        *viewed_fields(),
    ),
)  # fmt: skip

OPPORTUNITY = ObjectDef(
    "Opportunity", "Opportunity", "Opportunities",
    (
        id_field(),
        is_deleted(),
        ref("AccountId", "Account", "Account", child_relationship="Opportunities"),
        ref("RecordTypeId", "RecordType", "RecordType"),
        F("IsPrivate", "boolean"),
        F("Name", "string", length=120, nillable=False, name_field=True),
        F("Description", "textarea"),
        _stage_picklist(),
        F("Amount", "currency"),
        F("Probability", "percent", defaulted_on_create=True),
        readonly(F("ExpectedRevenue", "currency", label="Expected Amount")),
        F("TotalOpportunityQuantity", "double", label="Quantity"),
        F("CloseDate", "date", nillable=False),
        pick("Type", OPPORTUNITY_TYPES, label="Opportunity Type"),
        F("NextStep", "string"),
        pick("LeadSource", LEAD_SOURCES),
        readonly(F("IsClosed", "boolean", label="Closed")),
        readonly(F("IsWon", "boolean", label="Won")),
        readonly(pick("ForecastCategory", tuple(FORECAST_CATEGORY_LABELS),
                      picklist_labels=tuple(FORECAST_CATEGORY_LABELS.values()), nillable=False)),
        pick("ForecastCategoryName", tuple(FORECAST_CATEGORY_LABELS.values()), label="Forecast Category"),
        ref("CampaignId", "Campaign", "Campaign", child_relationship="Opportunities"),
        readonly(F("HasOpportunityLineItem", "boolean", label="Has Line Item")),
        ref("Pricebook2Id", "Pricebook2", "Pricebook2", child_relationship="Opportunities"),
        ref("OwnerId", "User", "Owner", nillable=False, defaulted_on_create=True),
        *audit_fields(),
        readonly(F("LastActivityDate", "date")),
        readonly(F("PushCount", "int")),
        readonly(F("LastStageChangeDate", "datetime")),
        readonly(F("FiscalQuarter", "int", digits=1)),
        readonly(F("FiscalYear", "int", digits=4)),
        readonly(F("Fiscal", "string", length=6, label="Fiscal Period")),
        ref("ContactId", "Contact", "Contact"),
        *viewed_fields(),
        readonly(ref("SyncedQuoteId", "Quote", "SyncedQuote")),
        readonly(F("HasOpenActivity", "boolean")),
        readonly(F("HasOverdueTask", "boolean")),
        readonly(ref("LastAmountChangedHistoryId", "OpportunityHistory", "LastAmountChangedHistory")),
        readonly(ref("LastCloseDateChangedHistoryId", "OpportunityHistory", "LastCloseDateChangedHistory")),
        readonly(F("Account_Industry__c", "string", length=1300, calculated=True, formula="TEXT(Account.Industry)",
                   label="Account Industry")),
    ),
    feed_enabled=True,
)  # fmt: skip

PRODUCT2 = ObjectDef(
    "Product2", "Product", "Products",
    (
        id_field(),
        F("Name", "string", nillable=False, name_field=True, label="Product Name"),
        F("ProductCode", "string"),
        F("Description", "textarea", length=4000),
        F("IsActive", "boolean"),
        *audit_fields(),
        pick("Family", PRODUCT_FAMILIES, label="Product Family"),
        ref("RecordTypeId", "RecordType", "RecordType"),
        F("ExternalId", "string", external_id=True),
        F("DisplayUrl", "url", length=1000),
        pick("QuantityUnitOfMeasure", ["Each", "Hour", "License", "Seat"]),
        is_deleted(),
        readonly(F("IsArchived", "boolean")),
        *viewed_fields(),
        F("StockKeepingUnit", "string", length=180),
        F("CanUseQuantitySchedule", "boolean"),
        F("CanUseRevenueSchedule", "boolean"),
        pick("QuantityScheduleType", ["Divide", "Repeat"]),
        pick("QuantityInstallmentPeriod", ["Daily", "Weekly", "Monthly", "Quarterly", "Yearly"]),
        F("NumberOfQuantityInstallments", "int", digits=9),
        pick("RevenueScheduleType", ["Divide", "Repeat"]),
        pick("RevenueInstallmentPeriod", ["Daily", "Weekly", "Monthly", "Quarterly", "Yearly"]),
        F("NumberOfRevenueInstallments", "int", digits=9),
    ),
)  # fmt: skip

PRICEBOOK2 = ObjectDef(
    "Pricebook2", "Price Book", "Price Books",
    (
        id_field(),
        is_deleted(),
        F("Name", "string", nillable=False, name_field=True, label="Price Book Name"),
        *audit_fields(),
        *viewed_fields(),
        F("IsActive", "boolean"),
        readonly(F("IsArchived", "boolean")),
        F("Description", "string"),
        readonly(F("IsStandard", "boolean")),
    ),
)  # fmt: skip

PRICEBOOK_ENTRY = ObjectDef(
    "PricebookEntry", "Price Book Entry", "Price Book Entries",
    (
        id_field(),
        readonly(F("Name", "string", nillable=True, name_field=True, label="Product Name")),
        replace(ref("Pricebook2Id", "Pricebook2", "Pricebook2", nillable=False, child_relationship="PricebookEntries"),
                updateable=False),
        replace(ref("Product2Id", "Product2", "Product2", nillable=False, child_relationship="PricebookEntries"),
                updateable=False),
        F("UnitPrice", "currency", nillable=False, label="List Price"),
        F("IsActive", "boolean"),
        F("UseStandardPrice", "boolean"),
        *audit_fields(),
        readonly(F("ProductCode", "string")),
        is_deleted(),
        readonly(F("IsArchived", "boolean")),
    ),
    undeletable=False,
)  # fmt: skip

OPPORTUNITY_LINE_ITEM = ObjectDef(
    "OpportunityLineItem", "Opportunity Product", "Opportunity Product",
    (
        id_field(),
        replace(ref("OpportunityId", "Opportunity", "Opportunity", nillable=False,
                    child_relationship="OpportunityLineItems", cascade_delete=True), updateable=False),
        F("SortOrder", "int"),
        replace(ref("PricebookEntryId", "PricebookEntry", "PricebookEntry"), updateable=False),
        replace(ref("Product2Id", "Product2", "Product2"), updateable=False),
        readonly(F("ProductCode", "string")),
        readonly(F("Name", "string", length=376, name_field=True)),
        F("Quantity", "double", nillable=False),
        F("TotalPrice", "currency"),
        F("UnitPrice", "currency", label="Sales Price"),
        readonly(F("ListPrice", "currency")),
        F("ServiceDate", "date"),
        F("Description", "string", label="Line Description"),
        *audit_fields(),
        is_deleted(),
        *viewed_fields(),
        F("Discount", "percent", precision=18, scale=2),
        readonly(F("Subtotal", "currency")),
        readonly(F("HasRevenueSchedule", "boolean")),
        readonly(F("HasQuantitySchedule", "boolean")),
        readonly(F("HasSchedule", "boolean")),
    ),
    undeletable=False, triggerable=True,
)  # fmt: skip

OPPORTUNITY_HISTORY = ObjectDef(
    "OpportunityHistory", "Opportunity History", "Opportunity History",
    (
        id_field(),
        readonly(ref("OpportunityId", "Opportunity", "Opportunity", nillable=False,
                     child_relationship="OpportunityHistories", cascade_delete=True)),
        readonly(ref("CreatedById", "User", "CreatedBy", nillable=False)),
        readonly(F("CreatedDate", "datetime", nillable=False)),
        readonly(pick("StageName", [s.name for s in STAGES], nillable=False, label="Stage")),
        readonly(F("Amount", "currency")),
        readonly(F("ExpectedRevenue", "currency")),
        readonly(F("CloseDate", "date")),
        readonly(F("Probability", "percent")),
        readonly(pick("ForecastCategory", tuple(FORECAST_CATEGORY_LABELS),
                      picklist_labels=tuple(FORECAST_CATEGORY_LABELS.values()))),
        readonly(F("SystemModstamp", "datetime", nillable=False)),
        is_deleted(),
        readonly(F("PrevAmount", "currency")),
        readonly(F("PrevCloseDate", "date")),
    ),
    createable=False, updateable=False, deletable=False, undeletable=False, triggerable=False, searchable=False,
)  # fmt: skip

TASK = ObjectDef(
    "Task", "Task", "Tasks",
    (
        id_field(),
        ref("RecordTypeId", "RecordType", "RecordType"),
        ref("WhoId", ("Contact", "Lead"), "Who", child_relationship="Tasks", label="Name ID"),
        ref("WhatId", ("Account", "Opportunity", "Campaign", "Case", "Order", "Product2"), "What",
            child_relationship="Tasks", label="Related To ID"),
        readonly(F("WhoCount", "int", digits=9)),
        readonly(F("WhatCount", "int", digits=9)),
        F("Subject", "combobox", length=255),
        F("ActivityDate", "date", label="Due Date Only"),
        pick("Status", TASK_STATUSES, nillable=False, default_value="Not Started", defaulted_on_create=True),
        pick("Priority", ("High", "Normal", "Low"), nillable=False, default_value="Normal",
             defaulted_on_create=True),
        readonly(F("IsHighPriority", "boolean")),
        ref("OwnerId", ("User",), "Owner", nillable=False, defaulted_on_create=True, label="Assigned To ID"),
        F("Description", "textarea"),
        pick("Type", ("Call", "Email", "Meeting", "Other")),
        is_deleted(),
        readonly(ref("AccountId", "Account", "Account")),
        readonly(F("IsClosed", "boolean")),
        *audit_fields(),
        readonly(F("IsArchived", "boolean")),
        F("CallDurationInSeconds", "int", digits=8),
        pick("CallType", ("Internal", "Inbound", "Outbound")),
        F("CallDisposition", "string"),
        F("CallObject", "string"),
        F("ReminderDateTime", "datetime"),
        F("IsReminderSet", "boolean"),
        readonly(ref("RecurrenceActivityId", "Task", None)),
        readonly(F("IsRecurrence", "boolean")),
        pick("TaskSubtype", ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")),
        readonly(F("CompletedDateTime", "datetime")),
    ),
)  # fmt: skip

EVENT = ObjectDef(
    "Event", "Event", "Events",
    (
        id_field(),
        ref("WhoId", ("Contact", "Lead"), "Who", child_relationship="Events", label="Name ID"),
        ref("WhatId", ("Account", "Opportunity", "Campaign", "Case", "Order", "Product2"), "What",
            child_relationship="Events", label="Related To ID"),
        readonly(F("WhoCount", "int", digits=9)),
        readonly(F("WhatCount", "int", digits=9)),
        F("Subject", "combobox", length=255),
        F("Location", "string"),
        F("IsAllDayEvent", "boolean"),
        F("ActivityDateTime", "datetime", label="Due Date Time"),
        F("ActivityDate", "date", label="Due Date Only"),
        F("DurationInMinutes", "int", digits=8),
        F("StartDateTime", "datetime"),
        F("EndDateTime", "datetime"),
        readonly(F("EndDate", "date")),
        F("Description", "textarea"),
        readonly(ref("AccountId", "Account", "Account")),
        ref("OwnerId", ("User",), "Owner", nillable=False, defaulted_on_create=True, label="Assigned To ID"),
        pick("Type", ("Call", "Email", "Meeting", "Other")),
        F("IsPrivate", "boolean"),
        pick("ShowAs", ("Busy", "OutOfOffice", "Free")),
        is_deleted(),
        readonly(F("IsChild", "boolean")),
        readonly(F("IsGroupEvent", "boolean")),
        readonly(pick("GroupEventType", ("0", "1", "2"))),
        *audit_fields(),
        readonly(F("IsArchived", "boolean")),
        readonly(ref("RecurrenceActivityId", "Event", None)),
        readonly(F("IsRecurrence", "boolean")),
        F("ReminderDateTime", "datetime"),
        F("IsReminderSet", "boolean"),
        pick("EventSubtype", ("Event",)),
    ),
)  # fmt: skip

CAMPAIGN_MEMBER = ObjectDef(
    "CampaignMember", "Campaign Member", "Campaign Members",
    (
        id_field(),
        is_deleted(),
        replace(ref("CampaignId", "Campaign", "Campaign", nillable=False, child_relationship="CampaignMembers",
                    cascade_delete=True), updateable=False),
        replace(ref("LeadId", "Lead", "Lead", child_relationship="CampaignMembers"), updateable=False),
        replace(ref("ContactId", "Contact", "Contact", child_relationship="CampaignMembers"), updateable=False),
        pick("Status", ("Planned", "Received", "Responded", "Sent")),
        readonly(F("HasResponded", "boolean", label="Responded")),
        *audit_fields(),
        readonly(F("FirstRespondedDate", "date")),
        readonly(F("Type", "string", length=40)),
        readonly(ref("LeadOrContactId", ("Contact", "Lead"), None)),
        readonly(ref("LeadOrContactOwnerId", ("User",), "LeadOrContactOwner")),
    ),
    undeletable=False,
)  # fmt: skip

CASE = ObjectDef(
    "Case", "Case", "Cases",
    (
        id_field(),
        is_deleted(),
        readonly(ref("MasterRecordId", "Case", "MasterRecord")),
        readonly(F("CaseNumber", "string", length=30, auto_number=True, name_field=True, nillable=False)),
        ref("ContactId", "Contact", "Contact", child_relationship="Cases"),
        ref("AccountId", "Account", "Account", child_relationship="Cases"),
        ref("ParentId", "Case", "Parent", child_relationship="Cases"),
        F("SuppliedName", "string", length=80, label="Web Name"),
        F("SuppliedEmail", "email", label="Web Email"),
        F("SuppliedPhone", "string", length=40, label="Web Phone"),
        F("SuppliedCompany", "string", length=80, label="Web Company"),
        pick("Type", ("Mechanical", "Electrical", "Electronic", "Structural", "Other"), label="Case Type"),
        pick("Status", CASE_STATUSES, default_value="New", defaulted_on_create=True),
        pick("Reason", ("Installation", "Equipment Complexity", "Performance", "Breakdown", "Equipment Design",
                        "Feedback", "Other"), label="Case Reason"),
        pick("Origin", ("Phone", "Email", "Web"), label="Case Origin"),
        F("Subject", "string"),
        pick("Priority", ("High", "Medium", "Low"), default_value="Medium", defaulted_on_create=True),
        F("Description", "textarea"),
        readonly(F("IsClosed", "boolean", label="Closed")),
        readonly(F("ClosedDate", "datetime")),
        F("IsEscalated", "boolean", label="Escalated"),
        ref("OwnerId", ("User",), "Owner", nillable=False, defaulted_on_create=True),
        *audit_fields(),
        F("Comments", "textarea", length=4000, label="Internal Comments"),
        *viewed_fields(),
    ),
    mergeable=True, feed_enabled=True,
)  # fmt: skip

ORDER = ObjectDef(
    "Order", "Order", "Orders",
    (
        id_field(),
        ref("OwnerId", ("User",), "Owner", nillable=False, defaulted_on_create=True),
        ref("ContractId", "Contract", "Contract"),
        ref("AccountId", "Account", "Account", child_relationship="Orders"),
        ref("Pricebook2Id", "Pricebook2", "Pricebook2", child_relationship="Orders"),
        ref("OriginalOrderId", "Order", "OriginalOrder"),
        ref("OpportunityId", "Opportunity", "Opportunity", child_relationship="Orders"),
        F("EffectiveDate", "date", nillable=False, label="Order Start Date"),
        F("EndDate", "date", label="Order End Date"),
        readonly(F("IsReductionOrder", "boolean")),
        pick("Status", ("Draft", "Activated"), nillable=False, default_value="Draft"),
        F("Description", "textarea"),
        ref("CustomerAuthorizedById", "Contact", "CustomerAuthorizedBy"),
        ref("CompanyAuthorizedById", "User", "CompanyAuthorizedBy"),
        pick("Type", ("New", "Renewal", "Upsell")),
        *address("Billing", "BillingAddress"),
        *address("Shipping", "ShippingAddress"),
        F("ActivatedDate", "datetime"),
        ref("ActivatedById", "User", "ActivatedBy"),
        readonly(pick("StatusCode", ("Draft", "Activated", "Cancelled", "Expired"), nillable=False)),
        readonly(F("OrderNumber", "string", length=30, auto_number=True, name_field=True, nillable=False)),
        readonly(F("TotalAmount", "currency", label="Order Amount")),
        *audit_fields(),
        is_deleted(),
        *viewed_fields(),
    ),
)  # fmt: skip

WIDE_FIELDS = 820
"""Custom fields of ``Wide__c``: its field list does not fit a REST query's URL (about 16 KiB)."""

WIDE_KINDS: tuple[tuple[str, str], ...] = (
    ("Sales_Region", "picklist"), ("Health_Score", "double"), ("Annual_Revenue", "currency"),
    ("Gross_Margin", "percent"), ("Renewal_Date", "date"), ("Last_Audit_Time", "datetime"),
    ("Is_Active_Customer", "boolean"), ("Account_Notes", "textarea"), ("Billing_Contact_Email", "email"),
    ("Support_Phone", "phone"), ("Customer_Portal_Url", "url"), ("External_Code", "string"),
    ("Licensed_Units", "double"), ("Service_Tier", "picklist"), ("Enabled_Features", "multipicklist"),
    ("Review_Comment", "string"),
)  # fmt: skip
"""Stem and type of the custom fields, in turn: a mix like a real org's heavily customised object."""

WIDE_REGIONS = ("AMER", "EMEA", "APAC", "LATAM")
WIDE_TIERS = ("Bronze", "Silver", "Gold", "Platinum")
WIDE_FEATURES = ("API", "SSO", "Audit", "Sandbox", "Analytics")


def _wide_field(index: int) -> FieldDef:
    stem, type_ = WIDE_KINDS[index % len(WIDE_KINDS)]
    name = f"{stem}_{index:03d}__c"
    label = f"{stem.replace('_', ' ')} {index}"
    if type_ == "picklist":
        return pick(name, WIDE_REGIONS if stem == "Sales_Region" else WIDE_TIERS, label=label)
    if type_ == "multipicklist":
        return F(name, type_, picklist=WIDE_FEATURES, length=4099, label=label)
    if type_ == "textarea":
        return F(name, type_, length=255, label=label)
    if stem == "Licensed_Units":
        return F(name, type_, precision=18, scale=0, label=label)
    if type_ in {"string"}:
        return F(name, type_, length=80, label=label)
    return F(name, type_, label=label)


WIDE = ObjectDef(
    "Wide__c", "Wide Record", "Wide Records",
    (
        id_field(),
        ref("OwnerId", ("User",), "Owner", nillable=False, defaulted_on_create=True),
        is_deleted(),
        F("Name", "string", length=80, name_field=True, label="Wide Record Name"),
        *audit_fields(),
        readonly(F("LastActivityDate", "date")),
        *viewed_fields(),
        ref("Account__c", "Account", "Account__r", child_relationship="Wide_Records__r", label="Account"),
        *(_wide_field(i) for i in range(1, WIDE_FIELDS + 1)),
    ),
)  # fmt: skip
"""A custom object with 800+ fields; generated only when a count is asked for it (``--counts Wide__c=…``)."""

OBJECTS: tuple[ObjectDef, ...] = (
    USER_ROLE, USER, ACCOUNT, CONTACT, LEAD, CAMPAIGN, OPPORTUNITY, PRODUCT2, PRICEBOOK2, PRICEBOOK_ENTRY,
    OPPORTUNITY_LINE_ITEM, OPPORTUNITY_HISTORY, TASK, EVENT, CAMPAIGN_MEMBER, CASE, ORDER, WIDE,
)  # fmt: skip
"""Every object the simulator knows, parents before children."""

STANDARD_OBJECTS: tuple[str, ...] = tuple(o.name for o in OBJECTS if not o.name.endswith("__c"))
"""The 17 standard objects every generated org has."""

OPTIONAL_OBJECTS: frozenset[str] = frozenset(o.name for o in OBJECTS if o.name.endswith("__c"))
"""Custom objects that exist in an org only when its plan gives them records."""

OBJECTS_BY_NAME: dict[str, ObjectDef] = {o.name.lower(): o for o in OBJECTS}
OBJECT_NAMES: tuple[str, ...] = tuple(o.name for o in OBJECTS)


def get_object(name: str) -> ObjectDef | None:
    """An object by API name, case-insensitively."""
    return OBJECTS_BY_NAME.get(name.lower())


# --------------------------------------------------------------------------- describe


def _urls(obj: ObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "describe": f"{base}/describe",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def _global_entry(obj: ObjectDef, version: str) -> dict[str, Any]:
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": obj.createable,
        "custom": obj.name.endswith("__c"),
        "customSetting": False,
        "deepCloneable": False,
        "deletable": obj.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": obj.feed_enabled,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": obj.createable,
        "mergeable": obj.mergeable,
        "mruEnabled": obj.createable,
        "name": obj.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": obj.searchable,
        "triggerable": obj.triggerable,
        "undeletable": obj.undeletable,
        "updateable": obj.updateable,
        "urls": _urls(obj, version),
    }


@functools.cache
def describe_global(version: str, objects: frozenset[str] | None = None) -> dict[str, Any]:
    """``GET /sobjects``: the org's objects (``objects`` names them; default: the standard ones)."""
    names = objects if objects is not None else frozenset(STANDARD_OBJECTS)
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [_global_entry(o, version) for o in sorted(OBJECTS, key=lambda o: o.name) if o.name in names],
    }


def child_relationships(obj: ObjectDef) -> list[dict[str, Any]]:
    """Relationships from other objects to this one (as describe lists them)."""
    out = []
    for child in OBJECTS:
        for f in child.fields:
            if obj.name in f.reference_to and f.child_relationship:
                out.append(
                    {
                        "cascadeDelete": f.cascade_delete,
                        "childSObject": child.name,
                        "deprecatedAndHidden": False,
                        "field": f.name,
                        "junctionIdListNames": [],
                        "junctionReferenceTo": [],
                        "relationshipName": f.child_relationship,
                        "restrictedDelete": False,
                    }
                )
    return out


@functools.cache
def describe_object(name: str, version: str) -> dict[str, Any]:
    """``GET /sobjects/{name}/describe``: fields with their metadata."""
    obj = OBJECTS_BY_NAME[name.lower()]
    body = _global_entry(obj, version)
    body.update(
        {
            "actionOverrides": [],
            "childRelationships": child_relationships(obj),
            "compactLayoutable": obj.createable,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [f.describe() for f in obj.fields],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": True,
                    "developerName": "Master",
                    "master": True,
                    "name": "Master",
                    "recordTypeId": "012000000000000AAA",
                    "urls": {"layout": f"{_urls(obj, version)['layouts']}/012000000000000AAA"},
                }
            ],
            "searchLayoutable": obj.searchable,
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [{"label": "All", "name": "everything"}],
        }
    )
    return dict(sorted(body.items()))
