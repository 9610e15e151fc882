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
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from .own_threads import OwnThreads

T = TypeVar("T")

_MAX_THREADS = 32  # idle threads are reused; more are only started while that many jobs run at once
_threads = OwnThreads(_MAX_THREADS, "lakenodes-background")


def in_background(function: Callable[[], T]) -> Future[T]:
    """``function()`` started in a pooled thread, in a copy of the current context."""
    with _threads.lock:
        pool = _threads.executor()
    return pool.submit(contextvars.copy_context().run, function)
