"""Threads kept for the short background jobs of a run (the first statistics read while the catalog
claim is made, catalog writes to different ledgers):
a thread started per job costs a scheduling round trip, a few ms on a busy machine, every run.

A job runs in a copy of the submitter's context (its lake and namespace). Jobs must never wait for
other jobs of this pool: with every thread busy, that wait would not end.

A process forked from one that used the pool (``os.fork``, multiprocessing's ``fork`` start method)
starts a pool of its own: the inherited one counts its idle threads, which the child does not have,
so a job submitted there would never run and its caller would wait forever.

Example:
    >>> in_background(lambda: 6 * 7).result()
    42
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_MAX_THREADS = 32  # idle threads are reused; more are only started while that many jobs run at once
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def in_background(function: Callable[[], T]) -> Future[T]:
    """``function()`` started in a pooled thread, in a copy of the current context."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="lakenodes-background")
        pool = _pool
    return pool.submit(contextvars.copy_context().run, function)


def _forget_in_child() -> None:
    """After a fork, in the child: the parent's threads are gone; the next job starts a new pool."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()  # a lock a parent's thread held when it forked stays held


os.register_at_fork(after_in_child=_forget_in_child)
