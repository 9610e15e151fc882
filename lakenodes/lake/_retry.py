"""How lakenodes retries a commit above delta-rs's own retries: attempts and backoff with jitter."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

from deltalake.exceptions import DeltaError


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


def is_transient(error: DeltaError) -> bool:
    """Does a delta-rs error look like a passing storage fault (timeout, dropped connection, 5xx)?"""
    text = str(error).lower()
    return any(marker in text for marker in ("timeout", "timed out", "connection", "503", "500", "slow down", "io error"))
