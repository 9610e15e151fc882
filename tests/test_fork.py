"""Processes forked from one that used lakenodes (``os.fork``, multiprocessing's ``fork`` start
method, Celery's prefork pool, gunicorn ``--preload``): a child never hangs silently.

Every fork here is bounded: a child that does not finish in time is killed and the test fails.
"""

from __future__ import annotations

import os
import signal
import time

from lakenodes._internal.afterwards import afterwards, settle
from lakenodes._internal.background import in_background

CHILD_SECONDS = 30


def forked(child) -> int:
    """Fork; in the child call ``child()`` and exit 0 (1 if it raised); in the parent wait at most
    CHILD_SECONDS for the child's exit code (killed and -1 past that)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            child()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_SECONDS
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


def test_a_forked_child_runs_background_and_later_jobs_of_its_own():
    assert in_background(lambda: 6 * 7).result() == 42  # the parent's pools have threads now
    afterwards(lambda: None, "%s: %s", "parent job")
    settle()
    done = []

    def child() -> None:
        assert in_background(lambda: "background").result(timeout=CHILD_SECONDS / 3) == "background"
        afterwards(lambda: done.append("later"), "%s: %s", "child job")
        settle()
        assert done == ["later"]

    assert forked(child) == 0  # the old child waited forever for threads it did not have (-1)
