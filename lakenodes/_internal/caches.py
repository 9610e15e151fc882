"""The registry of process-wide caches: every module-level cache registers here, so the state a
process keeps is listed in one place and ``lakenodes.clear_caches()`` empties all of it.

Caches hold only what can be read again (opened Delta tables, snapshots, immutable file facts,
catalog records already written): clearing them costs speed, never correctness.

Example:
    >>> cache: dict[str, int] = register_cache("example.squares", {})
    >>> cache["two"] = 4
    >>> "example.squares" in registered_caches()
    True
    >>> clear_caches()
    >>> cache
    {}
    >>> unregister_cache("example.squares")
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .afterwards import settle

C = TypeVar("C")

_clearers: dict[str, Callable[[], Any]] = {}
_lock = threading.Lock()


def register_cache(name: str, cache: C, clear: Callable[[], Any] | None = None) -> C:
    """Register ``cache`` (anything with ``.clear()``, or pass ``clear``) under ``name``; returns it."""
    with _lock:
        _clearers[name] = clear if clear is not None else cache.clear  # type: ignore[attr-defined]
    return cache


def unregister_cache(name: str) -> None:
    with _lock:
        _clearers.pop(name, None)


def registered_caches() -> list[str]:
    """Names of every registered cache, sorted."""
    with _lock:
        return sorted(_clearers)


def clear_caches() -> None:
    """Empty every registered cache of this process (e.g. between tests, or after files changed
    behind lakenodes' back), once the saves runs left for later (:mod:`.afterwards`) are done."""
    settle()
    with _lock:
        clearers = list(_clearers.values())
    for clear in clearers:
        clear()
