"""One maintenance operation (optimize, vacuum) over many tables, one table at a time.

A storage failure on one table is logged and recorded as ``{"table": name, "error": "..."}`` so
it cannot block the others; a user mistake (``LakenodesUserError``) stops the batch.

Example (``example``: a temporary lake with one table, see conftest.py):
    >>> from lakenodes.lake.maintenance import optimize_table
    >>> results = over_tables(["_catalog/runs"], "optimize",
    ...                       lambda name, progress: optimize_table(example.lake, name, progress=progress))
    >>> [result["table"] for result in results], failures(results)
    (['_catalog/runs'], [])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import LakenodesUserError, one_line

logger = logging.getLogger(__name__)

PartitionProgress = Callable[[int, int], None]
"""``progress(done, total)`` over the partitions of one table."""
Operation = Callable[[str, PartitionProgress], dict[str, Any]]
"""``operation(table_name, progress) -> result``."""
Report = Callable[[str, int | None, int | None], None]
"""``report(table_name, done, total_partitions)``; ``done`` is None when the table is finished."""


def over_tables(names: Sequence[str], what: str, operation: Operation,
                report: Report | None = None) -> list[dict[str, Any]]:
    """Run ``operation`` on each table in order and return its results, failures included."""
    results = []
    for name in names:
        try:
            results.append(operation(name, _partition_progress(report, name)))
        except LakenodesUserError:
            raise
        except Exception as error:
            logger.debug("%s of %s failed: %s", what, name, error)  # the result carries it: callers report it once
            results.append({"table": name, "error": f"{type(error).__name__}: {one_line(error)}"})
        if report is not None:
            report(name, None, None)
    return results


def failures(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results of ``over_tables`` that are failures."""
    return [result for result in results if "error" in result]


def _partition_progress(report: Report | None, name: str) -> PartitionProgress:
    if report is None:
        return lambda done, parts: None
    return lambda done, parts: report(name, done, parts)
