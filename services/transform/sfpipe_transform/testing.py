"""Helpers for tests of the Dataform project: exact comparisons of warehouse values.

A mart's expected values are written by hand as YAML (decimal strings for money, plain
integers for counts, null for NULL); these helpers compare them with what the warehouse
returns without any tolerance.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any


def same(actual: Any, expected: Any) -> bool:
    """Whether a warehouse value is exactly the expected one.

    Strings stand for decimals when the warehouse returns a number (``"912.63"`` equals
    ``Decimal("912.630000000")`` but not ``912.625``), and for ISO dates when it returns a
    date; booleans and integers must have that type, so ``1`` never passes for ``True``.
    """
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if isinstance(expected, int):
        return isinstance(actual, int) and not isinstance(actual, bool) and actual == expected
    if isinstance(expected, float):
        return isinstance(actual, float | int | Decimal) and not isinstance(actual, bool) and float(actual) == expected
    if isinstance(actual, Decimal | float) and not isinstance(actual, bool):
        return Decimal(str(actual)) == Decimal(str(expected))
    if isinstance(actual, dt.date):
        return actual.isoformat() == str(expected)
    return bool(actual == expected)


def differences(row: dict[str, Any], expected: dict[str, Any], where: str) -> list[str]:
    """Every expected column whose value differs, as readable lines."""
    out = []
    for column, value in expected.items():
        if column not in row:
            out.append(f"{where}: no column {column}")
        elif not same(row[column], value):
            out.append(f"{where}.{column}: got {row[column]!r}, expected {value!r}")
    return out
