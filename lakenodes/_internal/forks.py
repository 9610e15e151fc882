"""A process forked from one in which deltalake or polars had started their threads cannot use them.

``os.fork`` (and what forks: multiprocessing's ``fork`` start method, the Linux default before
Python 3.14; ``ProcessPoolExecutor``; Celery's prefork pool; gunicorn ``--preload``) copies only
the thread that forked. The tokio runtime of delta-rs (and of polars' I/O) and polars' own thread
pool come along as memory whose threads are gone: the child's next polars call waits for them
forever, and delta-rs panics. lakenodes' own threads start afresh in a child (see
:mod:`.background`, :mod:`.afterwards`); those of its dependencies cannot. So just before a fork
the parent notes which of those threads run (their names, from ``/proc``); a child forked then
refuses every lake operation at once with :class:`~lakenodes.errors.ForkedProcessError`, one line
that names the fix, rather than hang. A child forked before any of them started (a parent that
only imported lakenodes and built its nodes) works as any process does.

Example:
    >>> refuse_if_forked_after_threads()  # this process was not forked with such threads: nothing
"""

from __future__ import annotations

import os
import re

from ..errors import ForkedProcessError

#: names of the threads a forked child cannot do without: tokio runtimes (delta-rs, polars' I/O)
#: and polars' thread pool (``polars-0``, ...; not the cleaner thread ``import polars`` starts)
_STRANDED = re.compile(r"tokio-.*|polars-\d+")

_stranded_at_fork: list[str] = []  # in the parent, set just before each fork
_refusal: str | None = None  # in a child forked with such threads, why it refuses


def refuse_if_forked_after_threads() -> None:
    """Raise :class:`ForkedProcessError` in a child forked after deltalake or polars started threads."""
    if _refusal is not None:
        raise ForkedProcessError(_refusal)


def _running_threads() -> list[str]:
    """The names of this process's threads (Linux ``/proc``; none where there is no ``/proc``)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return []
    names = []
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                names.append(comm.read().strip())
        except OSError:  # a thread that ended meanwhile
            continue
    return names


def _note_threads_before_fork() -> None:
    _stranded_at_fork[:] = sorted({name for name in _running_threads() if _STRANDED.fullmatch(name)})


def _refuse_in_child() -> None:
    global _refusal
    if _stranded_at_fork:
        _refusal = (
            f"this process was forked from process {os.getppid()} after deltalake/polars started threads there "
            f"({', '.join(_stranded_at_fork[:4])}), which a forked child does not have, so lakenodes would hang here: "
            "start workers with multiprocessing.get_context('spawn') (or 'forkserver'), run Celery with "
            "--pool=threads or --pool=solo, run gunicorn without --preload, or build and use the Lake only "
            "in the worker")


os.register_at_fork(before=_note_threads_before_fork, after_in_child=_refuse_in_child)
