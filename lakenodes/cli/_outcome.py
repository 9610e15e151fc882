"""What ``lakenodes --json run`` says about each node of the tree it ran: the dependencies' runs of
a success, and, when the run failed, which nodes succeeded, failed and were skipped.

Example:
    >>> from lakenodes.errors import NodeRunError
    >>> run_outcome(NodeRunError("Feed()", "update", ConnectionError("down")))  # raised by no tree run
    {}
"""

from __future__ import annotations

from typing import Any

from ..errors import NodeRunError, RowsStoredError, one_line


def node_ran(node: Any, summary: Any) -> dict[str, Any]:
    """What one node's run did (a ``RunSummary``), for the ``--json`` documents; ``node`` is None
    when the run does not know it (then ``"node"`` is null)."""
    return {**_named(node, summary.update_hash, summary.storage_hash), "rows_written": summary.rows_written,
            "table_version": summary.table_version, "duration_s": round(summary.duration_s, 3)}


def run_outcome(error: NodeRunError) -> dict[str, list[dict[str, Any]]]:
    """The ``succeeded``, ``failed`` and ``skipped`` nodes of the tree run that raised ``error``, in
    the order they finished: a failed node with its phase, its error line and whether its rows
    were stored anyway; a skipped one with the ``dependency`` that stopped it (which failed, or was
    skipped itself) and the ``failed_node`` behind it. Empty when no tree run raised ``error``."""
    if not error.failures:
        return {}
    skipped = {key for failure in error.failures.values() for key in failure.skipped}

    def failed_node(key: str) -> str:
        while key in skipped:
            key = error.failures[key].stopped_by[key]
        return key

    failed = [{**_named(error.nodes.get(key), key), "phase": failure.phase, "error": one_line(str(failure)),
               "rows_stored": isinstance(failure, RowsStoredError)}
              for key, failure in error.failures.items() if key not in skipped]
    stopped = [{**_named(error.nodes.get(key), key), "dependency": failure.stopped_by[key],
                "failed_node": failed_node(key)}
               for key, failure in error.failures.items() if key in skipped]
    return {"succeeded": [node_ran(error.nodes.get(key), summary) for key, summary in error.completed.items()],
            "failed": failed, "skipped": stopped}


def _named(node: Any, update_hash: str, storage_hash: str | None = None) -> dict[str, Any]:
    return {"node": node.source_class if node is not None else None, "update_hash": update_hash,
            "storage_hash": node.storage_hash if node is not None else storage_hash}
