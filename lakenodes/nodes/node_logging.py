"""Node log lines: each names its node instance (:class:`NodeLogger`), and a launcher script shows
them without configuring logging.

A seeds-style launcher calls ``node.run()`` and expects ``self.logger.info(...)`` lines on its
terminal. Python shows nothing below WARNING until logging is configured, so while the program
has configured no logging of its own, lakenodes lets ``lakenodes.node`` speak at INFO through one
stderr handler. Once the program configures logging (a handler on the root logger, e.g.
``logging.basicConfig``, or on ``lakenodes``), that handler falls silent and lakenodes' INFO level
is withdrawn at the next ``run()``: the program's handlers show each line once, at the program's
levels (``basicConfig(level=logging.WARNING)`` hides node INFO lines).

Python consults a logger's level and filters only for records logged on that very logger, not
for records its children (``lakenodes.node.MyNode``) pass up, so the level itself must follow the
program's configuration: :func:`show_logs_by_default` re-checks it on every ``run()``.

Example:
    >>> show_logs_by_default()
    >>> any(isinstance(handler, _UntilConfigured) for handler in logging.getLogger(NODE_LOGGER).handlers)
    True
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

LIBRARY_LOGGER = "lakenodes"
NODE_LOGGER = "lakenodes.node"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_level_set_here = False  # whether lakenodes (not the program) put NODE_LOGGER at INFO


class _UntilConfigured(logging.StreamHandler):
    """Writes to stderr only while the program has not configured logging itself."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter(_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        if program_configured_logging():
            return
        if record.levelno >= logging.getLogger(LIBRARY_LOGGER).level:  # a level the program set on purpose
            self.stream = sys.stderr  # the current one (launchers and test runners may swap it)
            super().emit(record)


class NodeLogger(logging.LoggerAdapter):
    """A node's ``self.logger`` (``lakenodes.node.<Class>``): each message starts with the node's
    short update hash, so the lines of two instances of one class tell apart under any formatter;
    the record also carries the whole ``update_hash``.

    Example:
        >>> log = NodeLogger("Src", "src_1a2b3c4d5e6f70819a2b3c4d5e6f7081")
        >>> log.logger.name, log.process("wrote %d rows", {})
        ('lakenodes.node.Src', ('[1a2b3c4d] wrote %d rows', {'extra': {'update_hash': 'src_1a2b3c4d5e6f70819a2b3c4d5e6f7081'}}))
    """

    def __init__(self, class_name: str, update_hash: str) -> None:
        super().__init__(logging.getLogger(f"{NODE_LOGGER}.{class_name}"), {"update_hash": update_hash})
        self.tag = f"[{update_hash.rsplit('_', 1)[-1][:8]}]"  # its digest's start (`updates list` shows it whole)

    def process(self, msg: object, kwargs: Any) -> tuple[object, Any]:
        msg, kwargs = super().process(msg, kwargs)
        return f"{self.tag} {msg}", kwargs


def program_configured_logging() -> bool:
    """Whether a handler of the program's (not lakenodes' own, not a NullHandler) would receive
    node log records: on ``lakenodes.node``, ``lakenodes`` or the root logger."""
    logger: logging.Logger | None = logging.getLogger(NODE_LOGGER)
    while logger is not None:
        if any(not isinstance(handler, (logging.NullHandler, _UntilConfigured)) for handler in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


def show_logs_by_default() -> None:
    """Install (once) the stderr handler for node lines and set ``lakenodes.node``'s level for the
    program's current configuration: INFO while unconfigured, the program's own once configured."""
    global _level_set_here
    logger = logging.getLogger(NODE_LOGGER)
    if not any(isinstance(handler, _UntilConfigured) for handler in logger.handlers):
        logger.addHandler(_UntilConfigured())
    if program_configured_logging():
        if _level_set_here and logger.level == logging.INFO:
            logger.setLevel(logging.NOTSET)
        _level_set_here = False
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
        _level_set_here = True


def shown_by_default() -> bool:
    """Whether lakenodes' own handler shows node INFO lines here (the program configured no logging
    and a ``run()`` set them up): a worker process the run hands a node to shows them likewise."""
    return not program_configured_logging() and logging.getLogger(NODE_LOGGER).isEnabledFor(logging.INFO)


@contextlib.contextmanager
def debug_logging(enabled: bool) -> Iterator[None]:
    """With ``enabled``, show lakenodes' DEBUG lines (node lines included) for the duration of the block."""
    if not enabled:
        yield
        return
    library, nodes = logging.getLogger(LIBRARY_LOGGER), logging.getLogger(NODE_LOGGER)
    previous = library.level, nodes.level
    handler = _UntilConfigured()
    handler.addFilter(lambda record: not record.name.startswith(NODE_LOGGER))  # shown by the node handler
    library.setLevel(logging.DEBUG)
    if _level_set_here:
        nodes.setLevel(logging.NOTSET)  # inherit DEBUG too
    library.addHandler(handler)
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(previous[0])
        nodes.setLevel(previous[1])
