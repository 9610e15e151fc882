"""App-transaction benchmark: the checkpoint of a data table stays small after years of daily runs.

Every lakenodes commit carries Delta app transactions: its ``write_id`` (idempotent retries) and
one identity id per partition it advances (overlapping writers conflict). delta-rs keeps an app
transaction without ``lastUpdated`` forever, so every write id ever written used to stay in every
checkpoint and every snapshot; stamped with ``lastUpdated`` they expire after the table's
``delta.setTransactionRetentionDuration`` (14 days for lakenodes tables).

The benchmark replays the app transactions ``DAYS`` daily runs leave in the log of one table of
``ASSETS`` assets (one partition each), ``RUNS_PER_DAY`` runs a day (each writing its share of the
assets), with lakenodes' own ``app_transaction``/``partition_transactions`` and a simulated
clock (day d is stamped ``DAYS - d`` days ago). Each simulated day is one commit holding that
day's transactions and no data file, so only the app-transaction part of the log is measured.
It does this twice, as lakenodes writes them now ("current") and without ``lastUpdated``
("legacy"), and reports per mode: app ids in the final checkpoint, its size, and the time to open
the table (log replay) and to look up one write id.

    python -m benchmarks.app_transactions            # 1,000 days x 1,000 assets x 10 runs a day
    python -m benchmarks.app_transactions --quick    # 120 days, well under a minute
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction

import lakenodes.lake._watermarks as watermarks
from lakenodes.lake.store import TABLE_CONFIGURATION

DAY_MS = 86_400_000


def simulate(root: Path, days: int, assets: int, runs_per_day: int, legacy: bool) -> dict[str, Any]:
    """Write the simulated log into a fresh table under ``root``; return its figures."""
    uri = str(root / ("legacy" if legacy else "current"))
    schema = pa.schema([("time_index", pa.timestamp("us", "UTC")), ("unique_identifier", pa.string()),
                        ("close", pa.float64())])
    DeltaTable.create(uri, schema, partition_by=["unique_identifier"], configuration=TABLE_CONFIGURATION)
    table = DeltaTable(uri)
    partitions = [f"A{i:04d}" for i in range(assets)]
    now = watermarks.now_ms()
    real_clock = watermarks.now_ms
    started = time.perf_counter()
    write_ids: list[str] = []
    try:
        for day in range(days):
            stamp = now - (days - 1 - day) * DAY_MS
            watermarks.now_ms = lambda stamp=stamp: stamp  # type: ignore[assignment]
            day_ids = [f"lakenodes-{uuid.uuid4().hex}" for _ in range(runs_per_day)]
            write_ids += day_ids
            transactions = [watermarks.app_transaction(app_id) for app_id in day_ids]
            transactions += watermarks.partition_transactions(partitions)
            if legacy:
                transactions = [Transaction(t.app_id, t.version) for t in transactions]
            table.create_write_transaction([], mode="append", schema=schema, partition_by=["unique_identifier"],
                                           commit_properties=CommitProperties(app_transactions=transactions))
            table.update_incremental()
    finally:
        watermarks.now_ms = real_clock  # type: ignore[assignment]
    written = time.perf_counter() - started
    table.create_checkpoint()
    checkpoint = Path(uri) / "_delta_log" / f"{table.version():020d}.checkpoint.parquet"
    kept = [row for row in pq.read_table(checkpoint, columns=["txn"]).column("txn").to_pylist() if row]
    opens = []
    for _ in range(5):
        began = time.perf_counter()
        reopened = DeltaTable(uri)
        opens.append(time.perf_counter() - began)
    began = time.perf_counter()
    reopened.transaction_version(write_ids[-1])
    lookup = time.perf_counter() - began
    return {
        "mode": "legacy (no lastUpdated)" if legacy else "current (lastUpdated)",
        "commits": days, "app_ids_written": days * runs_per_day + assets,
        "app_ids_in_checkpoint": len(kept), "write_ids_in_checkpoint": sum(r["appId"].startswith("lakenodes-")
                                                                           for r in kept),
        "checkpoint_bytes": checkpoint.stat().st_size, "open_ms_median": round(statistics.median(opens) * 1000, 1),
        "lookup_ms": round(lookup * 1000, 2), "simulation_s": round(written, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="120 days instead of 1,000")
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--runs-per-day", type=int, default=10)
    arguments = parser.parse_args(argv)
    days = arguments.days or (120 if arguments.quick else 1000)
    with tempfile.TemporaryDirectory(prefix="lakenodes-app-transactions-") as folder:
        for legacy in (False, True):
            figures = simulate(Path(folder), days, arguments.assets, arguments.runs_per_day, legacy)
            print(" ".join(f"{key}={value}" for key, value in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
