"""How lakenodes retries a commit above delta-rs's own retries: attempts and backoff with jitter."""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field

from deltalake.exceptions import CommitFailedError, DeltaError

from ..errors import one_line, plain_message
from ._storage_errors import retryable

# How delta-rs words a passing fault. object_store (S3, GCS, Azure) wraps a failed request as
# "Error performing <METHOD> <url> in <elapsed> - <reason>", the reason being reqwest's
# "HTTP error: error sending request" (connection refused, reset or dropped, or no answer within
# the request timeout), "error reading a body from connection", "request or response body error",
# "error decoding response body" (the answer was cut off), or "operation timed out"; a 5xx as
# "Server returned non-2xx status code: 503 Service Unavailable", or S3's 200-with-error body as
# "Server returned error response: ...<Code>SlowDown</Code>". Under them, hyper's "connection
# closed before message completed" / "incomplete message", Rust's io errors ("Connection reset by
# peer", "Broken pipe", "Connection aborted"), the AWS SDK's "dispatch failure"; throttling (429,
# "SlowDown", "Too Many Requests"). Durations in the text ("in 1.500123ms") are no status code.
_TRANSIENT = re.compile(
    r"time(?:d)? ?out|deadline has elapsed|temporar(?:il)?y|too many requests|throttl|slow ?down|service unavailable"
    r"|error sending request|error reading a body|request or response body error|error decoding response body"
    r"|connection (?:closed|reset|refused|aborted|error)|broken pipe|incomplete message"
    r"|not connected|dispatch failure|\bio error\b|\binternalerror\b|server returned error response"
    r"|(?:status|code|http)\W{0,3}(?:429|50[0-4])\b|\b50[0-4] (?:internal|bad|service|gateway)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a commit is retried above delta-rs's own retries.

    A field left out is read from the environment when the policy is made (not at import):
    ``LAKENODES_COMMIT_ATTEMPTS`` (12), ``LAKENODES_COMMIT_BASE_DELAY`` (0.05 s),
    ``LAKENODES_COMMIT_MAX_DELAY`` (3 s).

    Example:
        >>> RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0).delay(2)
        0.0
    """

    attempts: int = field(default_factory=lambda: int(os.environ.get("LAKENODES_COMMIT_ATTEMPTS", "12")))
    base_delay: float = field(default_factory=lambda: float(os.environ.get("LAKENODES_COMMIT_BASE_DELAY", "0.05")))
    max_delay: float = field(default_factory=lambda: float(os.environ.get("LAKENODES_COMMIT_MAX_DELAY", "3.0")))

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


def default_retry() -> RetryPolicy:
    """The retry policy the environment asks for now."""
    return RetryPolicy()


def transient_message(text: str) -> bool:
    """Does an error message (delta-rs, object_store, DataFusion) tell of a passing storage fault:
    a timeout, a lost connection, throttling, a 5xx?

    Example:
        >>> transient_message("Server returned non-2xx status code: 503 Service Unavailable")
        True
        >>> transient_message("Schema error: No field named x")
        False
    """
    return _TRANSIENT.search(text) is not None


def is_transient(error: DeltaError) -> bool:
    """Does a delta-rs error look like a passing storage fault (see ``transient_message``)?

    Example:
        >>> is_transient(DeltaError("Generic S3 error: Error performing PUT http://s3/b/k in 4.7ms - "
        ...                         "HTTP error: error sending request"))
        True
        >>> is_transient(DeltaError("Generic S3 error: Error performing GET http://s3/b/k in 1.500123ms - "
        ...                         "Server returned non-2xx status code: 400 Bad Request: "))
        False
    """
    return transient_message(plain_message(error))


def log_entry_vanished(error: BaseException | None) -> bool:
    """Does ``error``, or an error it was raised from, say that an entry of a Delta log was not
    found? Log housekeeping (another process's, or this one's) trims old entries once a newer
    checkpoint holds them; an open, a refresh or a commit's conflict check that listed them a moment
    before then misses one. Reading the log again from its latest checkpoint goes on.

    Example:
        >>> log_entry_vanished(DeltaError("Kernel error: File not found: /lake/t/_delta_log/00000000000000000050.json"))
        True
        >>> log_entry_vanished(DeltaError("Invalid table version: 1"))  # a commit from a snapshot older than the log
        True
        >>> log_entry_vanished(DeltaError("Kernel error: File not found: /lake/t/part-00000.parquet"))
        False
    """
    while error is not None:
        text = str(error)
        if "_delta_log/" in text and ("not found" in text or "No such file" in text):
            return True
        if text.startswith("Invalid table version"):  # a commit after the snapshot's version is gone
            return True
        error = error.__cause__
    return False


def retry_reason(error: BaseException, attempt: int = 1) -> str | None:
    """Why attempt number ``attempt``, which failed with ``error``, is worth another one, in a few
    words for the retry's warning; None when it is not.

    A log entry trimmed meanwhile is checked first: lakenodes reports a missing checkpoint as an
    ``UnreadableFileError``, an ``OSError`` that is otherwise never retried.

    Example:
        >>> retry_reason(DeltaError("Generic S3 error: ... - HTTP error: error sending request"))
        'transient storage error (Generic S3 error: ... - HTTP error: error sending request)'
        >>> retry_reason(CommitFailedError("Concurrent transaction failed."), attempt=2)
        'commit attempt 2 failed (Concurrent transaction failed.)'
        >>> retry_reason(DeltaError("Schema error: No field named x")) is None
        True
    """
    if log_entry_vanished(error):
        return f"a log entry it read was trimmed meanwhile ({one_line(error)})"
    if isinstance(error, CommitFailedError) or (isinstance(error, OSError) and retryable(error)):
        return f"commit attempt {attempt} failed ({one_line(error)})"  # a conflict, or a connection's fault
    if isinstance(error, DeltaError) and is_transient(error):
        return f"transient storage error ({one_line(error)})"
    return None
