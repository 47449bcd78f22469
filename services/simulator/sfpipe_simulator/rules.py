"""The org's business rules: validation, defaults, derived fields, cascades — for every writer.

The REST API and the live activity both write through :func:`create`, :func:`update`,
:func:`delete` and :func:`undelete`, so a record changed either way gets the same derived
fields (stage metadata, fiscal period, totals, names, activity links), the same
OpportunityHistory rows and the same change-log entries. :func:`coerce` turns a JSON body
into typed values with Salesforce's error codes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.ids import KEY_PREFIXES, OBJECT_BY_PREFIX, is_valid_id, to18
from sfpipe_simulator.metadata import (
    FORECAST_CATEGORY_LABELS,
    ID_TYPES,
    INTEGER_TYPES,
    NUMBER_TYPES,
    STAGE_BY_NAME,
    TEXT_TYPES,
    FieldDef,
    ObjectDef,
    get_object,
)
from sfpipe_simulator.soql import SoqlError, parse_datetime_literal
from sfpipe_simulator.store import Tx, q

FORECAST_CATEGORY_BY_LABEL = {label: name for name, label in FORECAST_CATEGORY_LABELS.items()}
FORMULA_INDUSTRY = "Account_Industry__c"
"""Opportunity's formula field ``TEXT(Account.Industry)``."""
HISTORY_TRACKED = ("StageName", "Amount", "CloseDate", "Probability", "ForecastCategory")
CASCADES: dict[str, tuple[tuple[str, str], ...]] = {
    "Account": (("Contact", "AccountId"), ("Opportunity", "AccountId"), ("Case", "AccountId"),
                ("Task", "WhatId"), ("Event", "WhatId")),
    "Opportunity": (("OpportunityLineItem", "OpportunityId"), ("OpportunityHistory", "OpportunityId"),
                    ("Task", "WhatId"), ("Event", "WhatId")),
    "Contact": (("CampaignMember", "ContactId"), ("Task", "WhoId"), ("Event", "WhoId")),
    "Lead": (("CampaignMember", "LeadId"), ("Task", "WhoId"), ("Event", "WhoId")),
    "Campaign": (("CampaignMember", "CampaignId"),),
    "Case": (("Task", "WhatId"), ("Event", "WhatId")),
}  # fmt: skip
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


# --------------------------------------------------------------------------- JSON → values


def _json_error(f: FieldDef, value: Any) -> ApiError:
    kind = type(value).__name__
    return ApiError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {_type_word(f)} from {kind} value {value!r} or request may be missing "
        f"a required field",
    )


def _type_word(f: FieldDef) -> str:
    if f.type in TEXT_TYPES or f.type in ID_TYPES:
        return "string"
    return {"int": "int", "long": "long", "datetime": "datetime", "date": "date"}.get(f.type, f.type)


def coerce_value(obj: ObjectDef, f: FieldDef, value: Any) -> Any:
    """One JSON value → the stored Python value, or a Salesforce-shaped error."""
    if value is None:
        return None
    if f.type in ID_TYPES:
        if not isinstance(value, str):
            raise _json_error(f, value)
        if value == "":
            return None
        if not is_valid_id(value) and not (len(value) == 15 and value.isalnum()):
            raise ApiError(400, "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name])
        full = to18(value)
        allowed = {KEY_PREFIXES[t] for t in f.reference_to if t in KEY_PREFIXES}
        if allowed and full[:3] not in allowed:
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", f"{f.label}: id value of incorrect type: {value}",
                           [f.name])  # fmt: skip
        return full
    if f.type in TEXT_TYPES:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _json_error(f, value)
        text = value if isinstance(value, str) else str(value)
        if text == "":
            return None
        if f.length and len(text) > f.length:
            raise ApiError(400, "STRING_TOO_LONG", f"{f.label}: data value too large: {text[:40]!r} "
                           f"(max length={f.length})", [f.name])  # fmt: skip
        if f.type == "picklist" and f.picklist and text not in f.picklist:
            raise ApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"{f.label}: bad value for restricted picklist field: {text}", [f.name])  # fmt: skip
        if f.type == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
            raise ApiError(400, "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", [f.name])
        return text
    if f.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise _json_error(f, value)
    if f.type in INTEGER_TYPES:
        if isinstance(value, bool):
            raise _json_error(f, value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value.strip()):
            return int(value)
        raise _json_error(f, value)
    if f.type in NUMBER_TYPES:
        if isinstance(value, bool):
            raise _json_error(f, value)
        numeric_text = isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None
        if isinstance(value, int | float) or numeric_text:
            number = float(value)
        else:
            raise _json_error(f, value)
        if number != number or abs(number) > 1e18:
            raise ApiError(400, "NUMBER_OUTSIDE_VALID_RANGE", f"{f.label}: value outside of valid range", [f.name])
        return number
    if f.type == "date":
        if not isinstance(value, str) or not _DATE.match(value):
            raise _json_error(f, value)
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise _json_error(f, value) from None
    if f.type == "datetime":
        if not isinstance(value, str):
            raise _json_error(f, value)
        try:
            return parse_datetime_literal(value.strip()).replace(tzinfo=None)
        except SoqlError:
            if _DATE.fullmatch(value.strip()):
                try:
                    return datetime.fromisoformat(value.strip())
                except ValueError:
                    pass
            raise _json_error(f, value) from None
    raise _json_error(f, value)


def coerce(obj: ObjectDef, payload: Any, *, creating: bool) -> dict[str, Any]:
    """A JSON record body → {field name: value}, refusing unknown and read-only fields."""
    if not isinstance(payload, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of the sObject from a non-object "
                       "value: the body must be a JSON object")  # fmt: skip
    out: dict[str, Any] = {}
    blocked: list[str] = []
    for key, value in payload.items():
        if key == "attributes":
            if not isinstance(value, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "attributes must be an object")
            continue
        f = obj.field(key)
        if f is None:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}")
        if (creating and not f.createable) or (not creating and not f.updateable):
            blocked.append(f.name)
            continue
        out[f.name] = coerce_value(obj, f, value)
    if blocked:
        raise ApiError(
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(blocked)}. Please check the security settings of this "
            "field and verify that it is read/write for your profile or permission set.",
            blocked,
        )
    return out


# --------------------------------------------------------------------------- helpers


def _one(tx: Tx, obj_name: str, record_id: str | None, fields: str) -> tuple[Any, ...] | None:
    if record_id is None:
        return None
    obj = get_object(obj_name)
    assert obj is not None
    rows = tx.select(f"SELECT {fields} FROM {q(obj.table)} WHERE Id = ?", [record_id])
    return rows[0] if rows else None


def _check_references(tx: Tx, obj: ObjectDef, values: dict[str, Any]) -> None:
    for name, value in values.items():
        f = obj.field(name)
        if f is None or f.type != "reference" or value is None:
            continue
        target = OBJECT_BY_PREFIX.get(value[:3])
        target_obj = get_object(target) if target else None
        if target_obj is None:
            continue
        deleted = "IsDeleted" if target_obj.has_is_deleted else "FALSE"
        row = _one(tx, target_obj.name, value, deleted)
        if row is None:
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {f.label}", [f.name])
        if row[0]:
            raise ApiError(400, "ENTITY_IS_DELETED", f"entity is deleted: {f.label}", [f.name])


def _required(obj: ObjectDef, record: dict[str, Any]) -> None:
    missing = [
        f.name
        for f in obj.stored_fields
        if not f.nillable and f.createable and f.type != "boolean" and record.get(f.name) is None
    ]
    if missing:
        raise ApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)


def _full_name(first: Any, last: Any) -> str | None:
    parts = [p for p in (first, last) if p]
    return " ".join(parts) if parts else None


def _fiscal(close: date | None) -> dict[str, Any]:
    if close is None:
        return {"FiscalYear": None, "FiscalQuarter": None, "Fiscal": None}
    quarter = (close.month - 1) // 3 + 1
    return {"FiscalYear": close.year, "FiscalQuarter": quarter, "Fiscal": f"{close.year} {quarter}"}


def _activity_account(tx: Tx, what_id: str | None, who_id: str | None) -> str | None:
    if what_id:
        kind = OBJECT_BY_PREFIX.get(what_id[:3])
        if kind == "Account":
            return what_id
        if kind in {"Opportunity", "Case", "Order"}:
            row = _one(tx, kind, what_id, "AccountId")
            if row and row[0]:
                return str(row[0])
    if who_id and OBJECT_BY_PREFIX.get(who_id[:3]) == "Contact":
        row = _one(tx, "Contact", who_id, "AccountId")
        if row and row[0]:
            return str(row[0])
    return None


# --------------------------------------------------------------------------- derivations


def _derive(tx: Tx, obj: ObjectDef, record: dict[str, Any], given: set[str], old: dict[str, Any] | None) -> None:
    """Fill derived fields of ``record`` (the full new state) for the fields that changed."""
    creating = old is None
    changed = given if not creating else set(record)
    name = obj.name
    if name in {"Contact", "Lead", "User"} and ({"FirstName", "LastName"} & changed or creating):
        record["Name"] = _full_name(record.get("FirstName"), record.get("LastName"))
    if name == "Opportunity":
        _derive_opportunity(tx, record, given, old)
    elif name == "Case":
        closed = record.get("Status") == "Closed"
        record["IsClosed"] = closed
        if closed and not (old or {}).get("IsClosed"):
            record["ClosedDate"] = tx.stamp
        elif not closed:
            record["ClosedDate"] = None
    elif name == "Task":
        closed = record.get("Status") == "Completed"
        record["IsClosed"] = closed
        if closed and not (old or {}).get("IsClosed"):
            record["CompletedDateTime"] = tx.stamp
        elif not closed:
            record["CompletedDateTime"] = None
        record["IsHighPriority"] = record.get("Priority") == "High"
        _derive_activity_links(tx, record)
    elif name == "Event":
        _derive_event(record, given, creating)
        _derive_activity_links(tx, record)
    elif name == "CampaignMember":
        responded = record.get("Status") == "Responded"
        record["HasResponded"] = responded
        if responded and not (old or {}).get("HasResponded"):
            record["FirstRespondedDate"] = tx.stamp.date()
        if creating:
            contact, lead = record.get("ContactId"), record.get("LeadId")
            member = contact or lead
            record["Type"] = "Contact" if contact else "Lead"
            record["LeadOrContactId"] = member
            row = _one(tx, "Contact" if contact else "Lead", member, "OwnerId")
            record["LeadOrContactOwnerId"] = row[0] if row else None
    elif name == "Order":
        record["StatusCode"] = record.get("Status")
        if record.get("Status") == "Activated" and (old or {}).get("Status") != "Activated":
            record["ActivatedDate"] = tx.stamp
            record["ActivatedById"] = tx.user_id
    elif name == "OpportunityLineItem":
        _derive_line_item(tx, record, given, creating)
    elif name == "PricebookEntry" and creating:
        row = _one(tx, "Product2", record.get("Product2Id"), "Name, ProductCode")
        if row:
            record["Name"], record["ProductCode"] = row


def _derive_activity_links(tx: Tx, record: dict[str, Any]) -> None:
    record["WhoCount"] = 1 if record.get("WhoId") else 0
    record["WhatCount"] = 1 if record.get("WhatId") else 0
    record["AccountId"] = _activity_account(tx, record.get("WhatId"), record.get("WhoId"))


def _derive_event(record: dict[str, Any], given: set[str], creating: bool) -> None:
    start = record.get("StartDateTime") or record.get("ActivityDateTime")
    if start is None:
        raise ApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [StartDateTime]",
                       ["StartDateTime"])  # fmt: skip
    record["StartDateTime"] = start
    record["ActivityDateTime"] = start
    record["ActivityDate"] = start.date()
    if "DurationInMinutes" in given or (creating and record.get("DurationInMinutes") is not None):
        minutes = record.get("DurationInMinutes")
        if minutes is None or minutes < 0:
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "DurationInMinutes must be zero or more",
                           ["DurationInMinutes"])  # fmt: skip
        record["EndDateTime"] = start + timedelta(minutes=int(minutes))
    elif record.get("EndDateTime") is not None:
        end = record["EndDateTime"]
        if end < start:
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "EndDateTime must not be before StartDateTime",
                           ["EndDateTime"])  # fmt: skip
        record["DurationInMinutes"] = int((end - start).total_seconds() // 60)
    else:
        raise ApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [DurationInMinutes]",
                       ["DurationInMinutes"])  # fmt: skip
    end = record["EndDateTime"]
    record["EndDate"] = (end - timedelta(microseconds=1)).date() if end > start else start.date()


def _derive_opportunity(tx: Tx, record: dict[str, Any], given: set[str], old: dict[str, Any] | None) -> None:
    stage = STAGE_BY_NAME.get(str(record.get("StageName") or "").lower())
    if stage is None:
        raise ApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       f"Stage: bad value for restricted picklist field: {record.get('StageName')}", ["StageName"])
    stage_changed = old is None or ("StageName" in given and old.get("StageName") != record.get("StageName"))
    if stage_changed:
        record["IsClosed"] = stage.is_closed
        record["IsWon"] = stage.is_won
        if "Probability" not in given or record.get("Probability") is None:
            record["Probability"] = float(stage.probability)
        if "ForecastCategoryName" not in given or record.get("ForecastCategoryName") is None:
            record["ForecastCategoryName"] = stage.forecast_category_name
        if old is not None:
            record["LastStageChangeDate"] = tx.stamp
    label = record.get("ForecastCategoryName")
    record["ForecastCategory"] = FORECAST_CATEGORY_BY_LABEL.get(str(label), stage.forecast_category)
    amount = record.get("Amount")
    probability = record.get("Probability")
    record["ExpectedRevenue"] = None if amount is None or probability is None else round(amount * probability / 100, 2)
    record.update(_fiscal(record.get("CloseDate")))
    if old is None or "AccountId" in given:
        row = _one(tx, "Account", record.get("AccountId"), "Industry")
        record[FORMULA_INDUSTRY] = row[0] if row else None
    if old is not None and "Amount" in given and old.get("HasOpportunityLineItem") and not record.get(
        "_from_line_items"
    ):
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "Amount: You can't edit the amount of an opportunity "
                       "that has products.", ["Amount"])  # fmt: skip
    record.pop("_from_line_items", None)


def _derive_line_item(tx: Tx, record: dict[str, Any], given: set[str], creating: bool) -> None:
    if creating:
        if record.get("PricebookEntryId") is None:
            raise ApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [PricebookEntryId]",
                           ["PricebookEntryId"])  # fmt: skip
        entry = _one(tx, "PricebookEntry", record["PricebookEntryId"], "Product2Id, Pricebook2Id, UnitPrice, Name, "
                     "ProductCode")  # fmt: skip
        if entry is None:
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id: PricebookEntryId",
                           ["PricebookEntryId"])  # fmt: skip
        product, pricebook, list_price, product_name, code = entry
        opp = _one(tx, "Opportunity", record.get("OpportunityId"), "Pricebook2Id, Name")
        if opp is None:
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id: OpportunityId",
                           ["OpportunityId"])  # fmt: skip
        if opp[0] is not None and opp[0] != pricebook:
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: PricebookEntryId "
                           "(pricebook entry is in a different pricebook than the one assigned to the opportunity)",
                           ["PricebookEntryId"])  # fmt: skip
        record["Product2Id"] = product
        record["ListPrice"] = list_price
        record["ProductCode"] = code
        record["Name"] = f"{opp[1]} {product_name}"[:376]
        record["_pricebook"] = pricebook
    quantity = record.get("Quantity")
    if quantity is None or quantity <= 0:
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "Quantity: must be greater than zero", ["Quantity"])
    if "UnitPrice" in given and "TotalPrice" in given and record.get("TotalPrice") is not None:
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: TotalPrice, UnitPrice "
                       "(you can't set both)", ["TotalPrice", "UnitPrice"])  # fmt: skip
    if "TotalPrice" in given and record.get("TotalPrice") is not None:
        record["UnitPrice"] = round(record["TotalPrice"] / quantity, 2)
    elif record.get("UnitPrice") is None:
        record["UnitPrice"] = record.get("ListPrice")
    record["TotalPrice"] = round(quantity * record["UnitPrice"], 2)
    record["Subtotal"] = record["TotalPrice"]


# --------------------------------------------------------------------------- operations


def _defaults(tx: Tx, obj: ObjectDef, record: dict[str, Any]) -> None:
    for f in obj.stored_fields:
        if f.name in record and record[f.name] is not None:
            continue
        if f.type == "boolean":
            record[f.name] = bool(f.default_value)
        elif f.default_value is not None and f.type == "picklist":
            record[f.name] = f.default_value
    if obj.field("OwnerId") is not None and record.get("OwnerId") is None:
        record["OwnerId"] = tx.user_id
    if obj.name == "Lead":
        record["IsUnreadByOwner"] = True
    if obj.name == "Order":
        record.setdefault("TotalAmount", 0.0)
    if obj.name == "Opportunity":
        record.setdefault("PushCount", 0)
    if obj.name == "Event":
        record.setdefault("GroupEventType", "0")
        record.setdefault("EventSubtype", "Event")
    if obj.name == "CampaignMember":
        record["Status"] = record.get("Status") or "Sent"
        if not record.get("ContactId") and not record.get("LeadId"):
            raise ApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [ContactId, LeadId]",
                           ["ContactId", "LeadId"])  # fmt: skip


def create(tx: Tx, obj: ObjectDef, values: dict[str, Any], *, trusted: bool = False) -> str:
    """Insert a record with its defaults and derived fields; returns the new Id."""
    if not obj.createable and not trusted:
        raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be inserted: {obj.label}")
    if not trusted:
        _check_references(tx, obj, values)
    record = dict(values)
    _defaults(tx, obj, record)
    new_id, number = tx.new_id(obj)
    record["Id"] = new_id
    if obj.name == "Case":
        record["CaseNumber"] = f"{number:08d}"
    if obj.name == "Order":
        record["OrderNumber"] = f"{number:08d}"
    _derive(tx, obj, record, set(values), None)
    pricebook = record.pop("_pricebook", None)
    _required(obj, record)
    tx.insert(obj, record)
    if obj.name == "Opportunity":
        _history(tx, record, None)
    if obj.name == "OpportunityLineItem":
        _rollup_opportunity(tx, record["OpportunityId"], pricebook)
    return new_id


def update(tx: Tx, obj: ObjectDef, record_id: str, values: dict[str, Any], *, trusted: bool = False) -> list[str]:
    """Change a record; returns the fields that changed."""
    old = tx.fetch(obj, record_id)
    if old is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if old.get("IsDeleted"):
        raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
    if not trusted:
        _check_references(tx, obj, values)
    record = {**old, **values}
    _derive(tx, obj, record, set(values), old)
    record.pop("_pricebook", None)
    missing = [k for k, v in values.items() if v is None and (f := obj.field(k)) is not None and not f.nillable]
    if missing:
        raise ApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
    changes = {k: v for k, v in record.items() if old.get(k) != v}
    changed = tx.update(obj, record_id, changes, current=old)
    if obj.name == "Account" and "Industry" in changed:
        _recalculate_formulas(tx, record_id, record.get("Industry"))
    if obj.name == "Opportunity" and set(changed) & set(HISTORY_TRACKED):
        _history(tx, record, old)
    if obj.name == "OpportunityLineItem" and {"Quantity", "UnitPrice", "TotalPrice"} & set(changed):
        _rollup_opportunity(tx, record["OpportunityId"], None)
    return changed


def _recalculate_formulas(tx: Tx, account_id: str, industry: Any) -> None:
    """Formula fields that read the account follow it at once, and nothing records that they moved.

    Salesforce computes formula fields when they are read: a child's SystemModstamp does not
    change, no change event is published, and an incremental sync on SystemModstamp never sees
    the new value. The store keeps the computed value so that queries read it as Salesforce does.
    """
    tx.cursor.execute(f'UPDATE "Opportunity" SET {q(FORMULA_INDUSTRY)} = ? WHERE AccountId = ?', [industry, account_id])


def delete(tx: Tx, obj: ObjectDef, record_id: str) -> None:
    """Soft-delete a record and, as Salesforce does, the records that cascade from it."""
    if not obj.deletable:
        raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", "entity type cannot be deleted")
    old = tx.fetch(obj, record_id)
    if old is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if old.get("IsDeleted"):
        raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
    tx.set_deleted(obj, record_id, True)
    _cascade(tx, obj.name, [record_id], deleted=True, stamp=None)
    if obj.name == "OpportunityLineItem":
        _rollup_opportunity(tx, old["OpportunityId"], None)


def undelete(tx: Tx, obj: ObjectDef, record_id: str) -> None:
    """Restore a soft-deleted record and the children that were deleted with it."""
    old = tx.fetch(obj, record_id)
    if old is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if not old.get("IsDeleted"):
        raise ApiError(400, "UNDELETE_FAILED", "Entity is not in the recycle bin")
    stamp = old["SystemModstamp"]
    tx.set_deleted(obj, record_id, False)
    _cascade(tx, obj.name, [record_id], deleted=False, stamp=stamp)
    if obj.name == "OpportunityLineItem":
        _rollup_opportunity(tx, old["OpportunityId"], None)


def _cascade(tx: Tx, parent: str, ids: list[str], *, deleted: bool, stamp: datetime | None) -> None:
    for child_name, column in CASCADES.get(parent, ()):
        child = get_object(child_name)
        assert child is not None
        marks = ", ".join("?" for _ in ids)
        sql = f"SELECT Id FROM {q(child.table)} WHERE {q(column)} IN ({marks}) AND IsDeleted = ?"
        params: list[Any] = [*ids, not deleted]
        if stamp is not None:
            sql += " AND SystemModstamp = ?"
            params.append(stamp)
        children = [r[0] for r in tx.select(sql, params)]
        for child_id in children:
            tx.set_deleted(child, child_id, deleted)
        if children:
            _cascade(tx, child_name, children, deleted=deleted, stamp=stamp)


def _history(tx: Tx, record: dict[str, Any], old: dict[str, Any] | None) -> None:
    history = get_object("OpportunityHistory")
    assert history is not None
    new_id, _ = tx.new_id(history)
    tx.insert(
        history,
        {
            "Id": new_id,
            "OpportunityId": record["Id"],
            "CreatedById": tx.user_id,
            "CreatedDate": tx.stamp,
            "StageName": record.get("StageName"),
            "Amount": record.get("Amount"),
            "ExpectedRevenue": record.get("ExpectedRevenue"),
            "CloseDate": record.get("CloseDate"),
            "Probability": record.get("Probability"),
            "ForecastCategory": record.get("ForecastCategory"),
            "IsDeleted": False,
            "PrevAmount": old.get("Amount") if old else None,
            "PrevCloseDate": old.get("CloseDate") if old else None,
        },
    )


def _rollup_opportunity(tx: Tx, opportunity_id: str, pricebook: str | None) -> None:
    rows = tx.select(
        "SELECT count(*), sum(TotalPrice), sum(Quantity) FROM OpportunityLineItem "
        "WHERE OpportunityId = ? AND NOT IsDeleted",
        [opportunity_id],
    )
    count, total, quantity = rows[0]
    opp = get_object("Opportunity")
    assert opp is not None
    values: dict[str, Any] = {
        "Amount": round(total or 0.0, 2),
        "TotalOpportunityQuantity": quantity if count else None,
        "HasOpportunityLineItem": bool(count),
        "_from_line_items": True,
    }
    if pricebook is not None:
        values["Pricebook2Id"] = pricebook
    current = tx.fetch(opp, opportunity_id)
    if current is None or current.get("IsDeleted"):
        return
    update(tx, opp, opportunity_id, values, trusted=True)


def convert_lead(tx: Tx, lead_id: str, *, create_opportunity: bool, today: date) -> dict[str, str | None]:
    """Convert a lead: a new account, contact and (maybe) opportunity, and the lead marked converted."""
    lead_obj, account_obj = get_object("Lead"), get_object("Account")
    contact_obj, opp_obj = get_object("Contact"), get_object("Opportunity")
    assert lead_obj and account_obj and contact_obj and opp_obj
    lead = tx.fetch(lead_obj, lead_id)
    if lead is None or lead.get("IsDeleted") or lead.get("IsConverted"):
        raise ApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
    owner = lead.get("OwnerId") or tx.user_id
    account_id = create(tx, account_obj, {"Name": lead["Company"], "Industry": lead.get("Industry"),
                                          "AccountSource": lead.get("LeadSource"), "OwnerId": owner,
                                          "NumberOfEmployees": lead.get("NumberOfEmployees"),
                                          "AnnualRevenue": lead.get("AnnualRevenue")}, trusted=True)  # fmt: skip
    contact_id = create(tx, contact_obj, {"AccountId": account_id, "FirstName": lead.get("FirstName"),
                                          "LastName": lead["LastName"], "Email": lead.get("Email"),
                                          "Phone": lead.get("Phone"), "Title": lead.get("Title"),
                                          "LeadSource": lead.get("LeadSource"), "OwnerId": owner},
                        trusted=True)  # fmt: skip
    opportunity_id = None
    if create_opportunity:
        opportunity_id = create(tx, opp_obj, {"AccountId": account_id, "Name": f"{lead['Company']}-"[:120],
                                              "StageName": "Qualification", "CloseDate": today + timedelta(days=30),
                                              "LeadSource": lead.get("LeadSource"), "OwnerId": owner,
                                              "ContactId": contact_id}, trusted=True)  # fmt: skip
    tx.update(lead_obj, lead_id, {"IsConverted": True, "Status": "Closed - Converted", "ConvertedDate": today,
                                  "ConvertedAccountId": account_id, "ConvertedContactId": contact_id,
                                  "ConvertedOpportunityId": opportunity_id, "IsUnreadByOwner": False})  # fmt: skip
    return {"account": account_id, "contact": contact_id, "opportunity": opportunity_id}


def now_utc() -> datetime:
    """Now, aware."""
    return datetime.now(UTC)
