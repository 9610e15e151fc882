"""Storage faults a user can act on, raised as one-line ``StorageError``\\ s where they arise.

delta-rs reports a full disk, a read-only file system or a too-long path as
``DeltaError: Failed to parse parquet: External: Generic LocalFileSystem error: ... (os error 28)``,
a garbage commit as a ``Kernel error: Json error`` followed by a Rust backtrace, and pyarrow as
``OSError`` with an errno. ``storage_errors()`` wraps the storage boundary (open, refresh,
create, write, delete, read) and turns those into:

================================  ====================================================
errno / marker                    error
================================  ====================================================
``ENOSPC``, ``EDQUOT``            ``StorageFullError``
``EFBIG``                         ``FileTooLargeError``
``EROFS``                         ``ReadOnlyStorageError``
``ENAMETOOLONG``, S3 KeyTooLong   ``PathTooLongError``
``EACCES``, ``EPERM``, S3 403     ``StoragePermissionError``
no S3 credentials to be found     ``StoragePermissionError`` (naming the settings to set)
S3 ``NoSuchBucket``               ``LakeConfigurationError`` (a user mistake: the lake URI)
a damaged Delta log               ``CorruptTableError`` (naming the commit or checkpoint; see ``_log_damage``)
a data file missing or cut short  ``UnreadableFileError`` (naming the file; see ``_unreadable``)
================================  ====================================================

Anything else propagates unchanged. None of these is transient: ``retryable()`` says so, and the
commit retries of ``TableStore.with_retries`` give up at once instead of sleeping through them.

Example:
    >>> import errno
    >>> error = as_storage_error(OSError(errno.EROFS, "Read-only file system"), "/lake/tables/t", "write")
    >>> type(error).__name__, str(error)
    ('ReadOnlyStorageError', 'write failed: read-only file system: /lake/tables/t')
    >>> retryable(error), retryable(ConnectionResetError())
    (False, True)
"""

from __future__ import annotations

import contextlib
import errno as codes
import logging
import os
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..errors import (
    CorruptTableError,
    FileTooLargeError,
    LakeConfigurationError,
    PathTooLongError,
    ReadOnlyStorageError,
    StorageError,
    StorageFullError,
    StoragePermissionError,
    UnreadableFileError,
    error_chain,
    hide_secrets_in,
    plain_message,
)
from ._log_damage import corrupt_log_error, find_log_damage
from ._rust_stderr import quiet_delta_panics
from ._unreadable import unreadable_file, unreadable_reason, vanished_log_file_reason
from .storage_options import profile_advice

__all__ = ["as_storage_error", "guarded", "retryable", "storage_errors", "table_not_created"]

logger = logging.getLogger("lakenodes.storage")

T = TypeVar("T")

_FAULTS: dict[int, tuple[type[StorageError], str]] = {
    codes.ENOSPC: (StorageFullError, "no space left on device"),
    codes.EDQUOT: (StorageFullError, "disk quota exceeded"),
    codes.EFBIG: (FileTooLargeError, "file too large for the file system or the process's file size limit (ulimit -f)"),
    codes.EROFS: (ReadOnlyStorageError, "read-only file system"),
    codes.ENAMETOOLONG: (PathTooLongError, "file name too long"),
    codes.EACCES: (StoragePermissionError, "permission denied"),
    codes.EPERM: (StoragePermissionError, "operation not permitted"),
}
# errno as Rust (io::Error Display and Debug) and pyarrow print it
_ERRNO_IN_TEXT = re.compile(r"\(os error (\d+)\)|\bOs \{ code: (\d+)|\[errno (\d+)\]", re.IGNORECASE)
_MARKERS = (("no space left on device", codes.ENOSPC), ("file too large", codes.EFBIG),
            ("read-only file system", codes.EROFS),
            ("file name too long", codes.ENAMETOOLONG), ("keytoolong", codes.ENAMETOOLONG),
            # S3's AccessDenied; a HEAD has no body, so pyarrow's SDK names the code alone: ACCESS_DENIED
            ("accessdenied", codes.EACCES), ("access_denied", codes.EACCES), ("403 forbidden", codes.EACCES),
            # wrong or revoked S3 keys, as S3 names them and as pyarrow's AWS SDK prints them
            ("invalidaccesskeyid", codes.EACCES), ("invalid_access_key_id", codes.EACCES),
            ("signaturedoesnotmatch", codes.EACCES), ("signature_does_not_match", codes.EACCES))
# the file a local object_store / pyarrow error names (object_store stages uploads as "<file>#<n>")
_FILE_IN_TEXT = re.compile(r"(?:file|directory|dir)[:']? '?((?:/|[a-z][a-z0-9+.-]*://)[^\s'\"#]+)", re.IGNORECASE)
_CORRUPT_LOG = re.compile(r"\bjson error\b", re.IGNORECASE)
# the other words of delta-rs for a log it cannot read: a checkpoint cut short (no file named), a
# _last_checkpoint naming a checkpoint that is gone, a missing commit
_DAMAGED_LOG = re.compile(r"kernel error: arrow error: parquet error|invalid checkpoint|contiguous commit files"
                          r"|LogSegment end version", re.IGNORECASE)
_LOG_FILE = re.compile(r"(?:^|/)_delta_log/")  # a path of a table's log, however much of the path the text gives
# delta-rs' history (every commit's commitInfo, the oldest too) on a commit whose first line is cut short
_HISTORY_JSON = re.compile(r"invalid json in file stats", re.IGNORECASE)
_NO_BUCKET = re.compile(r"\bNoSuchBucket\b")
# the SDK's chain gave up, or object_store's fallback to the EC2 instance metadata service failed
_NO_CREDENTIALS = re.compile(r"error occurred while loading credentials|no credentials|169\.254\.169\.254",
                             re.IGNORECASE)


def retryable(error: BaseException) -> bool:
    """Whether retrying ``error`` can help: never for a ``StorageError`` or an ``OSError`` whose
    errno is a storage fault (full, file too large, read-only, name too long, permission); yes for other
    ``OSError``\\ s (connections, timeouts, S3 errors without an errno).

    Example:
        >>> import errno
        >>> retryable(OSError(errno.ENOSPC, "No space left on device")), retryable(TimeoutError())
        (False, True)
    """
    if isinstance(error, StorageError):
        return False
    return not (isinstance(error, OSError) and error.errno in _FAULTS)


def errno_of(error: OSError) -> int | None:
    """The error number of ``error``: its ``errno``, else the one its text names (pyarrow's local
    filesystem words it so: "[Errno 39] Cannot delete directory ...").

    Example:
        >>> import errno
        >>> errno_of(OSError("[Errno 39] Cannot delete directory '/lake/t'")) == errno.ENOTEMPTY
        True
    """
    if error.errno is not None:
        return error.errno
    found = _ERRNO_IN_TEXT.search(str(error))
    return _matched_errno(found) if found else None


def _matched_errno(match: re.Match[str]) -> int:
    """The number an ``_ERRNO_IN_TEXT`` match holds (in whichever of its wordings matched)."""
    return int(next(group for group in match.groups() if group))


def fault_errno(error: BaseException) -> int | None:
    """The storage-fault errno behind ``error``: from ``OSError.errno`` or the message text, along
    its chain (``error_chain``); None when it is not one of those faults."""
    for link in error_chain(error):
        if isinstance(link, OSError) and link.errno in _FAULTS:
            return link.errno
        text = plain_message(link)
        for match in _ERRNO_IN_TEXT.finditer(text):
            number = _matched_errno(match)
            if number in _FAULTS:
                return number
        lowered = text.lower()
        for marker, number in _MARKERS:
            if marker in lowered or marker in lowered.replace(" ", ""):
                return number
    return None


def as_storage_error(error: BaseException, path: str, operation: str, lake: Any = None) -> StorageError | None:
    """``error`` as the ``StorageError`` a user can act on, or None when it is not a storage fault.

    ``path`` is the table (or file) lakenodes was working on; the file the error itself names
    wins when there is one. ``lake`` lets a corrupt Delta log be located on S3 too."""
    if isinstance(error, StorageError):
        return error
    number = fault_errno(error)
    text = plain_message(error)
    if _NO_CREDENTIALS.search(text):
        profile = os.environ.get("AWS_PROFILE")  # set, and delta-rs went on to the EC2 metadata endpoint
        advice = f"; AWS_PROFILE={profile!r} is set: {profile_advice(profile)}" if profile else ""
        return StoragePermissionError(
            "no S3 credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass them in the lake's "
            f"storage_options{advice}; {text})", path=path, operation=operation)  # squeezed by StorageError
    if number is not None:
        cls, reason = _FAULTS[number]
        if number == codes.EACCES:
            reason = _rejected_keys(text) or _refused_request(error) or reason
        named = _FILE_IN_TEXT.search(text)
        where = named.group(1) if named else path
        if cls is PathTooLongError:
            reason += _lengths(where)
        return cls(reason, path=where, operation=operation)
    unreadable = unreadable_file(text)
    log_file = unreadable is not None and _LOG_FILE.search(unreadable[0]) is not None  # a checkpoint, not a data file
    if unreadable is not None and not log_file:
        file, missing = unreadable
        return UnreadableFileError(unreadable_reason(file, missing), path=path, operation=operation, file=file,
                                   missing=missing)
    whole_log = bool(_HISTORY_JSON.search(text))
    if log_file or whole_log or _CORRUPT_LOG.search(text) or _DAMAGED_LOG.search(text):
        found = find_log_damage(path, lake, whole_log=whole_log)
        detail = text  # squeezed onto one line by the error built from it
        if found is not None:
            return corrupt_log_error(found, detail, path, operation)
        if unreadable is not None:  # the log reads now: a clean-up trimmed the file after it was listed
            return UnreadableFileError(vanished_log_file_reason(*unreadable), path=path, operation=operation,
                                       file=unreadable[0], missing=unreadable[1])
        if whole_log or _CORRUPT_LOG.search(text):
            return CorruptTableError(f"corrupt Delta log ({detail})", path=path, operation=operation)
    return None


def _rejected_keys(text: str) -> str | None:
    """What an S3 refusal says of the keys (a wrong secret reads like a bucket policy otherwise).

    Example:
        >>> _rejected_keys("AWS Error SIGNATURE_DOES_NOT_MATCH during ListObjectsV2")
        'permission denied: the secret key does not match the access key id (SignatureDoesNotMatch)'
    """
    squeezed = text.lower().replace("_", "").replace(" ", "")
    if "signaturedoesnotmatch" in squeezed:
        return "permission denied: the secret key does not match the access key id (SignatureDoesNotMatch)"
    if "invalidaccesskeyid" in squeezed:
        return "permission denied: the store does not know the access key id (InvalidAccessKeyId)"
    return None


# the S3 permission each refused request needs, by the words delta-rs / object_store / pyarrow name it with
# (a listing is a GET of the bucket: it is looked for first)
_REQUESTS = (("s3:ListBucket", ("list request", "listobjects", "list-type=2", "when listing")),
             ("s3:PutObject", ("performing put", "single put", "putobject", "multipartupload", "uploadpart",
                               "when uploading", "when initiating", "performing post")),
             ("s3:DeleteObject", ("performing delete", "deleteobject", "when deleting")),
             ("s3:GetObject", ("performing get", "performing head", "getobject", "headobject", "when reading")))


def _refused_request(error: BaseException) -> str | None:
    """``permission denied (<the S3 action>)`` when ``error`` is S3 refusing one request: the permission
    the key (or the bucket policy) does not give.

    Example:
        >>> _refused_request(OSError("AWS Error ACCESS_DENIED during ListObjectsV2 operation"))
        'permission denied (s3:ListBucket)'
    """
    text = " ".join(plain_message(link) for link in error_chain(error)).lower().replace("_", "")
    for action, markers in _REQUESTS:
        if any(marker.replace("_", "") in text for marker in markers):
            return f"permission denied ({action})"
    return None


def _lengths(path: str) -> str:
    longest = max((len(part.encode()) for part in path.split("/")), default=0)
    return f" (path of {len(path.encode())} bytes, longest name {longest} bytes)"


@contextlib.contextmanager
def storage_errors(path: str, operation: str, lake: Any = None) -> Iterator[None]:
    """Raise storage faults of the body as one-line ``StorageError``\\ s (chained to the original);
    let every other error through unchanged.

    Example:
        >>> import errno
        >>> with storage_errors("/lake/tables/t", "write"):  # doctest: +ELLIPSIS
        ...     raise OSError(errno.ENOSPC, "No space left on device")
        Traceback (most recent call last):
        lakenodes.errors.StorageFullError: write failed: no space left on device: /lake/tables/t
    """
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        message = hide_secrets_in(error)  # an S3 answer quoting the session token (ExpiredToken)
        if _NO_BUCKET.search(message):  # a mistyped lake URI: no storage fault, no retry helps
            bucket = path.split("://", 1)[-1].split("/", 1)[0]
            raise LakeConfigurationError(f"no bucket {bucket!r} for {path}: check the lake URI") from error
        mapped = as_storage_error(error, path, operation, lake)
        if mapped is None:
            raise
        logger.debug("%s: %s (from %s: %s)", operation, mapped, type(error).__name__, message)
        raise mapped from error


def guarded(operation: Callable[[], T], path: str, what: str, lake: Any = None) -> T:
    """``operation()`` with its storage faults raised as ``StorageError``\\ s and delta-rs's
    "Already shut down" panics kept off stderr (see ``lakenodes.lake._rust_stderr``).

    Example:
        >>> guarded(lambda: 42, "/lake/tables/t", "write to t")
        42
    """
    with quiet_delta_panics(), storage_errors(path, what, lake):
        return operation()


def table_not_created(uri: str, cause: BaseException | None, lake: Any = None) -> StorageError:
    """The error for a table that does not exist after ``DeltaTable.create``: the storage fault
    behind ``cause`` when there is one, else a ``StorageError`` quoting ``cause``.

    Example:
        >>> str(table_not_created("/lake/tables/t", None))
        'create table failed: the table does not exist after its creation: /lake/tables/t'
    """
    mapped = as_storage_error(cause, uri, "create table", lake) if cause is not None else None
    if mapped is not None:
        return mapped
    reason = f"{type(cause).__name__}: {cause}" if cause is not None else (
        "the table does not exist after its creation")
    return StorageError(reason, path=uri, operation="create table")
