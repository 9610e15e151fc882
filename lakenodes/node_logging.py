"""Node log lines a launcher script shows without configuring logging.

A seeds-style launcher calls ``node.run()`` and expects ``self.logger.info(...)`` lines on its
terminal. Python shows nothing below WARNING until logging is configured, so lakenodes attaches
one stderr handler to ``lakenodes.node`` that speaks only while the program has configured no
logging of its own: once the root logger has a handler, the lines go there alone (no duplicates)
and the program's levels decide.

Example:
    >>> show_logs_by_default()
    >>> logging.getLogger("lakenodes.node").level == logging.INFO
    True
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

NODE_LOGGER = "lakenodes.node"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _UntilConfigured(logging.StreamHandler):
    """Writes to stderr only while the program has not configured logging itself."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


class _ProgramLevels(logging.Filter):
    """Once the program configures logging, its levels decide (as if lakenodes had set none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        root = logging.getLogger()
        return not root.handlers or record.levelno >= logging.getLogger("lakenodes").getEffectiveLevel()


def show_logs_by_default() -> None:
    """Install (once) the handler that shows node INFO lines while logging is unconfigured."""
    logger = logging.getLogger(NODE_LOGGER)
    if any(isinstance(handler, _UntilConfigured) for handler in logger.handlers):
        return
    handler = _UntilConfigured(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    logger.addFilter(_ProgramLevels())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


@contextlib.contextmanager
def debug_logging(enabled: bool) -> Iterator[None]:
    """With ``enabled``, show lakenodes' DEBUG lines for the duration of the block."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("lakenodes")
    previous = logger.level
    handler = _UntilConfigured(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(lambda record: not record.name.startswith(NODE_LOGGER))  # shown by the node handler
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
