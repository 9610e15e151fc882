"""Catalog growth benchmark: registering a table and looking one up stay flat as the lake grows.

Registers tables one by one through the catalog calls a first ``run()`` of a new node makes
(``claim_identifier``, ``register_updater``, ``register_table``, ``record_run``), then reports:

- seconds per registration with 50 tables and with N tables, in a long-lived process (warm: its
  per-process caches kept) and as a new process sees it (cold: every lakenodes cache cleared
  first; the catalog Delta tables are reopened). Target: the N-table figure within 1.5x of the
  50-table one;
- ``TimeIndexMetaTable.get(identifier=...)`` and ``.filter(...)`` p50 with N tables (warm, cold);
- the same number of raw ``write_deltalake`` single-row appends to one plain Delta table (no
  housekeeping), and a full read of it, for comparison;
- the shape of each catalog table at the end (live files, log entries, last checkpoint).

    python -m benchmarks.catalog_growth            # 2,000 tables (raw baseline up to 500 appends)
    python -m benchmarks.catalog_growth --quick    # 200 tables, well under a minute
    LAKENODES_CATALOG_HOUSEKEEPING_INTERVAL=0 python -m benchmarks.catalog_growth --quick  # housekeeping off
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from benchmarks.harness import fmt, machine_info, target_met
from lakenodes import Lake, TimeIndexMetaTable, clear_caches
from lakenodes.catalog import catalog
from lakenodes.catalog.records import ColumnMetadata, table_uid
from lakenodes.lake.housekeeping import HousekeepingPolicy
from lakenodes.lake.maintenance import last_checkpoint_version

RESULTS = Path(__file__).resolve().parent / "results" / "catalog_growth.json"
TARGET_RATIO = 1.5
WINDOW = 25  # registrations per measured window (the last WINDOW before reaching a size)
CATALOG = ("tables", "updates", "runs")


@dataclass(frozen=True)
class Sizes:
    tables: int
    raw_appends: int
    repeats: int
    lookup_repeats: int


QUICK = Sizes(tables=200, raw_appends=200, repeats=9, lookup_repeats=9)
FULL = Sizes(tables=2000, raw_appends=500, repeats=21, lookup_repeats=31)


@dataclass
class Figure:
    case: str
    small: float | None  # seconds at 50 tables
    large: float | None  # seconds at N tables
    note: str = ""
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if not self.small or self.large is None else self.large / self.small

    @property
    def met(self) -> bool | None:
        return target_met(self.ratio, self.target)


@dataclass
class Report:
    mode: str
    tables: int
    housekeeping_interval: int
    machine: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    shape: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "figures"},
                "figures": [{**asdict(f), "ratio": f.ratio, "met": f.met} for f in self.figures]}


# -- the workload -------------------------------------------------------------------------------
def record(lake: Lake, i: int) -> TimeIndexMetaTable:
    """The catalog record of benchmark table ``i`` (shaped like a small daily asset table's)."""
    storage_hash = f"benchtable_{i:07d}"
    columns = [ColumnMetadata(column_name=name, dtype=dtype, description=f"{name} of the asset")
               for name, dtype in (("time_index", "datetime"), ("unique_identifier", "string"),
                                   ("close", "float64"), ("volume", "int64"))]
    return TimeIndexMetaTable(
        uid=table_uid(storage_hash), storage_hash=storage_hash, identifier=f"bench_table_{i}",
        description=f"benchmark table {i}: daily close and volume", labels=["bench"], data_frequency_id="1d",
        index_names=["time_index", "unique_identifier"], columns=columns, source_class="benchmarks.BenchNode",
        build_configuration={"i": i}, table_uri=lake.table_uri(storage_hash),
    )


def register(lake: Lake, i: int) -> None:
    """What a first ``run()`` of a new node does to the catalog (see lakenodes/runtime/hooks.py)."""
    table = record(lake, i)
    update_hash = f"benchupdater_{i:07d}"
    started = datetime.datetime.now(datetime.UTC)
    catalog.claim_identifier(lake, table.identifier, "", table.storage_hash)
    catalog.register_updater(lake, update_hash, table.storage_hash, "", "benchmarks.BenchNode", {"i": i})
    catalog.register_table(lake, table)
    catalog.record_run(lake, {
        "run_id": f"run_{i:07d}", "update_hash": update_hash, "storage_hash": table.storage_hash,
        "started_at": started, "finished_at": datetime.datetime.now(datetime.UTC), "status": "success",
        "rows_written": 10, "error": None, "host": "bench",
    })


def forget_caches() -> None:
    """Forget what this process knows (as a newly started process would): snapshots, reads, claims."""
    clear_caches()


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Catalog:
    """One lake whose catalog grows by registering tables 0, 1, 2, ... (and a raw Delta twin)."""

    def __init__(self, root: Path):
        self.lake = Lake(root / "lake")
        self.count = 0
        self.raw_uri = str(root / "raw")
        self.raw_count = 0
        self.raw_table: DeltaTable | None = None

    def register(self, cold: bool = False) -> float:
        """Seconds to register the next table (``cold``: after forgetting every cache)."""
        if cold:
            forget_caches()
        seconds = timed(lambda: register(self.lake, self.count))
        self.count += 1
        return seconds

    def raw_append(self) -> float:
        """Seconds of one single-row ``write_deltalake`` append to the raw twin (no housekeeping)."""
        row = pa.table({"storage_hash": [f"raw_{self.raw_count:07d}"], "description": ["a raw catalog row"],
                        "recorded_at": [datetime.datetime.now(datetime.UTC)]})
        self.raw_count += 1
        if self.raw_table is None:
            seconds = timed(lambda: write_deltalake(self.raw_uri, row, mode="append"))
            self.raw_table = DeltaTable(self.raw_uri)
            return seconds
        return timed(lambda: write_deltalake(self.raw_table, row, mode="append"))

    def raw_read(self) -> float:
        return timed(lambda: DeltaTable(self.raw_uri).to_pyarrow_table())

    def grow_to(self, tables: int, raw_appends: int) -> list[float]:
        """Register up to ``tables`` tables and append up to ``raw_appends`` raw rows; the warm timings."""
        warm = []
        while self.count < tables or self.raw_count < raw_appends:
            if self.count < tables:
                warm.append(self.register())
            if self.raw_count < raw_appends:
                self.raw_append()
        return warm


def alternating(cases: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median seconds of each case, the cases taking turns so machine load hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            times[name].append(case())
    return {name: statistics.median(values) for name, values in times.items()}


def lookups(lake: Lake, tables: int, repeats: int) -> dict[str, tuple[float, float]]:
    """p50 (warm, cold) seconds of get / filter lookups over ``tables`` registered tables."""
    rng = random.Random(7)
    cases: dict[str, Callable[[], Any]] = {
        "get(identifier=...)": lambda: TimeIndexMetaTable.get(identifier=f"bench_table_{rng.randrange(tables)}", lake=lake),
        "filter(identifier__contains=...)": lambda: TimeIndexMetaTable.filter(
            identifier__contains=f"table_{rng.randrange(tables)}", lake=lake),
        "filter(labels__contains='bench') (all)": lambda: TimeIndexMetaTable.filter(labels__contains="bench", lake=lake),
    }
    assert len(TimeIndexMetaTable.filter(labels__contains="bench", lake=lake)) >= tables
    results = {}
    for name, fn in cases.items():
        fn()
        warm = statistics.median(timed(fn) for _ in range(repeats))
        cold = []
        for _ in range(max(3, repeats // 3)):
            forget_caches()
            cold.append(timed(fn))
        results[name] = (warm, statistics.median(cold))
    return results


def catalog_shape(lake: Lake) -> dict[str, dict[str, Any]]:
    shape = {}
    for name in CATALOG:
        uri = lake.catalog_uri(name)
        table = DeltaTable(uri)
        log = os.listdir(os.path.join(uri, "_delta_log"))
        shape[name] = {"version": table.version(), "live_files": len(table.file_uris()),
                       "log_entries": sum(entry.endswith(".json") for entry in log),
                       "last_checkpoint": last_checkpoint_version(lake, f"_catalog/{name}")}
    return shape


# -- run and print ------------------------------------------------------------------------------
def run(quick: bool, tables: int | None = None, output: Path = RESULTS) -> Report:
    sizes = QUICK if quick else FULL
    n = tables or sizes.tables
    small_n = min(50, n)
    raw_n = min(n, sizes.raw_appends)
    report = Report(mode="quick" if quick else "full", tables=n, housekeeping_interval=HousekeepingPolicy().interval,
                    machine=machine_info())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lakenodes-catalog-bench-") as scratch:
        small, large = Catalog(Path(scratch) / "small"), Catalog(Path(scratch) / "large")
        small.grow_to(small_n, small_n)
        growth = large.grow_to(n, raw_n)
        progress(f"{n} tables registered in {time.perf_counter() - started:.1f} s (warm: first {WINDOW} median "
                 f"{fmt(statistics.median(growth[:WINDOW]))}, last {WINDOW} {fmt(statistics.median(growth[-WINDOW:]))})")
        repeats = sizes.repeats
        measured = alternating({
            "warm small": small.register, "warm large": large.register,
            "cold small": lambda: small.register(cold=True), "cold large": lambda: large.register(cold=True),
            "raw small": small.raw_append, "raw large": large.raw_append,
            "raw read small": small.raw_read, "raw read large": large.raw_read,
        }, repeats)
        found = lookups(large.lake, n, sizes.lookup_repeats)
        report.shape = catalog_shape(large.lake)
    f = report.figures
    f.append(Figure(f"registration, warm process ({small_n} vs {n} tables)", measured["warm small"],
                    measured["warm large"], f"median of {repeats}", TARGET_RATIO))
    f.append(Figure(f"registration, cold caches ({small_n} vs {n} tables)", measured["cold small"],
                    measured["cold large"], f"median of {repeats}", TARGET_RATIO))
    f.append(Figure(f"registration while growing to {n} (first vs last {WINDOW}), warm", statistics.median(
        growth[:WINDOW]), statistics.median(growth[-WINDOW:]), "one pass, not alternated"))
    for name, (warm, cold) in found.items():
        f.append(Figure(f"{name} p50 with {n} tables, warm", None, warm, f"{sizes.lookup_repeats} calls"))
        f.append(Figure(f"{name} p50 with {n} tables, cold caches", None, cold))
    f.append(Figure(f"raw write_deltalake 1-row append, no housekeeping ({small_n} vs {raw_n} appends)",
                    measured["raw small"], measured["raw large"], f"median of {repeats}"))
    f.append(Figure(f"raw DeltaTable open + full read ({small_n} vs {raw_n} appends)", measured["raw read small"],
                    measured["raw read large"], f"median of {repeats}"))
    report.seconds = round(time.perf_counter() - started, 1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report.to_json(), indent=2, default=str))
    return report


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def print_report(report: Report) -> None:
    m = report.machine
    print(f"lakenodes catalog growth ({report.mode}): {report.tables} tables, housekeeping every "
          f"{report.housekeeping_interval or 'never (0)'} commits - {m['cores']} cores, Python {m['python']}, "
          f"deltalake {m['versions'].get('deltalake')}")
    header = f"{'case':<72} {'at 50':>9} {'at N':>9} {'ratio':>6} {'target':>7} {'met':>4}  note"
    print(header)
    print("-" * len(header))
    for figure in report.figures:
        ratio = "-" if figure.ratio is None else f"{figure.ratio:.2f}"
        target = "-" if figure.target is None else f"<={figure.target:.1f}"
        met = "-" if figure.met is None else ("yes" if figure.met else "NO")
        print(f"{figure.case:<72} {fmt(figure.small):>9} {fmt(figure.large):>9} {ratio:>6} {target:>7} {met:>4}  "
              f"{figure.note}")
    print("catalog tables at the end: " + "; ".join(
        f"{name}: version {s['version']}, {s['live_files']} live files, {s['log_entries']} log entries, "
        f"checkpoint {s['last_checkpoint']}" for name, s in report.shape.items()))
    print("warm = one long-lived process; cold = every lakenodes cache cleared before the call (what a new "
          f"process pays, imports excluded). total {report.seconds} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.catalog_growth", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK.tables} tables (well under a minute)")
    parser.add_argument("--tables", type=int, help="number of tables to register (default 2000, quick 300)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    report = run(args.quick, args.tables, args.output)
    print_report(report)
    return 0 if all(figure.met is not False for figure in report.figures) else 1


if __name__ == "__main__":
    sys.exit(main())
