"""The one SQL string-literal quoting helper (search filters, index deletes, test and doc snippets).

Example:
    >>> sql_string("o'hare")
    "'o''hare'"
"""

from __future__ import annotations


def sql_string(value: str) -> str:
    """``value`` as a single-quoted SQL string literal (embedded quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"
