"""Work a run leaves for after it returns: caches saved for other processes (a table's file facts),
which nothing in this process waits for.

Jobs run one at a time, in the order they were queued, in one thread of their own: two saves of
the same table's cache land in the order of the runs that queued them. A job runs in a copy of its
submitter's context. ``settle()`` waits for the jobs queued so far: readers of a saved cache call
it first (they never read a save half done, or one about to be replaced), and so does
``lakenodes.clear_caches()``. An interpreter that exits waits for them first, while threads can
still be started (a save on S3 maps its requests over threads); a process killed before that
loses only the cache, which readers rebuild.

A process forked from one that queued jobs starts afresh: the parent's jobs are the parent's to
finish (the child would wait at exit for jobs no thread of its own runs), and its first job starts
a thread of its own.

A job's failure is logged as a warning: it saves a cache, so it is never the error of the run
that queued it.

Example:
    >>> saved = []
    >>> afterwards(lambda: saved.append("facts of version 4"), "could not save the facts of %s: %s", "t")
    >>> settle()
    >>> saved
    ['facts of version 4']
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger(__name__)

_THREAD_NAME = "lakenodes-afterwards"
_pool: ThreadPoolExecutor | None = None
_queued: list[Future] = []  # the jobs not known to be done
_lock = threading.Lock()


def afterwards(job: Callable[[], object], failure: str, *args: object) -> None:
    """Queue ``job`` to run after the jobs queued before it; a failure is logged as a warning,
    ``failure % (*args, error)``."""
    global _pool
    context = contextvars.copy_context()

    def run() -> None:
        try:
            context.run(job)
        except Exception as error:  # noqa: BLE001 - a cache's save: logged, never the run's error
            logger.warning(failure, *args, error)

    with _lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_THREAD_NAME)
            # threading's exit hooks run last-registered first: this one (registered after the
            # import above registered concurrent.futures') runs before the one that refuses new
            # threads from then on; plain atexit hooks run later still
            threading._register_atexit(settle)  # type: ignore[attr-defined]
        _queued[:] = [queued for queued in _queued if not queued.done()]
        _queued.append(_pool.submit(run))


def settle() -> None:
    """Wait for the jobs queued so far. A no-op in the jobs' own thread (a job never waits for the
    ones queued after it)."""
    if threading.current_thread().name.startswith(_THREAD_NAME):
        return
    with _lock:
        jobs = list(_queued)
    if jobs:
        wait(jobs)


def _forget_in_child() -> None:
    """After a fork, in the child: forget the parent's jobs and its thread (gone in the child)."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()  # a lock a parent's thread held when it forked stays held
    _queued.clear()


os.register_at_fork(after_in_child=_forget_in_child)
