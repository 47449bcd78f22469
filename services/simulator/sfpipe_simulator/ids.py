"""Salesforce record Ids: key prefixes, the 9-digit base-62 record number, the case-safe suffix.

A 15-character Id is ``<key prefix:3><pod:2><reserved:1><record number:9>``; the 18-character
form appends three characters that encode, for each 5-character chunk, which characters are
upper-case letters, so that the Id survives case-insensitive systems (Excel, SQL collations).
The digit alphabet is in ASCII order (0-9, A-Z, a-z), so for one object and pod the byte order
of Ids is the order of creation: keyset paging by ``Id`` then walks records oldest first, as
on a real org.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
RECORD_DIGITS = 9
MAX_RECORD_NUMBER = 62**RECORD_DIGITS - 1

_DIGITS_U8 = np.frombuffer(DIGITS.encode(), dtype=np.uint8)
_SUFFIX_U8 = np.frombuffer(SUFFIX_ALPHABET.encode(), dtype=np.uint8)
_DIGIT_VALUE = {c: i for i, c in enumerate(DIGITS)}
ID_PATTERN = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")

# key prefixes of the objects the simulator keeps, and of a few it only points at
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "OpportunityHistory": "008",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "UserRole": "00E",
    "OpportunityLineItem": "00k",
    "Product2": "01t",
    "Pricebook2": "01s",
    "PricebookEntry": "01u",
    "Campaign": "701",
    "CampaignMember": "00v",
    "Case": "500",
    "Order": "801",
    "Wide__c": "a0W",
    # referenced, not simulated
    "Organization": "00D",
    "Profile": "00e",
    "RecordType": "012",
    "Individual": "0PK",
    "Contract": "800",
    "Quote": "0Q0",
    "Group": "00G",
    # API artefacts
    "QueryLocator": "01g",
    "AsyncApexJob": "750",
}
OBJECT_BY_PREFIX: dict[str, str] = {prefix: name for name, prefix in KEY_PREFIXES.items()}


def suffix(id15: str) -> str:
    """The three case-safe characters that turn a 15-character Id into 18."""
    out = []
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        out.append(SUFFIX_ALPHABET[bits])
    return "".join(out)


def to18(value: str) -> str:
    """An Id in its 18-character form (a 15-character Id gets its suffix; 18 is normalised)."""
    if len(value) == 15:
        return value + suffix(value)
    if len(value) == 18:
        return value[:15] + suffix(value[:15])
    msg = f"not a Salesforce Id: {value!r}"
    raise ValueError(msg)


def is_valid_id(value: str) -> bool:
    """Whether a string is a well-formed 15- or 18-character Id with a correct suffix."""
    if not ID_PATTERN.match(value):
        return False
    return len(value) == 15 or suffix(value[:15]) == value[15:]


def encode_number(number: int) -> str:
    """A record number as 9 base-62 digits."""
    if not 0 <= number <= MAX_RECORD_NUMBER:
        msg = f"record number out of range: {number}"
        raise ValueError(msg)
    chars = []
    for _ in range(RECORD_DIGITS):
        number, rem = divmod(number, 62)
        chars.append(DIGITS[rem])
    return "".join(reversed(chars))


def decode_number(record_id: str) -> int:
    """The record number inside an Id (characters 7–15)."""
    value = 0
    for char in record_id[6:15]:
        value = value * 62 + _DIGIT_VALUE[char]
    return value


def make_id(prefix: str, pod: str, number: int) -> str:
    """One 18-character Id."""
    id15 = f"{prefix}{pod}0{encode_number(number)}"
    return id15 + suffix(id15)


def make_ids(prefix: str, pod: str, numbers: np.ndarray) -> pa.StringArray:
    """18-character Ids for many record numbers at once, built as one byte matrix."""
    count = len(numbers)
    matrix = np.empty((count, 18), dtype=np.uint8)
    head = np.frombuffer(f"{prefix}{pod}0".encode(), dtype=np.uint8)
    matrix[:, :6] = head
    rest = numbers.astype(np.uint64, copy=True)
    for position in range(14, 5, -1):
        matrix[:, position] = _DIGITS_U8[(rest % 62).astype(np.intp)]
        rest //= 62
    upper = (matrix[:, :15] >= ord("A")) & (matrix[:, :15] <= ord("Z"))
    weights = np.array([1, 2, 4, 8, 16], dtype=np.uint8)
    for chunk in range(3):
        bits = upper[:, chunk * 5 : chunk * 5 + 5].astype(np.uint8) @ weights
        matrix[:, 15 + chunk] = _SUFFIX_U8[bits]
    offsets = np.arange(0, 18 * (count + 1), 18, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(matrix.tobytes()))
