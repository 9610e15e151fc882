"""Run hooks: what a run reports as it happens. The runner (:mod:`lakenodes.runtime.run`) knows
only this interface; recording runs in the catalog (:mod:`lakenodes.runtime.recorder`) and showing
progress are hooks.

Example:
    >>> class Phases(RunHooks):
    ...     def __init__(self):
    ...         self.seen = []
    ...     def phase_started(self, node, phase):
    ...         self.seen.append(phase)
    >>> hooks = Phases()
    >>> hooks.phase_started(None, "update")
    >>> hooks.seen
    ['update']
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid
from collections.abc import Callable, Sequence

from ..errors import one_line
from ..nodes.node import DataNode

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One run of one node, as hooks see it."""

    run_id: str
    started_at: datetime.datetime
    rows_written: int = 0

    @classmethod
    def beginning_now(cls) -> RunInfo:
        """A run under a new id, begun now: one that never reached the runner (skipped, or failed before it)."""
        return cls(uuid.uuid4().hex, datetime.datetime.now(datetime.timezone.utc))


class RunHooks:
    """Base class of run hooks: every method does nothing. Hooks run in the process that runs the
    node (with an executor: in the worker)."""

    def phase_started(self, node: DataNode, phase: str) -> None:
        """``node`` enters ``phase`` (registration, statistics, update, validation, write, catalog)."""

    def run_started(self, node: DataNode) -> None:
        """In the registration phase, before anything is written (a failure here writes nothing)."""

    def registered(self, node: DataNode) -> None:
        """Before the first row is committed (before the catalog phase when there is none, and before
        a failure of the phases between is reported): wait for what ``run_started`` began in the
        background that must precede any commit. A streamed update's files are uploaded meanwhile
        (deleted again when this fails). A failure here commits nothing and fails the run in its
        registration phase."""

    def table_ready(self, node: DataNode) -> None:
        """In the write phase, once the node's table exists (created if it was new) and before its
        rows are committed: work that needs the table but not the rows can overlap their writing.
        Called at most once per run; not called when the write creates a new table holding its
        rows (one commit: the table exists once its rows are in it)."""

    def run_succeeded(self, node: DataNode, run: RunInfo) -> None:
        """In the catalog phase, after the rows (if any) were committed."""

    def run_failed(self, node: DataNode, run: RunInfo, phase: str, error: BaseException) -> None:
        """After a failure in ``phase``; an exception raised here is logged, never raised."""

    def run_skipped(self, node: DataNode, run: RunInfo, dependency: str, error: BaseException) -> None:
        """``node`` was not run: its dependency (update hash ``dependency``) failed, or was skipped
        itself, for ``error`` (the failure that stopped both). Nothing was written. Called in the
        process scheduling the tree; an exception raised here is logged, never raised."""

    def tree_finished(self) -> None:
        """After the last node of a tree (or of ``run_many``'s trees) ran, failed or was skipped, in the
        process scheduling it: e.g. record what ``run_skipped`` kept. An exception raised here is
        logged, never raised."""


class PhaseReporter(RunHooks):
    """Calls ``listener(node, phase)`` as a node enters each phase (e.g. a progress bar showing that
    a long backfill is validating or writing)."""

    def __init__(self, listener: Callable[[DataNode, str], None]):
        self.listener = listener

    def phase_started(self, node: DataNode, phase: str) -> None:
        self.listener(node, phase)


def tell_each(hooks: Sequence[RunHooks], tell: Callable[[RunHooks], object], failure: str, *args: object) -> None:
    """``tell(hook)`` for each of ``hooks``; a hook's exception is logged as a warning,
    ``failure % (*args, error)``, never raised: it would hide the run's own outcome."""
    for hook in hooks:
        try:
            tell(hook)
        except Exception as error:  # noqa: BLE001 - storage errors are DeltaError too: any recording failure
            logger.warning(failure, *args, one_line(error))
