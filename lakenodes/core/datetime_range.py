"""Datetimes and dates Python can hold: years 1 to 9999.

Arrow, polars and numpy hold far more (any int64 count of seconds to nanoseconds), and such a
value, once committed, breaks statistics and reads (``OverflowError``) on every later run, so
frames refuse it before writing (see ``frames.normalize_frame``).
"""

from __future__ import annotations

from .._internal.deferred import pa
from .._internal.plain_arrow import polars_series
from ..errors import FrameValidationError

_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}
_FIRST_DAY = -719_162  # 0001-01-01, days since the epoch
_END_DAY = 2_932_897  # 10000-01-01, the first day Python cannot hold
_SECONDS_PER_DAY = 86_400


def check_python_range(name: str, column: pa.ChunkedArray) -> None:
    """Raise FrameValidationError naming ``name`` and the offending value when a timestamp or date
    of ``column`` lies outside 0001-01-01 .. 9999-12-31 (nulls are ignored)."""
    kind = column.type
    unit = kind.unit if pa.types.is_timestamp(kind) else "ms" if pa.types.is_date64(kind) else "day"
    per_day = 1 if unit == "day" else _SECONDS_PER_DAY * _PER_SECOND[unit]
    smallest, largest = _count_bounds(column, pa.int32() if unit == "day" else pa.int64())
    if smallest is None or (_FIRST_DAY * per_day <= smallest and largest < _END_DAY * per_day):
        return
    offending = smallest if smallest < _FIRST_DAY * per_day else largest
    raise FrameValidationError(
        f"{name!r} value {format_count(offending, unit)} is outside 0001-01-01 .. 9999-12-31, the range "
        "Python's datetime can hold (statistics and reads would fail on it)"
    )


def _count_bounds(column: pa.ChunkedArray, counts: pa.DataType) -> tuple[int | None, int | None]:
    """The smallest and largest count (days or time units since the epoch) of ``column``, None when
    it has no value: its numbers seen as the ints ``counts`` (no copy; a cast would import
    ``pyarrow.compute``, see ``_internal/plain_arrow.py``)."""
    numbers = polars_series(pa.chunked_array([chunk.view(counts) for chunk in column.chunks], counts))
    return numbers.min(), numbers.max()  # type: ignore[return-value]


def format_count(value: int, unit: str) -> str:
    """ISO-8601 text of ``value`` days (``unit="day"``) or s/ms/us/ns since the epoch, for any year.

    Example:
        >>> format_count(253_402_300_800 * 10**6, "us"), format_count(-719_163, "day")
        ('10000-01-01T00:00:00Z', '0000-12-31')
    """
    if unit == "day":
        return _civil_date(value)
    per_second = _PER_SECOND[unit]
    seconds, fraction = divmod(value, per_second)
    days, second_of_day = divmod(seconds, _SECONDS_PER_DAY)
    hours, rest = divmod(second_of_day, 3600)
    text = f"{_civil_date(days)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return (f"{text}.{fraction:0{_DIGITS[unit]}d}" if fraction else text) + "Z"


def _civil_date(days: int) -> str:
    """The proleptic Gregorian date ``days`` after 1970-01-01 (H. Hinnant's civil_from_days)."""
    shifted = days + 719_468
    era, day_of_era = divmod(shifted, 146_097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    year = year_of_era + era * 400 + (month <= 2)
    return f"{year:04d}-{month:02d}-{day:02d}" if year >= 0 else f"-{-year:04d}-{month:02d}-{day:02d}"
