"""Updaters (``_catalog/updates``) and their runs (``_catalog/runs``): registering and reading them.

Example:
    >>> [run["status"] for run in run_history(example.lake)][:1]
    ['success']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import polars as pl

from .._internal.arrow_rows import python_rows
from ..lake.ledger import RECORDED_AT
from ..lake.location import Lake, LakeLike, lake_or_current
from ..lake.pending import Pending
from .ledgers import _known_updaters, runs_ledger, updates_ledger


def updater_registered(lake: Lake, update_hash: str) -> bool:
    """Whether this process registered (or found) the updater already: ``register_updater`` is then a no-op."""
    return (lake.cache_key, update_hash) in _known_updaters


def register_updater(lake: Lake, update_hash: str, storage_hash: str, namespace: str, source_class: str,
                     configuration: Mapping[str, Any]) -> None:
    """Record the updater once (the first record of an ``update_hash`` stands), then mark it in
    ``_catalog/updates/_lakenodes/marks/`` so a fresh process finds it with one request."""
    key = (lake.cache_key, update_hash)
    if key in _known_updaters:
        return
    ledger = updates_ledger(lake)
    if not ledger.marked(update_hash):  # a fresh process: one request instead of reading every updater
        if not ledger.latest(where={"update_hash": update_hash}):
            ledger.append([{
                "update_hash": update_hash, "storage_hash": storage_hash, "namespace": namespace,
                "source_class": source_class, "configuration": json.dumps(configuration, sort_keys=True, default=str),
            }])
        ledger.mark(update_hash)
    _known_updaters.add(key)


def record_run(lake: Lake, *rows: Mapping[str, Any], pending: bool = False) -> None:
    """Record ``rows`` in ``_catalog/runs`` in one write: ``pending``, one small file folded in now and then
    (:mod:`lakenodes.lake.pending`), the cheap record of a success; else at once, with every pending
    run, in one Delta commit (a failed or skipped run: any engine sees it right away)."""
    runs = Pending(runs_ledger(lake))
    if pending:
        runs.put(rows)
    else:
        runs.fold(rows)


def _runs(lake: Lake, update_hash: str | None = None) -> list[dict[str, Any]]:
    """Every recorded run, folded or pending (of ``update_hash`` only, when given), sorted by start.
    The lake's runs of every updater are filtered first: only the rows kept become Python objects."""
    runs = pl.from_arrow(Pending(runs_ledger(lake)).rows())
    if update_hash is not None:
        runs = runs.filter(pl.col("update_hash") == update_hash)
    return runs.sort("started_at", maintain_order=True).to_dicts()  # as python_rows: no pandas import


def _last_runs(lake: Lake) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The last run (by start; of runs started together, the last recorded) and the number of runs
    of each updater, counted as Arrow: one row per updater becomes Python objects, not every run."""
    rows = Pending(runs_ledger(lake)).rows()
    order = pl.from_arrow(rows.select(["update_hash", "started_at"])).with_row_index("row").sort(["started_at", "row"])
    last = order.group_by("update_hash").agg(pl.len().alias("runs"), pl.col("row").last())
    runs = {run["update_hash"]: run for run in python_rows(rows.take(last["row"].to_arrow()))}
    return runs, dict(zip(last["update_hash"].to_list(), last["runs"].to_list(), strict=True))


def update_processes(lake: LakeLike | None = None) -> list[dict[str, Any]]:
    """Every updater with its storage and last run (status, rows, times, error)."""
    lake = lake_or_current(lake)
    runs, counts = _last_runs(lake)
    result = []
    for updater in sorted(updates_ledger(lake).latest(), key=lambda r: r[RECORDED_AT]):
        last = runs.get(updater["update_hash"], {})
        result.append({
            **{k: updater[k] for k in ("update_hash", "storage_hash", "namespace", "source_class")},
            "registered_at": updater[RECORDED_AT],
            "runs": counts.get(updater["update_hash"], 0),
            "last_run_at": last.get("started_at"),
            "last_status": last.get("status"),
            "last_rows_written": last.get("rows_written"),
            "last_error": last.get("error"),
        })
    return result


def run_history(lake: LakeLike | None = None, update_hash: str | None = None) -> list[dict[str, Any]]:
    return _runs(lake_or_current(lake), update_hash or None)
