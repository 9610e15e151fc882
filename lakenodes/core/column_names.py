"""The rules every stored column name follows: lowercase ``[a-z_][a-z0-9_]*``, at most 63
characters, not an SQL keyword nor a Delta/lakenodes internal name, no ``__`` prefix. Checked on
every frame (``frames``) and on every declared record (``config``), so a declaration no frame can
match fails when the configuration is built.

Example:
    >>> column_name_problem("close") is None, column_name_problem("Close")
    (True, "column name 'Close' must be lowercase")
"""

from __future__ import annotations

import re

MAX_COLUMN_NAME_LENGTH = 63

_COLUMN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Names that would break SQL over the table or collide with Delta/lakenodes internals.
RESERVED_COLUMN_NAMES = frozenset(
    {"select", "from", "where", "group", "order", "by", "limit", "table", "join", "union", "and", "or",
     "not", "null", "true", "false", "as", "on", "in", "is", "case", "when", "then", "else", "end",
     "having", "distinct", "with", "index", "_change_type", "_commit_version", "_commit_timestamp",
     "_file"}  # _file: the column rewrites tag each stored row with (its file)
)


# The per-identity columns lakenodes' own frames hold beside a frame's identity columns (row count,
# first and last time, stored watermark; Arrow's grouping names its aggregates ``time_index_*``):
# an identity dimension of one of these names would collide with them.
RESERVED_IDENTITY_NAMES = frozenset({"n", "lo", "hi", "watermark"})


def identity_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an identity dimension (a column of the index after ``time_index``),
    or None when it can; see ``column_name_problem`` for every column's rules.

    Example:
        >>> identity_name_problem("venue") is None, identity_name_problem("hi")[:40]
        (True, "identity dimension name 'hi' is reserved")
    """
    if name in RESERVED_IDENTITY_NAMES or name.startswith("time_index_"):
        return (f"identity dimension name {name!r} is reserved: lakenodes keeps the columns 'n', 'lo', 'hi' and "
                "'watermark' beside the identity columns (and names starting 'time_index_'); rename the dimension")
    return None


def column_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a stored column's name, or None when it can."""
    if len(name) > MAX_COLUMN_NAME_LENGTH:
        return f"column name {name[:20]!r}... is {len(name)} characters; the limit is {MAX_COLUMN_NAME_LENGTH}"
    if not _COLUMN_NAME.match(name.lower()):  # before the case: "Close Price" is more than uppercase
        return f"column name {name!r} must start with a letter or '_' and hold only a-z, 0-9 and '_'"
    if name != name.lower():
        return f"column name {name!r} must be lowercase"
    if name in RESERVED_COLUMN_NAMES or name.startswith("__"):
        return f"column name {name!r} is reserved; choose another name"
    return None
