"""``lakenodes.DataNode``: the core node (:mod:`lakenodes.nodes.node`) plus the seeds' ``run()``,
which hands the dependency tree to the runtime."""

from __future__ import annotations

from typing import Any

from .._internal.plain_arrow import narrow_strings
from ..core.frame_kind import as_frame, polars_frame, resolve_frame
from ..errors import ConfigurationError
from ..nodes import node as core
from ..nodes.node_logging import debug_logging, show_logs_by_default
from ..runtime.schedule import run_tree


class DataNode(core.DataNode):
    """Base class of a DataNode: subclass it, implement ``dependencies()`` and ``update()``.

    ``update()`` returns only the new rows (polars, pandas with the seeds' index, or Arrow);
    ``run()`` computes statistics, validates and writes them.

    Example:
        >>> import polars as pl
        >>> from lakenodes import DataNodeConfiguration
        >>> class DailyNumber(DataNode):
        ...     def dependencies(self):
        ...         return {}
        ...     def update(self):
        ...         return pl.DataFrame()
        >>> DailyNumber(DataNodeConfiguration()).update_hash.startswith("dailynumber_")
        True
    """

    def run(
        self, debug_mode: bool = False, *, force_update: bool = False, update_tree: bool = True,
        executor: Any = None, return_frames: bool | None = None,
    ) -> tuple[bool, Any]:
        """Run the dependency tree (dependencies first), then this node; return ``(False, written)``,
        ``written`` being the rows this run persisted, in the program's frame kind (polars unless
        ``LAKENODES_FRAME=pandas`` / ``set_default_frame("pandas")``): no rows, with the frame's
        columns, when every row equalled the stored one and nothing was committed.

        With an ``executor`` (a spawn process pool, a Dask client's executor), ``written`` is this
        node's :class:`~lakenodes.RunSummary` (rows written, table version, timings) unless
        ``return_frames=True``: the rows then travel back from the worker. Dependencies only ever
        send their summaries back. ``return_frames=False`` gives the summary on a serial run too.

        ``debug_mode=True`` runs every node in this process, one after another (an ``executor`` is
        ignored), and shows lakenodes' DEBUG log lines for the run. ``force_update`` is accepted for
        the seeds' code and changes nothing: lakenodes has no scheduler that could skip a run, so
        every ``run()`` asks ``update()`` for new rows. ``update_tree=False`` runs this node alone,
        not its dependencies. The flags are ``True``/``False``; ``executor`` is a
        ``concurrent.futures.Executor`` instance or None. Raises NodeRunError naming the node, the
        phase and the cause.
        """
        for name, value in (("debug_mode", debug_mode), ("force_update", force_update), ("update_tree", update_tree)):
            if not isinstance(value, bool):
                raise ConfigurationError(f"run({name}=...) must be True or False, got {value!r}")
        if return_frames is not None and not isinstance(return_frames, bool):
            raise ConfigurationError(f"run(return_frames=...) must be True, False or None, got {return_frames!r}")
        frames = executor is None if return_frames is None else return_frames
        kind = resolve_frame(None)  # a bad LAKENODES_FRAME fails before anything runs
        show_logs_by_default()
        with debug_logging(debug_mode):
            err, summary = run_tree(self, update_tree=update_tree, executor=None if debug_mode else executor,
                                    return_frame=frames)
        if not frames or summary.frame is None:
            return err, summary
        if kind == "polars":  # already polars, index columns first: no round trip through Arrow
            return err, polars_frame(summary.frame)
        # the strings a read of the table returns (polars hands out large_string)
        rows = narrow_strings(summary.frame.to_arrow())
        return err, as_frame(rows, self.store.index_names() or self._declared_schema()[1], kind)
