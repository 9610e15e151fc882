"""A minute-cadence desk: what a table costs as cron runs its node every minute, for a day or more.

A node writes one minute bar for each of 50 assets per run (50 files per commit: one per
``unique_identifier`` partition) and an hourly node reads it; a fake clock moves one minute per
run. Every ``--every`` runs the table prints: the mean time of a run (both nodes), a read of
the last hour, the live files of the minute table, the files in its folder (removed ones stay until
``lakenodes vacuum``), its ``_delta_log`` (files, MB, and the latest checkpoint's actions and
size: what every new process reads before its first commit) and the files of ``_catalog/runs``.

Schedules compared (``--schedule``, default all):

- ``none``: no maintenance. Every commit adds 50 files; the checkpoint written every 10 commits
  holds every one of them, so runs slow down and the log grows by ~1 GB a day.
- ``optimize``: ``optimize_table`` every 60 runs (hourly). Runs stay fast, but each compaction's
  remove actions (tombstones) stay in every checkpoint for ``delta.deletedFileRetentionDuration``
  (7 days by default): 72,000 a day for this table.
- ``optimize+tombstones``: the same with the table's ``delta.deletedFileRetentionDuration``
  shortened. Tombstones expire by the wall clock while this benchmark's clock runs a minute a
  run, so the benchmark sets ``--tombstone-retention`` (default 1 second) to stand for "a day
  out of several weeks".

    python -m benchmarks.minute_cadence --quick      # 240 runs a schedule, under a minute
    python -m benchmarks.minute_cadence --runs 1500  # a day (~10 minutes on a laptop)
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import polars as pl
from deltalake import DeltaTable

from benchmarks.harness import fmt
from lakenodes import DataNode, DataNodeConfiguration, Lake
from lakenodes.lake.maintenance import optimize_table

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
SCHEDULES = ("none", "optimize", "optimize+tombstones")


class Clock:
    """The fake "now" of the simulated desk."""

    now = START


class MinuteConfig(DataNodeConfiguration):
    assets: int = 50


class MinuteBars(DataNode):
    """One bar per asset for every minute up to ``Clock.now`` not stored yet (a missed minute is caught up)."""

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    def uids(self) -> list[str]:
        return [f"C{i:03d}" for i in range(self.config.assets)]

    def get_asset_list(self) -> list[str]:
        return self.uids()

    def now(self) -> datetime.datetime:
        return Clock.now

    def update(self) -> pl.DataFrame:
        last, now = self.update_statistics.max_time_index_value, self.now()
        first = START if last is None else last + MINUTE
        minutes = pl.datetime_range(first, max(first, now), "1m", time_zone="UTC", eager=True)
        if first > now:
            minutes = minutes.head(0)
        uids = self.uids()
        return pl.DataFrame({"time_index": minutes}).join(pl.DataFrame({"unique_identifier": uids}), how="cross") \
            .with_columns(close=pl.lit(1.0))


class HourConfig(DataNodeConfiguration):
    assets: int = 50


class HourlyBars(DataNode):
    """The mean of each full hour of minute bars."""

    SCHEMA: ClassVar[dict[str, pl.DataType]] = {"time_index": pl.Datetime("us", "UTC"),
                                                 "unique_identifier": pl.String(), "close": pl.Float64()}

    def dependencies(self) -> dict[str, DataNode]:
        return {"minutes": MinuteBars(MinuteConfig(assets=self.config.assets), lake=self.lake)}

    def update(self) -> pl.DataFrame:
        last = self.update_statistics.max_time_index_value
        start = START if last is None else last + HOUR
        end = Clock.now.replace(minute=0)
        if start >= end:
            return pl.DataFrame(schema=self.SCHEMA)
        rows = self.dependencies()["minutes"].get_df_between_dates(start, end, less_or_equal=False)
        return rows.group_by(pl.col("time_index").dt.truncate("1h"), "unique_identifier").agg(pl.col("close").mean())


def folder(path: Path) -> tuple[int, float]:
    """Files under ``path`` and their MB."""
    files = [item for item in path.rglob("*") if item.is_file()] if path.exists() else []
    return len(files), sum(item.stat().st_size for item in files) / 1e6


def simulate(root: Path, schedule: str, runs: int, every: int, tombstone_retention: str) -> Iterator[dict[str, object]]:
    """Run the desk ``runs`` minutes under ``schedule``; one row of figures every ``every`` runs."""
    lake = Lake(str(root))
    minutes = MinuteBars(MinuteConfig(), lake=lake)
    table_dir = root / "tables" / minutes.storage_hash
    spent = 0.0
    for run in range(runs):
        Clock.now = START + run * MINUTE
        began = time.perf_counter()
        HourlyBars(HourConfig(), lake=lake).run()  # a fresh node each minute, as cron's new process builds it
        spent += time.perf_counter() - began
        if run == 0 and schedule == "optimize+tombstones":
            DeltaTable(str(table_dir)).alter.set_table_properties(
                {"delta.deletedFileRetentionDuration": tombstone_retention})
        if (run + 1) % every == 0:  # before this hour's optimize: the read finds the most files of the hour
            began = time.perf_counter()
            minutes.get_df_between_dates(Clock.now - HOUR, Clock.now)
            read = time.perf_counter() - began
            log_files, log_mb = folder(table_dir / "_delta_log")
            checkpoint = json.loads((table_dir / "_delta_log" / "_last_checkpoint").read_text())
            yield {"schedule": schedule, "runs": run + 1, "run": spent / every, "read_1h": read,
                   "live_files": len(DeltaTable(str(table_dir)).file_uris()), "folder_files": folder(table_dir)[0],
                   "log_files": log_files, "log_mb": log_mb, "checkpoint_actions": checkpoint["size"],
                   "checkpoint_mb": checkpoint.get("sizeInBytes", 0) / 1e6,
                   "runs_files": folder(root / "_catalog" / "runs")[0]}
            spent = 0.0
        if schedule != "none" and (run + 1) % 60 == 0:
            optimize_table(lake, minutes.storage_hash)


COLUMNS = ("schedule", "runs", "run", "read_1h", "live_files", "folder_files", "log_files", "log_mb",
           "checkpoint_actions", "checkpoint_mb", "runs_files")


def render(row: dict[str, object]) -> str:
    cells = [fmt(value) if name in ("run", "read_1h") else f"{value:.1f}" if isinstance(value, float) else str(value)
             for name, value in ((name, row[name]) for name in COLUMNS)]
    return " | ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="240 runs a schedule, a row every 60")
    parser.add_argument("--runs", type=int, default=1500)
    parser.add_argument("--every", type=int, default=300)
    parser.add_argument("--schedule", choices=SCHEDULES, action="append")
    parser.add_argument("--tombstone-retention", default="interval 1 seconds")
    args = parser.parse_args(argv)
    runs, every = (240, 60) if args.quick else (args.runs, args.every)
    logging.getLogger("lakenodes").setLevel(logging.WARNING)
    print(" | ".join(COLUMNS))
    for schedule in args.schedule or SCHEDULES:
        with tempfile.TemporaryDirectory(prefix="minute_cadence_") as scratch:
            for row in simulate(Path(scratch), schedule, runs, every, args.tombstone_retention):
                print(render(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
