"""Durations in S3 storage options, as object_store (delta-rs) and lakenodes read them.

object_store reads ``"5s"``, ``"250ms"`` or ``"1m 30s"`` (whole numbers of units) and fails a
run mid-way on anything else; lakenodes also reads plain seconds (``"5"``) and decimals, and
rewrites such values before delta-rs sees them.
"""

from __future__ import annotations

import re

from ..errors import LakeConfigurationError

_DURATION_UNITS = {"ms": 0.001, "msec": 0.001, "millis": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0,
                   "second": 1.0, "seconds": 1.0, "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0,
                   "minutes": 60.0, "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)")


def duration_seconds(value: str, key: str = "") -> float:
    """Seconds in an object_store duration such as ``"5s"``, ``"250ms"`` or ``"1m 30s"`` (plain numbers: seconds).

    ``key`` names the option in the error raised for anything else.

    Example:
        >>> duration_seconds("250ms"), duration_seconds("1m 30s")
        (0.25, 90.0)
    """
    text = str(value).strip().lower()
    total, position = 0.0, 0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None or match.group(2) not in {"", *_DURATION_UNITS}:
            break
        total += float(match.group(1)) * _DURATION_UNITS.get(match.group(2) or "s", 1.0)
        position = match.end()
    else:
        if text:
            return total
    name = f"storage option {key}" if key else "storage option"
    raise LakeConfigurationError(f"{name} duration {value!r} is not like '5s', '250ms' or '2min'")


TIMEOUTS = ("timeout", "connect_timeout", "retry_timeout")
"""The duration options lakenodes' own reads follow too (see ``storage_options``)."""
_BACKOFF_DURATIONS = ("backoff_config.init_backoff", "backoff_config.max_backoff")


def write_durations_as_object_store_reads_them(options: dict[str, str]) -> None:
    """Rewrite each duration option object_store would refuse mid-run (``"5"``, ``"2.5s"``: it wants
    whole units) as one it reads (``"5s"``, ``"2500ms"``); a value that is no duration, or a backoff
    ``base`` that is no number, is refused here, before any storage access.

    Example:
        >>> options = {"timeout": "5", "connect_timeout": "2.5s", "retry_timeout": "1m 30s"}
        >>> write_durations_as_object_store_reads_them(options); options
        {'timeout': '5s', 'connect_timeout': '2500ms', 'retry_timeout': '1m 30s'}
    """
    for key in (*TIMEOUTS, *_BACKOFF_DURATIONS):
        if key in options:
            seconds, text = duration_seconds(options[key], key), options[key].strip()
            if re.fullmatch(r"\d+(\.\d+)?", text):
                options[key] = f"{text}s" if text.isdigit() else f"{round(seconds * 1000)}ms"
            elif "." in text:
                options[key] = f"{round(seconds * 1000)}ms"
    base = options.get("backoff_config.base")
    if base is not None:
        try:
            float(base)
        except ValueError:
            raise LakeConfigurationError(f"storage option backoff_config.base {base!r} is not a number") from None
