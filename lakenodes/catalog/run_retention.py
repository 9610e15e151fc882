"""Run records that do not grow forever: ``lakenodes updates clean`` removes old runs from
``_catalog/runs``.

A run is removed when it finished before the cutoff, unless it is the last run of its updater
(``lakenodes updates list`` keeps showing every updater's last run and status) or it has not
finished. Pending run records are folded into the table first, so the removal sees every run.

The cutoff is kept beside the table (``_catalog/runs/_lakenodes/cleaned/``, the latest only) before
any row is removed: ``lakenodes updates reconcile`` does not recover a run whose commits all precede
it (a removed run committed before it finished), so cleaned runs never come back as "recovered".
Reconcile reads the cutoff after the run records, so a clean running meanwhile cannot slip
between the two reads.

Example:
    >>> older_than("90d"), older_than("36h"), older_than("2w")
    (datetime.timedelta(days=90), datetime.timedelta(days=1, seconds=43200), datetime.timedelta(days=14))
    >>> clean_runs(example.lake, before="2020-01-01")["removed"]
    0
"""

from __future__ import annotations

import datetime
import logging
import re
from typing import Any

import polars as pl

from .._internal.datetimes import epoch_micros, from_epoch_micros, parse_datetime
from .._internal.deferred import pafs
from ..errors import LakenodesUserError
from ..lake.ledger import utcnow
from ..lake.ledger_prune import remove_rows
from ..lake.location import Lake, delete_file, lake_filesystem, write_small_file
from ..lake.pending import Pending
from .catalog import runs_ledger

logger = logging.getLogger(__name__)

CLEANED_DIR = "_lakenodes/cleaned"  # beside _catalog/runs' data: Delta readers and vacuum skip "_" folders
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(-?\d+)\s*([smhdw])\s*$")


def older_than(value: str | datetime.timedelta, argument: str = "older-than") -> datetime.timedelta:
    """A duration such as ``90d``, ``36h``, ``2w`` (units s, m, h, d, w), or a timedelta; negative ones
    are refused, naming ``argument`` (the CLI's ``--older-than``)."""
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match is None:
            raise LakenodesUserError(f"{argument} {value!r} is not a duration like '90d', '36h' or '2w' "
                                     "(units: s, m, h, d, w)")
        value = datetime.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if not isinstance(value, datetime.timedelta):
        raise LakenodesUserError(f"{argument} must be a duration like '90d' or a timedelta, got {type(value).__name__}")
    if value < datetime.timedelta(0):
        raise LakenodesUserError(f"{argument} {value} is negative: give how old the runs to remove are, e.g. '90d'")
    return value


def cutoff(before: Any = None, older: str | datetime.timedelta | None = None,
           now: datetime.datetime | None = None) -> datetime.datetime:
    """The moment runs must have finished before to be removed: ``before`` (a datetime, date or
    ISO-8601 string; naive is UTC) or ``now - older``; exactly one, and not in the future. Cut to
    the millisecond, as Delta commit timestamps are, so reconcile compares commits with it exactly.

    Example:
        >>> cutoff("2026-01-01T00:00:00.000999")
        datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    now = now or utcnow()
    if (before is None) == (older is None):
        raise LakenodesUserError("give exactly one of before (a date, e.g. 2026-01-01) and older-than "
                                 "(a duration, e.g. 90d)")
    moment = parse_datetime(before, "before") if before is not None else now - older_than(older)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if moment > now:
        raise LakenodesUserError(f"the cutoff {moment.isoformat()} is in the future (now {now.isoformat()}): "
                                 "runs to remove must have finished already")  # named as the CLI's --before too
    return moment


def clean_runs(lake: Lake, before: Any = None, *, older: str | datetime.timedelta | None = None,
               dry_run: bool = False) -> dict[str, Any]:
    """Remove the runs that finished before ``before`` (or longer than ``older`` ago) from the
    lake's run history, keeping each updater's last run and every unfinished one; with ``dry_run``,
    only say what would be removed. Returns ``{before, dry_run, removed, kept, updaters}``, where
    ``updaters`` has one entry per updater that has runs to remove: ``update_hash``,
    ``storage_hash``, ``removed``, ``kept``, ``oldest`` / ``newest`` (start of the first / last run
    removed)."""
    moment = cutoff(before, older)
    pending = Pending(runs_ledger(lake))
    if not dry_run:
        pending.fold()  # every run in the table: a pending record is removed as any other
    runs = pl.from_arrow(pending.rows()).with_row_index("row")
    last = runs.sort(["started_at", "row"]).group_by("update_hash").agg(pl.col("run_id").last())["run_id"]
    doomed = runs.filter(pl.col("finished_at") < moment, ~pl.col("run_id").is_in(last.to_list()))
    ids = doomed["run_id"].to_list()
    planned = dict(doomed.group_by("update_hash").len().iter_rows())  # gone once done (by this clean or another)
    if ids and not dry_run:
        _keep_cutoff(lake, moment)  # before any row goes: reconcile never recovers what is removed
        removed = remove_rows(runs_ledger(lake), "run_id", ids)  # (not those another clean removed meanwhile)
        doomed = doomed.filter(pl.col("run_id").is_in(sorted(removed)))
        ids = doomed["run_id"].to_list()
    updaters = doomed.group_by("update_hash", "storage_hash").agg(
        pl.len().alias("removed"), pl.col("started_at").min().alias("oldest"),
        pl.col("started_at").max().alias("newest")).sort("oldest")
    totals = dict(runs.group_by("update_hash").len().iter_rows())
    result = [{**entry, "kept": totals[entry["update_hash"]] - planned[entry["update_hash"]]}
              for entry in updaters.to_dicts()]
    logger.info("%s %d run(s) that finished before %s", "would remove" if dry_run else "removed", len(ids),
                moment.isoformat())
    return {"before": moment, "dry_run": dry_run, "removed": len(ids), "kept": runs.height - sum(planned.values()),
            "updaters": result}


def _cleaned_folder(lake: Lake) -> tuple[Any, str]:
    filesystem, root = lake_filesystem(lake, runs_ledger(lake).uri)
    return filesystem, f"{root}/{CLEANED_DIR}"


def _cutoffs(filesystem: Any, folder: str) -> list[int]:
    listing = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(int(info.base_name) for info in listing if info.base_name.isdigit())


def _keep_cutoff(lake: Lake, moment: datetime.datetime) -> None:
    """Keep ``moment`` as a cutoff (one empty file named by its microseconds since the epoch), then
    delete the earlier ones: the latest is all reconcile needs."""
    filesystem, folder = _cleaned_folder(lake)
    micros = epoch_micros(moment)
    write_small_file(filesystem, f"{folder}/{micros:020d}")
    for earlier in _cutoffs(filesystem, folder):
        if earlier < micros:
            delete_file(filesystem, f"{folder}/{earlier:020d}")


def cleaned_before(lake: Lake) -> datetime.datetime | None:
    """The latest cutoff ``clean_runs`` removed runs before (None when runs were never removed)."""
    filesystem, folder = _cleaned_folder(lake)
    found = _cutoffs(filesystem, folder)
    if not found:
        return None
    return from_epoch_micros(found[-1])
