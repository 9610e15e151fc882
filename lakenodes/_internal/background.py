"""Threads kept for the short background jobs of a run (the first statistics read while the catalog
claim is made, catalog writes to different ledgers, file facts saved for other processes): a
thread started per job costs a scheduling round trip, a few ms on a busy machine, every run.

A job runs in a copy of the submitter's context (its lake and namespace). Jobs must never wait for
other jobs of this pool: with every thread busy, that wait would not end. The interpreter waits for
every job before it exits (the pool's threads are joined at exit).

Example:
    >>> in_background(lambda: 6 * 7).result()
    42
    >>> _ = in_background_in_order("example", lambda: 1)
    >>> wait_for_background()
"""

from __future__ import annotations

import atexit
import contextvars
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")

_MAX_THREADS = 32  # idle threads are reused; more are only started while that many jobs run at once
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_latest: dict[Hashable, Future] = {}  # by key: the last job submitted with in_background_in_order


def in_background(function: Callable[[], T]) -> Future[T]:
    """``function()`` started in a pooled thread, in a copy of the current context."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="lakenodes-background")
        pool = _pool
    return pool.submit(contextvars.copy_context().run, function)


def in_background_in_order(key: Hashable, function: Callable[[], T]) -> Future[T]:
    """``function()`` started in a pooled thread once the previous job of ``key`` submitted here has
    finished (the submitter waits for it, usually long done): jobs of one key run in order."""
    with _lock:
        previous = _latest.get(key)
    if previous is not None:
        wait([previous])
    future = in_background(function)
    with _lock:
        _latest[key] = future
    return future


def wait_for_background() -> None:
    """Wait for every job submitted with ``in_background_in_order`` until now."""
    with _lock:
        pending = list(_latest.values())
        _latest.clear()
    wait(pending)


# At exit, wait for those jobs while thread pools still take work (a save of file facts on S3 maps its
# requests over threads): ``threading``'s exit hooks run newest first, so this one runs before the
# one ``concurrent.futures`` registered on import (above), after which every submit raises. Without
# that hook (a private one, there since Python 3.9), ``atexit`` is the best left: a save may then fail
# (logged), which costs the next process a slower first read, never data.
getattr(threading, "_register_atexit", atexit.register)(wait_for_background)
