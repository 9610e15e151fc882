"""The garbage collector of a ``lakenodes`` command's own process (never of a process that imports
lakenodes as a library: only the ``lakenodes`` entry point pauses it).

A command is a short-lived process whose imports (typer, rich, polars, pyarrow, deltalake,
pydantic, the user's module) create ~100k objects that live until it exits; the collector would
scan them again and again while they are created (~40 ms of a ~450 ms cron job). So the entry
point pauses it before the imports, and the command resumes it once set up, freezing what exists
then (``gc.freeze``: those objects are never scanned again), before any user code computes rows:
garbage made from there on is collected as usual.

Example (nothing was paused here, so resuming changes nothing):
    >>> resume_collection()
    >>> gc.isenabled()
    True
"""

from __future__ import annotations

import gc

_paused = False


def pause_collection() -> None:
    """Pause the collector for the start-up of this command's process (unless it was off already)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collection() -> None:
    """Freeze what the process holds now and collect again, if ``pause_collection`` paused it."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
