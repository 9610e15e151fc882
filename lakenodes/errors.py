"""Exceptions raised by lakenodes.

User mistakes (bad frames, bad configuration, unknown identifiers) derive from
``LakenodesUserError`` so the CLI can print them on one line without a traceback. Storage
faults a user can act on (a full disk, a read-only lake, a too-long path, a corrupt Delta log)
derive from ``StorageError``: one line naming the cause and the path.
"""

from __future__ import annotations

import errno as errno_codes
import functools
import os
import re
import traceback
from collections.abc import Iterable, Iterator
from typing import Any

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# Rust backtrace lines that delta-rs appends to its messages when RUST_BACKTRACE is set:
# "   0: <unknown>", "  12: start_thread", "             at ./nptl/pthread_create.c:442:8", ...
_BACKTRACE_LINE = re.compile(r"^\s+(\d+: .*|at \S.*:\d+(:\d+)?)$|^stack backtrace:$|^note: Some details are omitted.*$")


# S3 answers that quote credentials: an ExpiredToken or InvalidToken body holds the session token as
# <Token-0>, a SignatureDoesNotMatch body the request's x-amz-security-token header (delta-rs quotes bodies)
_QUOTED_CREDENTIALS = re.compile(r"(<(Token-\d+)>).*?(</\2>)|(x-amz-security-token[:=]\s*)[^\s&<]+",
                                 re.IGNORECASE | re.DOTALL)
_SHORTEST_SECRET = 8  # shorter values ("x", "secret") are test stand-ins, and words messages use
_secrets: set[str] = set()


def remember_secrets(values: Iterable[str]) -> None:
    """Hide these values (a lake's secret key and session token) from every message made from now on."""
    _secrets.update(value for value in values if len(value) >= _SHORTEST_SECRET)


def hide_secrets(text: str) -> str:
    """``text`` with the credentials S3 answers quote, and every remembered secret, shown as ``***``.

    Example:
        >>> hide_secrets("<Code>ExpiredToken</Code><Token-0>FwoGZXIvYXdzEJr</Token-0>")
        '<Code>ExpiredToken</Code><Token-0>***</Token-0>'
    """
    text = _QUOTED_CREDENTIALS.sub(lambda found: f"{found[1]}***{found[3]}" if found[1] else f"{found[4]}***", text)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def hide_secrets_in(error: BaseException) -> str:
    r"""Hide secrets from the messages of ``error`` and the errors it was raised from, so that no
    traceback printed later (by Python, a scheduler, ``--verbose``) shows them; returns ``error``'s
    message on one line (``one_line``, which hides them from what ``str`` makes of the args too),
    for a message of lakenodes' own about it.

    Example:
        >>> error = OSError("403 Forbidden\n<Token-0>FwoGZXIvYXdzEJr</Token-0>")
        >>> hide_secrets_in(error), error.args
        ('403 Forbidden <Token-0>***</Token-0>', ('403 Forbidden\n<Token-0>***</Token-0>',))
    """
    for link in error_chain(error):
        hidden = tuple(hide_secrets(arg) if isinstance(arg, str) else arg for arg in link.args)
        if hidden != link.args:
            link.args = hidden
    return one_line(error)


def plain_message(error: BaseException) -> str:
    """An exception's message without terminal colour codes (delta-rs and datafusion add them) and
    without secrets (``hide_secrets``)."""
    return hide_secrets(_ANSI_ESCAPE.sub("", str(error)))


def one_line(message: object) -> str:
    r"""``message`` squeezed onto one line (pydantic and delta-rs messages span several), without
    the Rust backtrace frames delta-rs appends when ``RUST_BACKTRACE`` is set.

    Example:
        >>> one_line("Kernel error: Json error: bad literal\n   0: <unknown>\n   1: start_thread\n"
        ...          "             at ./nptl/pthread_create.c:442:8\n")
        'Kernel error: Json error: bad literal'
        >>> one_line("1 validation error for Config\nmean\n  Input should be a valid number")
        '1 validation error for Config mean Input should be a valid number'
    """
    lines = [line for line in hide_secrets(_ANSI_ESCAPE.sub("", str(message))).splitlines()
             if not _BACKTRACE_LINE.match(line)]
    return re.sub(r"\s*\n\s*", " ", "\n".join(lines)).strip()


_TIMED_OUT = re.compile(r"timed out|timeout was reached|deadline has elapsed", re.IGNORECASE)


def store_timed_out(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) is a storage request that got no answer
    in time: object_store's "operation timed out", the AWS C++ SDK's "Timeout was reached".

    Example:
        >>> store_timed_out(OSError("Error performing GET http://minio/b/k in 10.0s ↳ operation timed out"))
        True
        >>> store_timed_out(OSError("403 Forbidden"))
        False
    """
    return any(isinstance(link, TimeoutError) or _TIMED_OUT.search(plain_message(link)) for link in error_chain(error))


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then each error it was raised from (a ``NodeRunError``'s cause, else
    ``__cause__``, else ``__context__``), each once.

    Example:
        >>> try:
        ...     try:
        ...         raise KeyError("inner")
        ...     except KeyError as inner:
        ...         raise ValueError("outer") from inner
        ... except ValueError as outer:
        ...     [type(link).__name__ for link in error_chain(outer)]
        ['ValueError', 'KeyError']
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__


@functools.cache
def _library_folders() -> tuple[str, ...]:
    """lakenodes', the standard library's and the installed packages' folders (``sysconfig`` costs
    ~3 ms to import: looked up on the first failure, not when lakenodes is imported)."""
    import sysconfig

    paths = sysconfig.get_paths()
    folders = {os.path.dirname(__file__), paths["stdlib"], paths["purelib"], paths["platlib"]}
    return tuple(os.path.realpath(folder) + os.sep for folder in folders)


def raised_at(error: BaseException) -> str | None:
    """Where ``error`` was raised in the program's own code: ``file:line in function`` of the
    deepest frame of its traceback outside lakenodes, the standard library and installed packages
    (None when there is none), so a run record locates a failing ``update()`` without a re-run.

    Example:
        >>> try:
        ...     {}["close"]
        ... except KeyError as error:
        ...     raised_at(error)
        '<doctest lakenodes.errors.raised_at[0]>:2 in <module>'
    """
    found = None
    for frame, line in traceback.walk_tb(error.__traceback__):
        path = frame.f_code.co_filename
        if not os.path.realpath(path).startswith(_library_folders()) and "site-packages" not in path:
            found = f"{path}:{line} in {frame.f_code.co_name}"
    return found


def clipped(text: str, most: int = 4_000) -> str:
    """``text`` cut to about ``most`` characters, its start and its end kept, saying how much was left
    out: what a run record keeps of an error message (an exception may carry a whole HTTP body or frame).

    Example:
        >>> clipped("a" * 10 + "b" * 10, most=12)
        'aaaaaaaaa … [8 characters left out] … bbb'
    """
    if len(text) <= most:
        return text
    tail = most // 4
    return f"{text[:most - tail]} … [{len(text) - most} characters left out] … {text[-tail:]}"


class LakenodesError(Exception):
    """Base class of every lakenodes error."""


class LakenodesUserError(LakenodesError, ValueError):
    """Something the caller asked for or returned is not valid; nothing was written."""


class LakeConfigurationError(LakenodesUserError):
    """The lake URI or its storage options are not usable."""


class ConfigurationError(LakenodesUserError):
    """A DataNodeConfiguration or DataNode class is declared incorrectly."""


class FrameValidationError(LakenodesUserError):
    """A frame returned by ``update()`` breaks the frame rules."""


class SchemaMismatchError(FrameValidationError):
    """A frame's schema differs from the stored table's schema (the schema is a contract)."""


class DependencyCycleError(LakenodesUserError):
    """The dependency graph of a run has a cycle."""


class IdentifierConflictError(LakenodesUserError):
    """A table identifier is already claimed by another storage."""


class NotFoundError(LakenodesUserError, LookupError):
    """A table, identifier or asset does not exist in the catalog."""


class NodeRunError(LakenodesError, RuntimeError):
    """A node failed during ``run()``; the message names the node, the phase and the cause.

    Raised by ``run_many`` (and a tree run), it also carries the rest of the run:
    ``completed`` (update_hash -> ``RunSummary`` of every node that finished) and ``failures``
    (update_hash -> the error of every node that failed, or was skipped for a failed dependency);
    ``skipped``: the update_hashes of the nodes skipped because this node failed (directly or not),
    and ``stopped_by`` the dependency each was skipped for (update_hash -> update_hash: this node,
    or a node skipped itself); ``nodes``: update_hash -> the DataNode, for every node of the run.
    """

    def __init__(self, node: str, phase: str, cause: BaseException):
        self.node = node
        self.phase = phase
        self.cause = cause
        self.completed: dict[str, Any] = {}
        self.failures: dict[str, NodeRunError] = {}
        self.skipped: list[str] = []
        self.stopped_by: dict[str, str] = {}
        self.nodes: dict[str, Any] = {}
        super().__init__(f"{node} failed during {phase}: {type(cause).__name__}: {hide_secrets_in(cause)}")

    def __reduce__(self):  # picklable across process pools (the default would call __init__(message))
        return type(self), (self.node, self.phase, self.cause)


class RowsStoredError(NodeRunError):
    """A node's rows were committed, then a later step failed (e.g. recording the run in a
    read-only or full ``_catalog``). The data is stored: do not re-run to "recover" it."""

    def __init__(self, node: str, phase: str, cause: BaseException, rows_written: int = 0):
        self.rows_written = rows_written
        super().__init__(node, phase, cause)
        self.args = (f"{self.args[0]} (its {rows_written} rows ARE stored: the failure came after the commit)",)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return type(self), (self.node, self.phase, self.cause, self.rows_written)


class StorageError(LakenodesError, OSError):
    """The lake's storage refused an operation for a reason retrying will not fix.

    One line naming the cause and the path; ``path`` is the table (or file) concerned,
    ``operation`` what lakenodes was doing (``write``, ``create table``, ``delete``, ``open``...).
    An ``OSError`` too (``errno`` set where one applies), so ``except OSError`` still catches it.

    Example:
        >>> error = StorageFullError("no space left on device", path="/lake/tables/prices", operation="write")
        >>> str(error)
        'write failed: no space left on device: /lake/tables/prices'
        >>> import errno
        >>> isinstance(error, OSError) and error.errno == errno.ENOSPC
        True
    """

    default_errno: int | None = None

    def __init__(self, reason: str, *, path: str | None = None, operation: str | None = None):
        reason = one_line(reason)  # no colour codes nor line breaks copied from a delta-rs message
        self.reason = reason
        self.path = path
        self.operation = operation
        message = f"{operation} failed: {reason}" if operation else reason
        super().__init__(f"{message}: {path}" if path else message)
        self.errno = self.default_errno
        self.filename = path

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self):  # picklable across process pools (OSError's own reduce drops keywords)
        return _rebuild_storage_error, (type(self), self.reason, self.path, self.operation, self.__dict__)


def _rebuild_storage_error(cls: type[StorageError], reason: str, path: str | None, operation: str | None,
                           state: dict) -> StorageError:
    error = cls.__new__(cls)
    StorageError.__init__(error, reason, path=path, operation=operation)
    error.__dict__.update(state)
    return error


class StorageFullError(StorageError):
    """The storage has no space left (``ENOSPC``) or the quota is exhausted (``EDQUOT``)."""

    default_errno = errno_codes.ENOSPC


class FileTooLargeError(StorageError):
    """A file would exceed the file system's or the process's file size limit (``EFBIG``:
    ``ulimit -f``, a FAT32 volume's 4 GiB)."""

    default_errno = errno_codes.EFBIG


class ReadOnlyStorageError(StorageError):
    """The lake is on a read-only file system (``EROFS``)."""

    default_errno = errno_codes.EROFS


class StoragePermissionError(StorageError):
    """The storage denies this process access (``EACCES``/``EPERM``, S3 ``AccessDenied``)."""

    default_errno = errno_codes.EACCES


class PathTooLongError(StorageError):
    """A file name or path exceeds the storage's limit (``ENAMETOOLONG``, S3 ``KeyTooLongError``)."""

    default_errno = errno_codes.ENAMETOOLONG


class CorruptTableError(StorageError):
    """A Delta table's log cannot be read: ``version`` and ``log_file`` name the bad commit when
    lakenodes could find it (``None`` otherwise). Nothing lakenodes does will repair it; move the
    bad commit file away only if you know it never committed (see docs/reliability.md "Errors")."""

    def __init__(self, reason: str, *, path: str | None = None, operation: str | None = None,
                 version: int | None = None, log_file: str | None = None):
        super().__init__(reason, path=path, operation=operation)
        self.version = version
        self.log_file = log_file


class UnreadableFileError(StorageError):
    """A file a table's current version (or the catalog) references is missing from storage or is
    no Parquet file any more (cut short, overwritten): deleted or changed outside ``vacuum``.
    ``file`` names it, ``missing`` says whether it is gone (else cut short). Restore it from a
    backup; a read ``as_of`` a version from before it was added does not need it."""

    def __init__(self, reason: str, *, path: str | None = None, operation: str | None = None,
                 file: str | None = None, missing: bool = False):
        super().__init__(reason, path=path, operation=operation)
        self.file = file
        self.missing = missing


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command (or a worker process of ``lakenodes run --workers``) is,
    so it ends as Ctrl-C does: the run recorded, one line."""


def raise_terminated(signum: int, frame: object) -> None:
    """A SIGTERM handler: raise :class:`Terminated` in the main thread."""
    raise Terminated("SIGTERM")


class WatermarkMovedError(LakenodesError, RuntimeError):
    """Stored watermarks moved between the statistics a run's ``update()`` used and its write,
    again on every re-run: nothing was written. Backward: a concurrent tail delete, restore or drop; ``forward``: a
    concurrent writer appended rows a streamed update also holds (a stream cannot be merged).
    ``table`` names the table, ``identities`` the identity tuples concerned."""

    def __init__(self, table: str, identities: list[tuple[str, ...]], forward: bool = False):
        self.table = table
        self.identities = list(identities)
        self.forward = forward
        shown = ", ".join("/".join(identity) or "(series)" for identity in self.identities[:10])
        more = f" and {len(self.identities) - 10} more" if len(self.identities) > 10 else ""
        how = ("forward (another writer appended rows of it that the streamed update also holds)" if forward
               else "backward (a concurrent tail delete, restore or drop)")
        super().__init__(f"the stored watermark of {shown}{more} in table {table} moved {how} after update() read "
                         "it; nothing was written")

    def __reduce__(self):
        return type(self), (self.table, self.identities, self.forward)


class ConcurrentCreationError(LakenodesError, RuntimeError):
    """Another writer created the table, with other columns or types, while a streamed update's
    files were written in the types of its first batch: nothing was written (a run again conforms
    its rows to the table that now exists)."""


class ForkedProcessError(LakenodesError, RuntimeError):
    """This process was forked from one in which deltalake or polars had started threads, which a
    forked child does not have: lakenodes refuses to use the lake here rather than hang (start
    workers with the ``spawn`` method); nothing was read or written."""


class VersionUnavailableError(NotFoundError):
    """A time-travel read asked for a table version that does not exist or that vacuum removed."""
