"""CSV cells that a spreadsheet will not execute (OWASP "CSV injection").

Every export of DynAIRx (worklist, combinations, audit trail, workshop feedback) goes through here, so the list of
dangerous leading characters is written once: a cell starting with = + - @ tab or carriage return is prefixed with a
quote, which spreadsheets display but never evaluate.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """Any value as CSV text: None → "", datetimes to the second, formula-like text quoted."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def spreadsheet_safe_text(value: Any) -> Any:
    """Quote formula-like text cells and leave other values (numbers, dates) for the CSV writer to format."""
    return spreadsheet_safe(value) if isinstance(value, str) else value
