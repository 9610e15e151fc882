"""User code called where an asyncio event loop is running: a Jupyter notebook's cells run inside
the kernel's loop, so a node's ``update()`` that calls ``asyncio.run(...)`` (an async HTTP client)
failed there with ``asyncio.run() cannot be called from a running event loop`` while the same
node ran as a script. :func:`outside_event_loop` calls such code in a helper thread, which has no
running loop, with the caller's context (the ``use_lake`` block, the hash namespace).

A Ctrl-C (a notebook's interrupt) reaches the waiting caller: it is passed on to the helper thread,
which stops at its next Python instruction (a blocking call first returns), and the caller waits
for it to end, so nothing of the interrupted call goes on behind the next cell; a second Ctrl-C
stops waiting.

Example:
    >>> import asyncio
    >>> async def cell():  # a notebook cell: the loop runs in this very thread
    ...     return outside_event_loop(lambda: asyncio.run(asyncio.sleep(0, "ran")))
    >>> asyncio.run(cell())
    'ran'
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def outside_event_loop(function: Callable[[], T]) -> T:
    """``function()``, called in this thread unless an asyncio event loop runs in it; then in a
    helper thread with this thread's context, its result returned or its exception raised here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function()
    outcome: list[T] = []
    failure: list[BaseException] = []
    ended, stopped = threading.Event(), threading.Event()

    def call() -> None:
        try:
            if not stopped.is_set():  # a Ctrl-C that came while the thread started: the call never begins
                outcome.append(function())
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            failure.append(error)
        finally:
            ended.set()

    context = contextvars.copy_context()
    helper = threading.Thread(target=context.run, args=(call,), name="lakenodes-outside-loop", daemon=True)
    try:
        helper.start()
        _wait_for(helper, ended)
    except KeyboardInterrupt:
        stopped.set()
        _raise_in(helper, KeyboardInterrupt)
        _wait_for(helper, ended)  # a second Ctrl-C stops waiting
        raise
    if failure:
        raise failure[0]
    return outcome[0]


def _wait_for(thread: threading.Thread, ended: threading.Event) -> None:
    """Wait until ``thread`` has set ``ended`` (or never ran), in short waits: polars installs its
    SIGINT handler with ``SA_RESTART``, so a Ctrl-C does not end an untimed wait; Python raises it
    between two (``join()`` is not used: one a Ctrl-C interrupts takes the thread for ended)."""
    while thread.is_alive() and not ended.wait(0.1):
        pass


def _raise_in(thread: threading.Thread, error: type[BaseException]) -> None:
    """Raise ``error`` in ``thread`` at its next Python instruction (a thread that has no ident yet
    has not begun the call)."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(error))

