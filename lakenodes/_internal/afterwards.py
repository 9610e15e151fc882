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
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait

from .own_threads import OwnThreads

logger = logging.getLogger(__name__)

_THREAD_NAME = "lakenodes-afterwards"
_queued: list[Future] = []  # the jobs not known to be done


def afterwards(job: Callable[[], object], failure: str, *args: object) -> None:
    """Queue ``job`` to run after the jobs queued before it; a failure is logged as a warning,
    ``failure % (*args, error)``."""
    context = contextvars.copy_context()

    def run() -> None:
        try:
            context.run(job)
        except Exception as error:  # noqa: BLE001 - a cache's save: logged, never the run's error
            logger.warning(failure, *args, error)

    with _threads.lock:
        pool = _threads.executor()
        _queued[:] = [queued for queued in _queued if not queued.done()]
        _queued.append(pool.submit(run))


def settle() -> None:
    """Wait for the jobs queued so far. A no-op in the jobs' own thread (a job never waits for the
    ones queued after it)."""
    if threading.current_thread().name.startswith(_THREAD_NAME):
        return
    with _threads.lock:
        jobs = list(_queued)
    if jobs:
        wait(jobs)


def _wait_at_exit() -> None:
    # threading's exit hooks run last-registered first: this one (registered once the pool started,
    # after importing concurrent.futures registered its own) runs before the one that refuses new
    # threads from then on; plain atexit hooks run later still
    threading._register_atexit(settle)  # type: ignore[attr-defined]


# a forked child forgets the parent's jobs (the parent's to finish) with the parent's thread
_threads = OwnThreads(1, _THREAD_NAME, started=_wait_at_exit, forgotten=_queued.clear)
