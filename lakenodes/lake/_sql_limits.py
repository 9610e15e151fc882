"""Time and memory limits of read-only SQL queries (private to :mod:`lakenodes.lake.sql`).

Limits come from, in order: the keyword arguments of ``run_query`` / ``run_readonly_query``, the environment
variables ``LAKENODES_SQL_TIMEOUT`` (seconds) and ``LAKENODES_SQL_MEMORY_LIMIT`` (bytes, with an optional
binary suffix such as ``512MiB`` or ``2G``), read at call time, and the defaults (30 s, 1 GiB).

Example:
    >>> resolve_limits(timeout_s=5, memory_limit="256MiB", environ={})
    QueryLimits(timeout_s=5.0, memory_limit=268435456)
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TIMEOUT_S",
    "MEMORY_ENV",
    "TIMEOUT_ENV",
    "QueryLimits",
    "Refusal",
    "format_bytes",
    "parse_bytes",
    "resolve_limits",
]

TIMEOUT_ENV = "LAKENODES_SQL_TIMEOUT"
MEMORY_ENV = "LAKENODES_SQL_MEMORY_LIMIT"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MEMORY_LIMIT = 1 << 30
MIN_MEMORY_LIMIT = 16 << 20
MAX_MEMORY_LIMIT = 1 << 40
MAX_TIMEOUT_S = 24 * 3600.0

T = TypeVar("T")
_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}
_BYTES_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_SECONDS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$", re.IGNORECASE)


class Refusal(Exception):
    """An error envelope to return: ``kind``, ``message``, ``retryable``."""

    def __init__(self, kind: str, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind, self.message, self.retryable = kind, message, retryable


@dataclass(frozen=True)
class QueryLimits:
    """Per-query limits: wall-clock ``timeout_s`` and ``memory_limit`` in bytes."""

    timeout_s: float
    memory_limit: int

    def timeout_message(self) -> str:
        """One-line refusal naming the time limit and how to raise it."""
        return (
            f"query stopped: it ran longer than the SQL time limit of {self.timeout_s:g} s; "
            f"raise it with run_query(..., timeout_s=SECONDS) or the {TIMEOUT_ENV} environment variable"
        )

    def memory_message(self, detail: str = "") -> str:
        """One-line refusal naming the memory limit and how to raise it."""
        return (
            f"query stopped: it needed more than the SQL memory limit of {format_bytes(self.memory_limit)}"
            f"{f' ({detail})' if detail else ''}; raise it with run_query(..., memory_limit=BYTES) or the "
            f"{MEMORY_ENV} environment variable (e.g. 4GiB)"
        )


def parse_bytes(value: int | str) -> int:
    """Bytes from an int or a string with an optional binary suffix (K, M, G, T; ``B``/``iB`` optional).

    >>> parse_bytes("512MiB"), parse_bytes("2g"), parse_bytes(1024), parse_bytes("1.5K")
    (536870912, 2147483648, 1024, 1536)
    """
    if isinstance(value, bool):
        raise ValueError(f"not a byte size: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (m := _BYTES_RE.match(value)):
        return int(float(m.group(1)) * (1 << _UNITS[m.group(2).lower()]))
    raise ValueError(f"not a byte size: {value!r} (use e.g. 1073741824, 512MiB or 2GiB)")


def _parse_seconds(value: float | int | str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and (m := _SECONDS_RE.match(value)):
        scale = {"ms": 0.001, "m": 60.0}.get((m.group(2) or "s").lower(), 1.0)
        return float(m.group(1)) * scale
    raise ValueError(f"not a duration: {value!r} (use seconds, e.g. 30, 2.5 or 500ms)")


def format_bytes(n: int) -> str:
    """Human size, binary units.

    >>> format_bytes(1 << 30), format_bytes(64 << 20), format_bytes(1000)
    ('1 GiB', '64 MiB', '1000 B')
    """
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.4g} {unit}"
    return f"{n} B"


def resolve_limits(
    timeout_s: float | str | None = None,
    memory_limit: int | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> QueryLimits:
    """Limits from the arguments, else the environment (read now), else the defaults.

    Raises :class:`Refusal` (``invalid_argument``) naming the argument or variable for a bad value.

    >>> resolve_limits(environ={"LAKENODES_SQL_TIMEOUT": "2.5", "LAKENODES_SQL_MEMORY_LIMIT": "1G"})
    QueryLimits(timeout_s=2.5, memory_limit=1073741824)
    """
    env = os.environ if environ is None else environ
    timeout = _pick(timeout_s, "timeout_s", env, TIMEOUT_ENV, DEFAULT_TIMEOUT_S, _parse_seconds)
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
        raise Refusal(
            "invalid_argument", f"SQL timeout must be in (0, {MAX_TIMEOUT_S:g}] seconds, got {timeout!r}"
        )
    memory = _pick(memory_limit, "memory_limit", env, MEMORY_ENV, DEFAULT_MEMORY_LIMIT, parse_bytes)
    if not MIN_MEMORY_LIMIT <= memory <= MAX_MEMORY_LIMIT:
        raise Refusal(
            "invalid_argument",
            f"SQL memory limit must be between {format_bytes(MIN_MEMORY_LIMIT)} and "
            f"{format_bytes(MAX_MEMORY_LIMIT)}, got {memory!r} bytes",
        )
    return QueryLimits(timeout, memory)


def _pick(
    value: Any, argument: str, env: Mapping[str, str], variable: str, default: T, parse: Callable[[Any], T]
) -> T:
    """Parse the argument if given, else the environment variable if set, else return the default."""
    source, raw = (argument, value) if value is not None else (variable, env.get(variable))
    if raw is None or (source == variable and not str(raw).strip()):
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise Refusal("invalid_argument", f"invalid {source}: {exc}") from None
