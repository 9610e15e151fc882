"""A Parquet file a table (or the catalog) references that is gone or cut short, found in an error's text.

Deleting or truncating a data file outside ``vacuum`` leaves a table whose log still lists it: runs go
on (appends do not read it), but every read of it fails, with texts that name the file in different
ways or not at all:

- pyarrow: ``Could not open Parquet input source '<file>': Parquet magic bytes not found in footer``,
  ``[Errno 2] Failed to open local file '<file>'``, S3 ``Path does not exist '<bucket/key>'``;
- DataFusion (``run-query``): ``Failed to fetch metadata for file <file>: Object Store error:
  Generic LocalFileSystem error: Requested range was invalid`` or ``Object at location <file> not
  found``;
- pyarrow reading a file from memory (the catalog's small files): no file at all.

``unreadable_file`` says which file and whether it is missing; ``unreadable_reason`` words it with what to do.

Example:
    >>> unreadable_file("Could not open Parquet input source '/l/t/part-0.parquet': Parquet magic bytes not found")
    ('/l/t/part-0.parquet', False)
    >>> unreadable_file("Object at location /l/t/part-0.parquet not found: No such file or directory (os error 2)")
    ('/l/t/part-0.parquet', True)
    >>> unreadable_file("Schema error: No field named x") is None
    True
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from .._internal.deferred import pa
from ..errors import UnreadableFileError

__all__ = ["is_missing", "missing_catalog_file", "naming_unreadable", "unreadable_file", "unreadable_reason",
           "vanished_log_file_reason"]

# a file that is not (or no longer entirely) Parquet: empty, cut short, overwritten
_CUT_SHORT = re.compile(r"parquet magic bytes not found|parquet file size is 0 bytes|couldn't deserialize thrift"
                        r"|requested range was invalid|unexpected end of (?:stream|file)|\bEOF: ", re.IGNORECASE)
_MISSING = re.compile(r"no such file or directory|object at location \S+ not found|path does not exist|nosuchkey"
                      r"|no_such_key|\[errno 2\]", re.IGNORECASE)
_PARQUET_FILE = re.compile(r"""((?:[a-z][a-z0-9+.-]*://)?[^\s'"()]+\.parquet)\b""", re.IGNORECASE)


def unreadable_file(text: str) -> tuple[str, bool] | None:
    """The Parquet file ``text`` says is missing or unreadable, and whether it is missing; None when
    the text names no Parquet file or tells of another problem."""
    named = _PARQUET_FILE.search(text)
    if named is None:
        return None
    if _CUT_SHORT.search(text):
        return named.group(1), False
    if _MISSING.search(text):
        return named.group(1), True
    return None


def unreadable_reason(file: str, missing: bool) -> str:
    """What is wrong with ``file`` and what to do, on one line.

    Example:
        >>> unreadable_reason("/l/t/part-0.parquet", True)  # doctest: +ELLIPSIS
        'file /l/t/part-0.parquet is missing from storage: it was deleted outside lakenodes ...'
    """
    what = ("is missing from storage: it was deleted outside lakenodes" if missing
            else "is unreadable (cut short or not Parquet): it was changed outside lakenodes")
    return (f"file {file} {what} (vacuum never deletes a file the current version uses); restore it from a backup, "
            f"or read the table as_of a version from before the file was added")


def vanished_log_file_reason(file: str, missing: bool) -> str:
    """What went wrong with ``file`` of a Delta log (a checkpoint) that a read listed and then could
    not read, while the log, looked at again, is whole: the data file's advice does not apply.

    Example:
        >>> vanished_log_file_reason("/l/t/_delta_log/00000000000000000009.checkpoint.parquet", True)  # doctest: +ELLIPSIS
        'Delta log file /l/t/_delta_log/00000000000000000009.checkpoint.parquet was listed, then missing when read: ...'
    """
    what = "missing" if missing else "unreadable"
    return (f"Delta log file {file} was listed, then {what} when read: a log clean-up (by this process or another) "
            f"trims entries once a newer checkpoint holds them, and the log reads whole now; read the table again")


@contextlib.contextmanager
def naming_unreadable(file: str) -> Iterator[None]:
    """Raise pyarrow's "not Parquet" error of the body (which names no file when it parses bytes
    read beforehand) as an ``UnreadableFileError`` naming ``file``."""
    try:
        yield
    except pa.ArrowInvalid as error:
        if not _CUT_SHORT.search(str(error)):
            raise
        raise UnreadableFileError(unreadable_reason(file, False), operation="read", file=file) from error


def is_missing(error: BaseException) -> bool:
    """Whether ``error`` (of opening a file) says the file does not exist (local or object store).

    Example:
        >>> is_missing(FileNotFoundError(2, "No such file")), is_missing(OSError("Path does not exist 'b/k'"))
        (True, True)
        >>> is_missing(PermissionError(13, "Permission denied"))
        False
    """
    return isinstance(error, FileNotFoundError) or bool(_MISSING.search(str(error)))


def missing_catalog_file(file: str, table: str) -> UnreadableFileError:
    """The error of a data file of the catalog table ``table`` (its URI) that its current version
    lists and storage does not have: deleted outside lakenodes."""
    reason = (f"file {file} of the catalog is missing from storage: it was deleted outside lakenodes (vacuum never "
              f"deletes a file the current version uses); restore it from a backup (until then the catalog records "
              f"it held cannot be read)")
    return UnreadableFileError(reason, path=table, operation="read", file=file, missing=True)
