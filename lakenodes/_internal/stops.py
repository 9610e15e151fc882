"""Ctrl-C and SIGTERM stop a command even when another thread of the process caught them.

Python runs signal handlers in the main thread only, between two bytecodes; a blocking call there
(``time.sleep`` in a node's ``update()``, a socket read) ends early only when the signal interrupts
that very thread. The kernel hands a signal sent to the process to any thread that does not block
it, and a ``lakenodes run`` process has 20-odd threads (delta-rs' tokio workers, polars', pyarrow's,
lakenodes' own): when one of them catches the signal, the main thread sleeps on, and the stop waits
for the blocking call to end (a scheduler's grace period may run out first; tested by sending
SIGTERM to a tokio worker with ``tgkill``).

So the command, and each spawn worker of ``lakenodes run --workers`` (which the command relays a
SIGTERM to), keeps a relay thread: every signal Python handles writes its number to a pipe
(``signal.set_wakeup_fd``), whatever thread caught it; the relay reads it and, when the main thread
has not run the SIGTERM handler within ``GRACE_S`` (after a Ctrl-C: always), sends that thread a
signal of its own (``NUDGE``, whose handler does nothing), which interrupts its blocking call:
Python then runs the stop's handler, pending since the other thread caught it. A stop the main
thread caught itself is handled at once, as before.

Example:
    >>> from lakenodes._internal import stops
    >>> before = stops._handled
    >>> counted(lambda signum, frame: f"handled {signum}")(15, None), stops._handled - before
    ('handled 15', 1)
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

GRACE_S = 0.2
STOPS = frozenset({signal.SIGINT, signal.SIGTERM})
NUDGE = signal.SIGRTMAX - 3 if hasattr(signal, "SIGRTMAX") else None  # Linux; elsewhere no relay

_handled = 0  # how many times the SIGTERM handler ran (in the main thread)


def counted(handler: Callable[[int, FrameType | None], Any]) -> Callable[[int, FrameType | None], Any]:
    """``handler``, counting its runs (before it raises)."""
    def run(signum: int, frame: FrameType | None) -> Any:
        global _handled
        _handled += 1
        return handler(signum, frame)

    return run


def relay_stops(on_sigterm: Callable[[int, FrameType | None], Any]) -> None:
    """Install the SIGTERM handler ``on_sigterm`` and, where the platform has the signals for it, the
    relay thread. Ctrl-C keeps Python's own handler (``asyncio.run`` in an ``update()`` then cancels
    its task first, as it does for that handler only): a Ctrl-C always gets the main thread a nudge,
    needless when it caught it itself. Call it from the main thread, before the command starts its
    threads."""
    signal.signal(signal.SIGTERM, counted(on_sigterm))
    if NUDGE is None or not hasattr(signal, "pthread_kill"):
        return
    signal.signal(NUDGE, lambda signum, frame: None)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    main = threading.main_thread().ident
    assert main is not None
    threading.Thread(target=_relay, args=(read_fd, main), name="lakenodes-stops", daemon=True).start()


def _relay(read_fd: int, main: int) -> None:
    while True:
        handled = _handled  # before the byte: its stop's handler, when the main thread runs it, counts after
        try:
            caught = os.read(read_fd, 64)
        except OSError:
            return
        if not caught:
            return
        if STOPS.isdisjoint(caught):  # the nudge's own byte, or another signal's
            continue
        time.sleep(GRACE_S)
        # a SIGTERM the main thread has not handled was caught by another thread (Ctrl-C's handler,
        # Python's own, is not counted); a needless nudge costs nothing: its handler does nothing
        if _handled == handled or signal.SIGINT in caught:
            signal.pthread_kill(main, NUDGE)
