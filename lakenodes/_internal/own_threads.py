"""lakenodes' own thread pools (:mod:`.background`, :mod:`.afterwards`): each started on first use,
and started afresh in a process forked from one that used it (``os.fork``, multiprocessing's
``fork`` start method). The child has none of the parent's threads: the inherited pool counts idle
threads it does not have, so a job submitted there would never run, and a lock a parent's thread
held when it forked stays held.

Example:
    >>> pool = OwnThreads(2, "lakenodes-example")
    >>> with pool.lock:
    ...     pool.executor().submit(lambda: 6 * 7).result()
    42
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class OwnThreads:
    """A thread pool of ``max_workers`` threads named ``thread_name_prefix``, started by the first
    :meth:`executor` call (then ``started()`` is called: e.g. an exit hook registered) and forgotten
    in a forked child (then ``forgotten()`` is called: what the pool's owner kept of the parent's jobs)."""

    def __init__(self, max_workers: int, thread_name_prefix: str, started: Callable[[], None] | None = None,
                 forgotten: Callable[[], None] | None = None) -> None:
        self.lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._max_workers, self._prefix = max_workers, thread_name_prefix
        self._started, self._forgotten = started, forgotten
        os.register_at_fork(after_in_child=self._forget_in_child)

    def executor(self) -> ThreadPoolExecutor:
        """The pool, started now on first use; call it holding :attr:`lock`."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix=self._prefix)
            if self._started is not None:
                self._started()
        return self._executor

    def _forget_in_child(self) -> None:
        """After a fork, in the child: the parent's threads are gone; the next job starts a new pool."""
        self._executor, self.lock = None, threading.Lock()
        if self._forgotten is not None:
            self._forgotten()
