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


def refuse_clock_problem(name: str, value: datetime.datetime, error: type[Exception]) -> None:
    """Raise ``error`` naming ``name`` when ``value`` is no time its own zone's clocks showed
    (:func:`clock_problem`): every refusal of such a time says it in these words.

    Example:
        >>> from zoneinfo import ZoneInfo
        >>> refuse_clock_problem("offset_start", datetime.datetime(2026, 3, 8, 2, 30,
        ...                      tzinfo=ZoneInfo("America/New_York")), ValueError)
        Traceback (most recent call last):
        ...
        ValueError: offset_start 2026-03-08T02:30:00 is refused: the clocks of America/New_York skipped 02:30 on 2026-03-08 (they went forward): it would be read as 2026-03-08T03:30:00-04:00; pass that, or the UTC time you mean
    """
    problem = clock_problem(value)
    if problem:
        raise error(f"{name} {value.replace(tzinfo=None).isoformat()} is refused: {problem}")


def clock_problem(value: datetime.datetime) -> str | None:
    """Why an aware ``value`` is no time its own zone's clocks showed, or None when it is one.

    Two such values convert to UTC without complaint, an hour or some minutes off what was meant:
    a wall time in the hour skipped when clocks go forward (Python takes it with the offset before
    the change, as pytz's ``localize`` does), and a pytz zone attached with ``tzinfo=`` (pytz then
    gives the zone's first offset: local mean time, -04:56 for New York; EST all year for EST5EDT).
    A time in the repeated hour when clocks go back is a time (``fold=0``: the first of the two,
    ``fold=1``: the second) and passes.

    Example:
        >>> from zoneinfo import ZoneInfo
        >>> clock_problem(datetime.datetime(2026, 3, 8, 2, 30, tzinfo=ZoneInfo("America/New_York")))[:48]
        'the clocks of America/New_York skipped 02:30 on '
        >>> clock_problem(datetime.datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York"))) is None
        True
    """
    zone = value.tzinfo
    if zone is None or isinstance(zone, datetime.timezone):  # a fixed offset is always on its clock
        return None
    try:
        shown = value.astimezone(UTC).astimezone(zone)
    except OverflowError:  # at the ends of Python's years: left to the conversion's own error
        return None
    if shown.replace(tzinfo=None) == value.replace(tzinfo=None):
        return None
    name = getattr(zone, "key", None) or getattr(zone, "zone", None) or str(zone)
    if hasattr(zone, "localize") and not _skipped_by_pytz(zone, value):
        return (f"its pytz zone {name} was attached with tzinfo=, which gives it the zone's first offset "
                f"({value.isoformat()}; the local mean time of the 1800s for most zones), not the offset in force: "
                f"use pytz.timezone({name!r}).localize(naive) or zoneinfo.ZoneInfo({name!r})")
    return (f"the clocks of {name} skipped {value:%H:%M} on {value:%Y-%m-%d} (they went forward): "
            f"it would be read as {shown.isoformat()}; pass that, or the UTC time you mean")


def _skipped_by_pytz(zone: Any, value: datetime.datetime) -> bool:
    """Whether pytz says ``value``'s wall time does not exist in ``zone`` (a time ``localize`` gave
    the offset before a change, or one attached with ``tzinfo=``)."""
    try:
        zone.localize(value.replace(tzinfo=None), is_dst=None)
    except Exception as error:  # pytz's NonExistentTimeError or AmbiguousTimeError (pytz is not imported here)
        return type(error).__name__ == "NonExistentTimeError"
    return False


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


def from_epoch_micros(micros: int) -> datetime.datetime:
    """The UTC moment ``micros`` microseconds after the Unix epoch: ``epoch_micros`` undone.

    Example:
        >>> from_epoch_micros(1000005)
        datetime.datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=datetime.timezone.utc)
    """
    return _EPOCH + datetime.timedelta(microseconds=micros)


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
    (numpy's always) and dates (their midnight) are taken as UTC, aware ones converted to UTC; an
    aware value its zone's clocks never showed is refused (``clock_problem``).

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
    refuse_clock_problem(argument, value, LakenodesUserError)
    return as_utc(value + _MICROSECOND if between and round_up else value)


# the fractional seconds of an ISO time with a nonzero digit after the sixth
_SUB_MICROSECOND = re.compile(r"[T ]\d{2}:?\d{2}:?\d{2}[.,]\d{6}\d*[1-9]")
