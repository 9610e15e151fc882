"""Exceptions raised by lakenodes.

User mistakes (bad frames, bad configuration, unknown identifiers) derive from
``LakenodesUserError`` so the CLI can print them on one line without a traceback.
"""

from __future__ import annotations

import re

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def plain_message(error: BaseException) -> str:
    """An exception's message without terminal colour codes (delta-rs and datafusion add them)."""
    return _ANSI_ESCAPE.sub("", str(error))


def one_line(message: object) -> str:
    """``message`` squeezed onto one line (pydantic and delta-rs messages span several)."""
    return re.sub(r"\s*\n\s*", " ", str(message)).strip()


class LakenodesError(Exception):
    """Base class of every lakenodes error."""


class LakenodesUserError(LakenodesError, ValueError):
    """Something the caller asked for or returned is not valid; nothing was written."""


class LakeConfigurationError(LakenodesUserError):
    """The lake URI or its storage options are not usable."""


class ConfigurationError(LakenodesUserError):
    """A DataNodeConfiguration or DataNode class is declared incorrectly."""


class FrameValidationError(LakenodesUserError):
    """A frame returned by ``update()`` breaks the frame rules."""


class SchemaMismatchError(FrameValidationError):
    """A frame's schema differs from the stored table's schema (the schema is a contract)."""


class DependencyCycleError(LakenodesUserError):
    """The dependency graph of a run has a cycle."""


class IdentifierConflictError(LakenodesUserError):
    """A table identifier is already claimed by another storage."""


class NotFoundError(LakenodesUserError, LookupError):
    """A table, identifier or asset does not exist in the catalog."""


class NodeRunError(LakenodesError, RuntimeError):
    """A node failed during ``run()``; the message names the node, the phase and the cause."""

    def __init__(self, node: str, phase: str, cause: BaseException):
        self.node = node
        self.phase = phase
        self.cause = cause
        super().__init__(f"{node} failed during {phase}: {type(cause).__name__}: {plain_message(cause)}")

    def __reduce__(self):  # picklable across process pools (the default would call __init__(message))
        return type(self), (self.node, self.phase, self.cause)


class RowsStoredError(NodeRunError):
    """A node's rows were committed, then a later step failed (e.g. recording the run in a
    read-only or full ``_catalog``). The data is stored: do not re-run to "recover" it."""

    def __init__(self, node: str, phase: str, cause: BaseException, rows_written: int = 0):
        self.rows_written = rows_written
        super().__init__(node, phase, cause)
        self.args = (f"{self.args[0]} (its {rows_written} rows ARE stored: the failure came after the commit)",)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return type(self), (self.node, self.phase, self.cause, self.rows_written)
