"""User code called where an asyncio event loop is running: a Jupyter notebook's cells run inside
the kernel's loop, so a node's ``update()`` that calls ``asyncio.run(...)`` (an async HTTP client)
failed there with ``asyncio.run() cannot be called from a running event loop`` while the same
node ran as a script. :func:`outside_event_loop` calls such code in a helper thread, which has no
running loop, with the caller's context (the ``use_lake`` block, the hash namespace).

A Ctrl-C (a notebook's interrupt) reaches the waiting caller: it is passed on to the helper thread
while that thread still runs the call, which then stops at its next Python instruction (a blocking
call first returns), and the caller waits for it to end, so nothing of the interrupted call goes on
behind the next cell; a second Ctrl-C stops waiting. The caller always raises ``KeyboardInterrupt``
(the user pressed stop), also when the call had just finished: its result is dropped, as it would
be had the call run in the caller's thread, and the finished helper thread is not interrupted.

Example:
    >>> import asyncio
    >>> async def cell():  # a notebook cell: the loop runs in this very thread
    ...     return outside_event_loop(lambda: asyncio.run(asyncio.sleep(0, "ran")))
    >>> asyncio.run(cell())
    'ran'
"""

from __future__ import annotations

import contextvars
import ctypes
import sys
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def outside_event_loop(function: Callable[[], T]) -> T:
    """``function()``, called in this thread unless an asyncio event loop runs in it; then in a
    helper thread with this thread's context, its result returned or its exception raised here."""
    asyncio = sys.modules.get("asyncio")  # never imported: no loop runs (and a cron job saves its import)
    if asyncio is None:
        return function()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function()
    call: _HelperCall[T] = _HelperCall(function)
    context = contextvars.copy_context()
    helper = threading.Thread(target=context.run, args=(call.run,), name="lakenodes-outside-loop", daemon=True)
    try:
        helper.start()
        _wait_for(helper, call.ended)
    except KeyboardInterrupt:
        call.interrupt()
        _wait_for(helper, call.ended)  # a second Ctrl-C stops waiting
        raise
    if call.failure:
        raise call.failure[0]
    return call.outcome[0]


class _HelperCall(Generic[T]):
    """``function()`` as the helper thread runs it, and a Ctrl-C passed on to it only while it runs:
    one that came before the call began cancels it, one after it finished is the caller's alone."""

    def __init__(self, function: Callable[[], T]) -> None:
        self.function = function
        self.outcome: list[T] = []
        self.failure: list[BaseException] = []
        self.ended = threading.Event()
        self._guard = threading.Lock()  # orders interrupt() against the call's beginning and end
        self._state = "waiting"  # then "running" and "finished", or "cancelled"
        self._thread_id = 0

    def run(self) -> None:
        """Call ``function()`` in this (the helper) thread unless cancelled; set ``ended``."""
        try:
            try:
                with self._guard:
                    if self._state == "cancelled":
                        return
                    self._state, self._thread_id = "running", threading.get_ident()
                self.outcome.append(self.function())
            finally:
                with self._guard:
                    self._state = "finished"  # interrupt() sends nothing from here on
                _checkpoint()  # one it sent before is raised by now, here at the latest
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            self.failure.append(error)
        finally:
            self.ended.set()

    def interrupt(self) -> None:
        """Raise ``KeyboardInterrupt`` in the helper thread if it runs the call; cancel a call not
        begun; leave a finished one alone."""
        with self._guard:
            if self._state == "running":
                _raise_in(self._thread_id, KeyboardInterrupt)
            elif self._state == "waiting":
                self._state = "cancelled"


def _wait_for(thread: threading.Thread, ended: threading.Event) -> None:
    """Wait until ``thread`` has set ``ended`` (or never ran), in short waits: polars installs its
    SIGINT handler with ``SA_RESTART``, so a Ctrl-C does not end an untimed wait; Python raises it
    between two (``join()`` is not used: one a Ctrl-C interrupts takes the thread for ended)."""
    while thread.is_alive() and not ended.wait(0.1):
        pass


def _checkpoint() -> None:
    """Nothing: entering a Python function raises an exception another thread set for this one
    (``PyThreadState_SetAsyncExc``), which otherwise waits for a later instruction."""


def _raise_in(thread_id: int, error: type[BaseException]) -> None:
    """Raise ``error`` in the running thread ``thread_id`` at its next Python instruction (clearing
    one set but not raised is not done: CPython 3.11 then spins at the thread's next call)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(error))
