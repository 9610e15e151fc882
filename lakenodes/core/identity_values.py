"""Which identity values (``unique_identifier`` and other identity dimensions) can be stored.

The first identity dimension partitions a table, so its values also become Hive-style folder
names, ``<column>=<percent-encoded value>``. Delta readers take partition values from the log,
but folder-name readers (polars/pyarrow/dask/DuckDB hive partitioning, Spark) decode the folder
name, so a value is refused when:

- a folder-name reader reads it back as null: ``__HIVE_DEFAULT_PARTITION__`` (polars — even
  ``pl.read_delta`` —, pyarrow datasets, dask, DuckDB and Spark) and ``null`` in any letter case
  (DuckDB ``hive_partitioning``, whatever ``hive_types`` says);
- its folder name would exceed 255 bytes, the file-name limit of local filesystems (the write
  fails with "File name too long"): for ``unique_identifier`` that leaves 237 bytes for the
  percent-encoded value, 237 ASCII letters or 26 CJK characters (9 bytes each).

Every other printable value round-trips: delta-rs percent-encodes each UTF-8 byte except
``A-Z a-z 0-9 - . _ ~`` (exactly ``urllib.parse.quote(value, safe="")``), so ``/``, ``=``, ``%``,
spaces and unicode are safe in folder names.
"""

from __future__ import annotations

import functools
from urllib.parse import quote

MAX_IDENTITY_LENGTH = 255
MAX_FOLDER_NAME_BYTES = 255
HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_SHOWN_CHARACTERS = 40


def describe_value(value: str) -> str:
    """``repr`` of a value for error messages, shortened to its first 40 characters."""
    if len(value) <= _SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value)} characters)"


def partition_folder_name(column: str, value: str) -> str:
    """The folder delta-rs writes rows of partition ``column == value`` into (checked by writing).

    Example:
        >>> partition_folder_name("unique_identifier", "BRK/B é")
        'unique_identifier=BRK%2FB%20%C3%A9'
    """
    return f"{column}={quote(value, safe='')}"


@functools.lru_cache(maxsize=1 << 16)  # a daily run checks the same asset ids every time
def identity_value_problem(value: str) -> str | None:
    """Why an identity value (e.g. a unique_identifier) cannot be stored, or None when it can."""
    if value == "" or not value.strip():
        return "identity values must not be empty or blank"
    if len(value) > MAX_IDENTITY_LENGTH:
        return f"{len(value)} characters; the limit is {MAX_IDENTITY_LENGTH}"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "control characters are not allowed"
    if value in (".", "..") or any(part in (".", "..") for part in value.split("/")):
        return "'.' and '..' path segments are not allowed"
    if value.startswith("/") or value.startswith("\\") or value != value.strip():
        return "leading '/' or surrounding whitespace is not allowed"
    if value == HIVE_DEFAULT_PARTITION or (value.isascii() and value.lower() == "null"):
        return "reserved: folder-name readers (polars, pyarrow, dask, DuckDB, Spark) read it back as null"
    return None


@functools.lru_cache(maxsize=1 << 16)
def partition_value_problem(column: str, value: str) -> str | None:
    """Why ``value`` cannot be a value of partition ``column``, or None when it can.

    Checks the length of the partition folder name (the real limit of a partition value: 255 bytes
    of ``<column>=<percent-encoded value>``, stricter than the 255 characters of any identity
    value), then :func:`identity_value_problem`.

    Example:
        >>> partition_value_problem("unique_identifier", "日" * 26) is None
        True
        >>> problem = partition_value_problem("unique_identifier", "日" * 27)
        >>> "would be 261 bytes; the limit is 255 bytes, which leaves 237 bytes" in problem
        True
        >>> "this one percent-encodes to 243 bytes" in problem
        True
    """
    folder = partition_folder_name(column, value)
    size = len(folder.encode())
    if size > MAX_FOLDER_NAME_BYTES:
        room = MAX_FOLDER_NAME_BYTES - len(column) - 1
        return (
            f"its partition folder name '{folder[:len(column) + 31]}...' would be {size} bytes; the limit is "
            f"{MAX_FOLDER_NAME_BYTES} bytes, which leaves {room} bytes for a {column} value, and this one "
            f"percent-encodes to {size - len(column) - 1} bytes (A-Z a-z 0-9 - . _ ~ take 1 byte each, any "
            "other character 3 per UTF-8 byte: 6 for 'é', 9 for '日')"
        )
    return identity_value_problem(value)
