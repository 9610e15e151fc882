"""The one place datetimes are parsed, made UTC and written as text.

Example:
    >>> import datetime
    >>> parse_datetime("2026-01-31", "start_date")
    datetime.datetime(2026, 1, 31, 0, 0, tzinfo=datetime.timezone.utc)
    >>> iso_z(parse_datetime("2026-01-31T12:00:00+01:00", "end_date"))
    '2026-01-31T11:00:00Z'
"""

from __future__ import annotations

import datetime
import re
import sys
from typing import Any

from ..errors import LakenodesUserError

UTC = datetime.timezone.utc
# The time zone names that mean UTC: the tz database's UTC and GMT zones with every link to them
# ("UCT", "Etc/Zulu", "GMT0", ...; a system set up with TZ=UCT labels its times so), and the fixed
# offsets Arrow writes for UTC
UTC_ZONES = frozenset({
    "UTC", "utc", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu",
    "GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "GMT+0", "Etc/GMT+0", "GMT-0", "Etc/GMT-0", "Greenwich", "Etc/Greenwich",
    "+00:00", "-00:00", "Z",
})


def is_utc_zone(zone: str | None) -> bool:
    """Whether an Arrow (or polars) time zone name means UTC; None (naive) does not.

    Example:
        >>> is_utc_zone("Etc/UCT"), is_utc_zone("Europe/London"), is_utc_zone(None)
        (True, False, False)
    """
    return zone in UTC_ZONES


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """``value`` in UTC; a naive value is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


def epoch_micros(value: datetime.datetime) -> int:
    """Microseconds since the Unix epoch (a naive value taken as UTC): how lakenodes hands instants
    to polars and Arrow, which convert integers far faster than aware datetimes.

    Example:
        >>> epoch_micros(datetime.datetime(1970, 1, 1, 0, 0, 1, 5))
        1000005
    """
    return (as_utc(value) - _EPOCH) // _MICROSECOND


def iso_z(value: datetime.datetime | None) -> str | None:
    """ISO-8601 with ``Z`` for UTC (None stays None)."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def is_moment(value: Any) -> bool:
    """Whether ``value`` is a datetime, a pandas Timestamp or a numpy datetime64 (not a date or text).

    Example:
        >>> is_moment(datetime.datetime(2026, 1, 31)), is_moment(datetime.date(2026, 1, 31)), is_moment("2026")
        (True, False, False)
    """
    return isinstance(value, datetime.datetime) or hasattr(value, "to_pydatetime") or _numpy_datetime(value)


def _numpy_datetime(value: Any) -> bool:
    numpy = sys.modules.get("numpy")  # a numpy value means numpy is imported: never imported here
    return numpy is not None and isinstance(value, numpy.datetime64)


def parse_datetime(value: Any, argument: str, *, round_up: bool = False) -> datetime.datetime | None:
    """Accept a datetime, date, pandas Timestamp, numpy datetime64 or ISO-8601 string; naive values
    (numpy's always) are taken as UTC.

    Times are stored in microseconds: a value between two of them (a pandas Timestamp's nanoseconds, an
    ISO string's seventh or later fractional digit) becomes the microsecond before it, or with ``round_up``
    the one after it. A bound keeps its meaning either way when rounded towards the rows it admits:
    up for an inclusive lower bound (``>=``) or an exclusive upper one (``<``), down for the others.

    Example:
        >>> parse_datetime("2026-01-31T00:00:00.0000001Z", "start_date", round_up=True).microsecond
        1
    """
    if value is None:
        return None
    between = False  # the value lies strictly between two microseconds
    if _numpy_datetime(value):
        if value != value:  # NaT
            raise LakenodesUserError(f"{argument} is NaT, not a moment: pass None for no bound")
        micros = value.astype("datetime64[us]")  # floors: the microsecond before a value between two
        between = bool(micros != value)
        value = micros.item()  # a naive datetime (an int beyond datetime's years: refused below)
    elif hasattr(value, "to_pydatetime"):
        if value != value:  # pandas NaT (a datetime unequal to itself)
            raise LakenodesUserError(f"{argument} is NaT, not a moment: pass None for no bound")
        between = bool(getattr(value, "nanosecond", 0))
        value = value.replace(nanosecond=0).to_pydatetime() if between else value.to_pydatetime()
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            value = datetime.datetime.fromisoformat(text)  # (keeps 6 fractional digits, drops the rest)
        except ValueError:
            raise LakenodesUserError(
                f"{argument}={value!r} is not an ISO-8601 date or datetime (e.g. '2026-01-31' or '2026-01-31T00:00:00Z')"
            ) from None
        between = _SUB_MICROSECOND.search(text) is not None
    elif isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime.datetime):
        raise LakenodesUserError(f"{argument} must be a datetime, date or ISO-8601 string, got {type(value).__name__}")
    return as_utc(value + _MICROSECOND if between and round_up else value)


# the fractional seconds of an ISO time with a nonzero digit after the sixth
_SUB_MICROSECOND = re.compile(r"[T ]\d{2}:?\d{2}:?\d{2}[.,]\d{6}\d*[1-9]")
