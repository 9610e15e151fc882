"""Worker process of :mod:`lakenodes.lake._sql_sandbox`: runs one read-only query at a time (private).

Started by :mod:`lakenodes.lake._sql_sandbox` (or as ``python -m lakenodes.lake._sql_worker IDLE_SECONDS``). Protocol on stdin/stdout: length-prefixed
pickle frames (:func:`lakenodes.lake._sql_sandbox.write_frame`). It first answers ``("ready", pid)``; then, per
request dict (``uri, sql, names, storage_options, max_rows, memory_limit``) it answers ``("ok", rows)`` or
``("error", kind, message, retryable)``. Anything printed goes to stderr, never into the protocol.

While a query runs, on Linux the address space is capped (``RLIMIT_AS``: current size + memory limit +
``max(memory limit, 2 GiB)`` of headroom for thread stacks and allocator reservations), so one giant
allocation fails at once (Rust then aborts the worker, reported as ``resources_exhausted``); the parent
watches resident memory for the exact limit. Core dumps are disabled.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import os
import select
import sys
from typing import Any

import datafusion  # noqa: F401 - imported before answering ready (sql.py defers it)
import pyarrow as pa

from .._internal.json_values import json_float
from ._sql_limits import Refusal
from ._sql_sandbox import read_frame, write_frame
from .sql import _clean, _execute  # the heavy imports (datafusion, deltalake) happen before answering ready

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

_HEADROOM = 2 << 30


def execute_rows(
    uri: str,
    sql: str,
    names: list[str],
    storage_options: dict[str, str] | None,
    max_rows: int,
    memory_limit: int,
    version: int | None = None,
) -> list[dict[str, Any]]:
    """Plan, check and run ``sql`` (see :func:`lakenodes.lake.sql._execute`); at most ``max_rows + 1`` rows."""
    return _to_rows(_execute(uri, sql, names, storage_options, max_rows, memory_limit, version))


def _to_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Arrow table to JSON-safe row dicts; duplicate column names get ``_2``, ``_3``... suffixes."""
    names: list[str] = []
    for name in table.column_names:
        unique, k = name, 1
        while unique in names:
            k += 1
            unique = f"{name}_{k}"
        names.append(unique)
    columns = [[_jsonable(v) for v in column.to_pylist()] for column in table.columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _jsonable(value: Any) -> Any:
    """datetime/date/time -> ISO-8601 (tz-aware values keep their offset), NaN/inf -> "NaN"/"Infinity"
    (see ``json_values``), bytes -> base64, Decimal -> str, timedelta (durations) -> float seconds,
    month-day-nano intervals -> dict."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else json_float(float(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, pa.MonthDayNano):
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _cap_address_space(memory_limit: int | None) -> None:
    """Cap (or, with None, uncap) this process's address space; Linux only, best effort."""
    if resource is None or not sys.platform.startswith("linux"):
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = hard
    if memory_limit is not None:
        try:
            with open("/proc/self/statm", "rb") as f:
                size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            return
        soft = size + memory_limit + max(memory_limit, _HEADROOM)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (ValueError, OSError):
        pass


def _answer(request: dict[str, Any]) -> tuple:
    _cap_address_space(request["memory_limit"])
    try:
        return ("ok", execute_rows(**request))
    except Refusal as exc:
        return ("error", exc.kind, exc.message, exc.retryable)
    except MemoryError:
        return ("error", "resources_exhausted", "MemoryError", False)
    except Exception as exc:
        return ("error", "execution_error", _clean(exc), False)
    finally:
        _cap_address_space(None)


def _wait_for_request(stream: Any, idle_s: float) -> bool:
    """True when a request (or EOF) is readable within ``idle_s`` seconds; always True where unsupported."""
    try:
        return bool(select.select([stream], [], [], idle_s)[0])
    except (OSError, ValueError):  # pragma: no cover - e.g. pipes on Windows
        return True


def main(argv: list[str]) -> int:
    """Serve requests from stdin until EOF or ``argv[0]`` idle seconds."""
    idle_s = float(argv[0]) if argv else 300.0
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray output must not corrupt the protocol
    protocol_in = sys.stdin.buffer
    if resource is not None:
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (ValueError, OSError):
            pass
    write_frame(protocol_out, ("ready", os.getpid()))
    while True:
        if not _wait_for_request(protocol_in, idle_s):
            return 0
        try:
            request = read_frame(protocol_in)
        except EOFError:
            return 0
        write_frame(protocol_out, _answer(request))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
