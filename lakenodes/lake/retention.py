"""How long vacuum keeps files that left a table, and when a shorter retention is refused.

Vacuum deletes data files that stopped being part of the table more than ``retention_hours``
ago. Below :data:`MIN_RETENTION_HOURS` (Delta's 7-day default) a reader or writer still using an
older snapshot may find its files gone, so a shorter retention needs an explicit force, and is
warned about even then.

:func:`check_retention` is the one place that decides; callers name their own spelling of the
two settings (``--retention-hours``/``--force-unsafe-retention`` on the command line).

Example:
    >>> check_retention(168, force_unsafe=False) is None
    True
    >>> check_retention(0, force_unsafe=True)[:6]
    'UNSAFE'
"""

from __future__ import annotations

from ..errors import LakenodesUserError

DEFAULT_RETENTION_HOURS = 168
"""Retention used when none is given: 7 days."""
MIN_RETENTION_HOURS = 168
"""Shortest retention accepted without ``force_unsafe``."""
MAX_RETENTION_HOURS = 1_000_000
"""Longest retention accepted (about 114 years): far larger ones overflowed delta-rs' vacuum."""


def check_retention(retention_hours: int, force_unsafe: bool, *, hours_name: str = "retention_hours",
                    force_name: str = "force_unsafe_retention=True") -> str | None:
    """Validate a vacuum retention.

    Returns None for a safe retention, or the warning to show (or log) when an unsafe one is
    forced.
    Raises ``LakenodesUserError`` for a negative retention, one above MAX_RETENTION_HOURS, or one
    below the minimum without ``force_unsafe``; the message names ``hours_name`` and ``force_name``.
    """
    if retention_hours < 0:
        raise LakenodesUserError(f"{hours_name} must be >= 0, got {retention_hours}")
    if retention_hours > MAX_RETENTION_HOURS:
        raise LakenodesUserError(f"{hours_name} must be at most {MAX_RETENTION_HOURS} (about 114 years), "
                                 f"got {retention_hours}")
    if retention_hours >= MIN_RETENTION_HOURS:
        return None
    if not force_unsafe:
        raise LakenodesUserError(f"{hours_name} {retention_hours} is below the {MIN_RETENTION_HOURS} h minimum "
                                 f"(it can break running readers and writers); add {force_name} only if nothing "
                                 "else uses these tables")
    return (f"UNSAFE vacuum with {retention_hours} h retention: readers and writers still using older table "
            "versions may fail")
