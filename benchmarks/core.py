"""Core performance benchmarks: every figure is a ratio against a baseline measured in the same run.

Sections (each on a local lake and on a moto S3 lake, but ``imports``: no lake):

- ``imports``: ``import lakenodes`` vs ``import deltalake, polars``, each in a fresh interpreter
  (``python -X importtime``: the cumulative time of the imported packages).
- ``daily``: one ``run()`` adding one row per asset vs one raw ``write_deltalake`` append: in a warm
  process, in a fresh one (the call timed), and as a whole cron job (``benchmarks/cron.py``: wall time).
- ``statistics``: ``compute_update_statistics()`` vs a polars ``scan_delta`` group-by max.
- ``backfill``: a large history written through ``run()`` vs a raw partitioned ``write_deltalake`` (and
  ``pyarrow.parquet.write_table``); a streamed backfill (RecordBatchReader) with its peak RSS.
- ``reads``: ``get_df_between_dates`` vs ``pl.scan_delta`` and ArcticDB (LMDB / S3).
- ``time_travel``: an ``as_of`` read of the previous version vs the latest read of the same rows,
  and vs ``pl.scan_delta(version=)``.

Run ``python -m benchmarks --quick`` (see ``benchmarks/__main__.py``).
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import multiprocessing
import os
import platform
import shutil
import statistics as pystats
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from benchmarks.node import DAY, START, BenchPrices, asset_ids, bench_config, price_rows
from lakenodes import Lake, clear_caches
from lakenodes.core.frames import normalize_frame
from lakenodes.lake import progress as ln_statistics
from lakenodes.lake._scan import Pruning, add_actions, data_file_path, snapshot_of
from lakenodes.lake.location import lake_filesystem

RESULTS = Path(__file__).resolve().parent / "results" / "core.json"
SECTIONS = ("imports", "daily", "statistics", "backfill", "reads", "maintenance", "time_travel")
LOCAL_ONLY = ("imports",)


# -- sizes --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one mode (quick or full) on one kind of lake."""

    daily_assets: int
    daily_days: int
    stats_assets: tuple[int, ...]
    stats_days: int
    stats_days_long: int  # the 1,000-asset table again with more rows per asset (sub-linearity)
    appends_assets: int
    appends_count: int
    backfill_assets: int
    backfill_rows: int
    read_assets: int
    read_days: int
    repeats: int
    fresh_repeats: int
    stream_assets: int = 1000  # the streamed backfill (peak RSS): stream_assets x stream_days rows
    stream_days: int = 2_000
    read_assets_more: tuple[int, ...] = ()  # the read cases again at these sizes


QUICK_LOCAL = Sizes(200, 250, (100, 1000), 20, 200, 20, 365, 200, 5_000, 200, 730, 5, 5, read_assets_more=(1000,))
FULL_LOCAL = Sizes(1000, 2500, (100, 1000, 10_000), 20, 250, 50, 365, 1000, 10_000, 1000, 2500, 7, 3,
                   stream_days=20_000, read_assets_more=(200,))
QUICK_S3 = Sizes(100, 100, (250, 1000), 10, 100, 10, 60, 100, 1_000, 100, 400, 3, 3, stream_assets=100)
FULL_S3 = Sizes(500, 250, (100, 1000), 10, 100, 20, 365, 500, 2_000, 500, 500, 3, 1, stream_days=4_000)


# -- the benchmark node (benchmarks/node.py) ----------------------------------------------------
def build_node(lake: Lake, assets: int, label: str, days: int) -> BenchPrices:
    """A node whose table already holds ``days`` days for ``assets`` assets (written by run())."""
    node = BenchPrices(bench_config(assets, label), lake=lake, days_per_run=days)
    node.run()
    node.days_per_run = 1
    return node


def raw_twin(lake: Lake, node: BenchPrices, name: str) -> str:
    """A raw Delta table with the same layout and rows as ``node``'s (written by write_deltalake)."""
    uri = lake.join("raw", name)
    data = node.store.read()
    write_deltalake(uri, data, mode="overwrite", partition_by=["unique_identifier"],
                    storage_options=lake.storage_options or None)
    return uri


# -- measurement --------------------------------------------------------------------------------
def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return pystats.median(times)


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each function, alternating them so machine noise hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: pystats.median(values) for name, values in times.items()}


def clear_lakenodes_caches() -> None:
    """Forget every per-process cache: file facts, progress per version and open snapshots."""
    clear_caches()


def forget_persisted_facts(lake: Lake, table_uri: str) -> None:
    """Delete a table's persisted file facts (so statistics must read Parquet footers)."""
    filesystem, root = lake_filesystem(lake, table_uri)
    with contextlib.suppress(FileNotFoundError, OSError):
        filesystem.delete_file(f"{root}/{ln_statistics.FACTS_PATH}")


@dataclass
class Row:
    section: str
    case: str
    lakenodes_s: float
    baseline: str
    baseline_s: float | None
    target: float | None = None  # the ratio lakenodes/baseline must not exceed
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline_s else self.lakenodes_s / self.baseline_s

    @property
    def met(self) -> bool | None:
        return None if self.target is None or self.ratio is None else self.ratio <= self.target


@dataclass
class Report:
    mode: str
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    sizes: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        ratio = "-" if row.ratio is None else f"{row.ratio:.3f}"
        print(f"  {row.section:<18} {row.case:<44} {fmt(row.lakenodes_s):>9} vs {row.baseline} "
              f"{fmt(row.baseline_s):>9}  ratio {ratio}", file=sys.stderr, flush=True)

    def to_json(self) -> dict[str, Any]:
        rows = [{**asdict(row), "ratio": row.ratio, "met": row.met} for row in self.rows]
        return {"mode": self.mode, "machine": self.machine, "sizes": self.sizes, "notes": self.notes,
                "section_seconds": self.timings, "rows": rows}


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def machine_info() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("lakenodes", "deltalake", "polars", "pyarrow", "pandas", "numpy", "moto", "arcticdb"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "versions": versions,
    }


# -- fresh processes (spawn: forking after deltalake ran hangs) ----------------------------------
Measured = TypeVar("Measured")


def fresh_process(fn: Callable[..., Measured], *args: Any) -> Measured:
    """Run ``fn(*args)`` in a brand-new spawned interpreter and return what it measured."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def _fresh_daily_run(uri: str, options: dict[str, str], assets: int, label: str) -> tuple[float, float]:
    """Seconds of one ``run()`` in this fresh interpreter, and the seconds of it spent in garbage
    collections (the full one a fresh interpreter is due lands wherever allocations trigger it)."""
    import gc
    import importlib
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    lake = Lake(uri, storage_options=options or None)
    node = BenchPrices(bench_config(assets, label), lake=lake)
    price_rows(asset_ids(1), START, 1)  # as the raw process, build rows once before timing (pyarrow's lazy set-up)
    for module in ("pyarrow.acero", "pyarrow.compute", "pyarrow.dataset"):  # imports excluded, deferred ones too
        importlib.import_module(module)
    collecting: list[float] = []

    def timed_collections(phase: str, info: dict[str, int]) -> None:
        collecting.append(-time.perf_counter() if phase == "start" else time.perf_counter())

    gc.callbacks.append(timed_collections)
    start = time.perf_counter()
    node.run()
    elapsed = time.perf_counter() - start
    gc.callbacks.remove(timed_collections)
    return elapsed, sum(collecting[:len(collecting) // 2 * 2])


def timed_environment() -> dict[str, str]:
    """The environment of timed interpreters: bytecode cached (in a scratch prefix) as an installed
    package has it. With ``PYTHONDONTWRITEBYTECODE`` set (as on some dev machines) every module of an
    editable checkout compiles from source in every process (~40 ms for lakenodes) while the
    baselines' site-packages load compiled; callers run each case once untimed first (compiling)."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    environment["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "lakenodes-benchmarks-pycache")
    return environment


def timed_python(*arguments: str) -> float:
    """Wall seconds of ``python ARGUMENTS`` in a new interpreter (``timed_environment``, this
    checkout importable, run from the temporary folder), as a scheduler starts a job."""
    import subprocess

    root = str(Path(__file__).resolve().parent.parent)
    environment = {**timed_environment(),
                   "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], check=True, capture_output=True, env=environment,
                   cwd=tempfile.gettempdir())
    return time.perf_counter() - start


def cron_job(kind: str, uri: str, assets: int, extra: str, options: dict[str, str]) -> float:
    """Wall seconds of ``python -m benchmarks.cron KIND ...`` (see benchmarks/cron.py)."""
    return timed_python("-m", "benchmarks.cron", kind, uri, str(assets), extra, json.dumps(options))


def cli_job(uri: str, assets: int, label: str) -> float:
    """Wall seconds of ``lakenodes run benchmarks.cron:CronPrices`` (a local lake: the CLI takes
    S3 settings from the environment), as a scheduler runs it."""
    return timed_python("-m", "lakenodes", "--lake", uri, "run", "benchmarks.cron:CronPrices",
                        "--config", json.dumps({"assets": assets, "label": label}))


def _fresh_raw_append(uri: str, options: dict[str, str], assets: int, when: str) -> float:
    data = price_rows(asset_ids(assets), datetime.datetime.fromisoformat(when), 1)
    start = time.perf_counter()
    write_deltalake(uri, data, mode="append", partition_by=["unique_identifier"], storage_options=options or None)
    return time.perf_counter() - start


def _fresh_floor_append(uri: str, options: dict[str, str], assets: int, when: str) -> float:
    """The raw fresh append plus the frame rules' validation of its rows, in an interpreter holding
    what a run's holds (lakenodes, polars, pydantic and the deferred pyarrow modules imported): what
    any validating updater pays in a fresh process, its first uses and garbage collections included."""
    import importlib

    for module in ("pyarrow.acero", "pyarrow.compute", "pyarrow.dataset"):
        importlib.import_module(module)
    data = price_rows(asset_ids(assets), datetime.datetime.fromisoformat(when), 1)
    start = time.perf_counter()
    normalize_frame(data, ())
    write_deltalake(uri, data, mode="append", partition_by=["unique_identifier"], storage_options=options or None)
    return time.perf_counter() - start


def _fresh_statistics(uri: str, options: dict[str, str], assets: int, label: str) -> float:
    lake = Lake(uri, storage_options=options or None)
    node = BenchPrices(bench_config(assets, label), lake=lake)
    start = time.perf_counter()
    node.compute_update_statistics()
    return time.perf_counter() - start


def _fresh_streamed_backfill(uri: str, options: dict[str, str], assets: int, days: int, label: str,
                             raw: bool) -> tuple[float, int]:
    """A backfill of ``assets x days`` rows streamed from a generator (never all in memory): seconds
    and the process's peak RSS in bytes. ``raw``: the same stream to ``write_deltalake`` instead."""
    import logging
    import resource

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    uids, chunk = asset_ids(assets), max(1, 500_000 // assets)
    schema = price_rows(uids[:1], START, 1).schema

    def batches() -> Any:
        for first in range(0, days, chunk):
            yield from price_rows(uids, START + first * DAY, min(chunk, days - first), seed=first).to_batches()

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    start = time.perf_counter()
    if raw:
        write_deltalake(uri, reader, partition_by=["unique_identifier"], storage_options=options or None)
    else:
        node = BenchPrices(bench_config(assets, label), lake=Lake(uri, storage_options=options or None))
        node.update = lambda: reader
        node.run()
    elapsed = time.perf_counter() - start
    return elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def import_seconds(statement: str) -> float:
    """Seconds ``statement`` spends importing, in a fresh interpreter (``python -X importtime``:
    the cumulative times of the top-level imports it triggers; interpreter start-up excluded)."""
    import subprocess

    startup = _startup_modules()
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True,
                            check=True, cwd=tempfile.gettempdir(), env=timed_environment())
    total = 0
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith("  ") or name.strip() in startup:  # nested: inside its importer's cumulative time
            continue
        if cumulative.strip().isdigit():
            total += int(cumulative)
    return total / 1e6


_startup: set[str] = set()


def _startup_modules() -> set[str]:
    """Modules every interpreter imports before running any code (site, encodings, ...)."""
    if not _startup:
        import subprocess

        result = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True,
                                check=True, cwd=tempfile.gettempdir())
        _startup.update(line.split("|")[2].strip() for line in result.stderr.splitlines() if line.count("|") == 2)
    return _startup


# -- sections -----------------------------------------------------------------------------------
class Bench:
    """All sections on one lake (local folder or S3 bucket)."""

    def __init__(self, report: Report, lake: Lake, kind: str, sizes: Sizes, scratch: Path, arctic_uri: str | None):
        self.report = report
        self.lake = lake
        self.kind = kind
        self.sizes = sizes
        self.scratch = scratch
        self.arctic_uri = arctic_uri
        self.options = dict(lake.storage_options)

    def section(self, name: str) -> str:
        return name if self.kind == "local" else f"s3-{name}"

    # imports ----------------------------------------------------------------------------------
    def imports(self) -> None:
        """What a cron job pays before its first line runs (no lake involved)."""
        repeats = max(5, self.sizes.repeats * 2)
        cases = {"lakenodes": "import lakenodes", "cli": "import lakenodes.cli",
                 "updater": "from lakenodes import DataNode, DataNodeConfiguration, Lake",
                 "raw": "import deltalake, polars"}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for repeat in range(repeats + 1):  # the first round compiles (see timed_environment)
            for name, statement in cases.items():
                seconds = import_seconds(statement)
                if repeat:
                    times[name].append(seconds)
        median = {name: pystats.median(values) for name, values in times.items()}
        for name, case, target in (("lakenodes", "import lakenodes", 1.3),
                                   ("updater", "from lakenodes import DataNode, DataNodeConfiguration, Lake", None),
                                   ("cli", "import lakenodes.cli (lakenodes --help/--version)", None)):
            self.report.add(Row("imports", case, median[name], "import deltalake, polars", median["raw"], target,
                                "python -X importtime, fresh interpreter"))

    # daily ------------------------------------------------------------------------------------
    def daily(self) -> None:
        s = self.sizes
        node = build_node(self.lake, s.daily_assets, "daily", s.daily_days)
        raw_uri, by_uri = raw_twin(self.lake, node, "daily"), raw_twin(self.lake, node, "daily-by-uri")
        raw_next = [START + s.daily_days * DAY]
        # the raw writer at its best in a warm process: its table kept open (no log replay), as run() keeps its own
        raw_table = DeltaTable(raw_uri, storage_options=self.options or None)

        def raw_append(target: DeltaTable | str = raw_table, nexts: list[datetime.datetime] = raw_next) -> None:
            data = price_rows(asset_ids(s.daily_assets), nexts[0], 1)
            nexts[0] += DAY
            write_deltalake(target, data, mode="append", partition_by=["unique_identifier"],
                            storage_options=self.options or None)

        by_uri_next = [START + s.daily_days * DAY]
        hand_uri, hand_next = raw_twin(self.lake, node, "daily-hand-rolled"), [START + s.daily_days * DAY]

        def hand_rolled() -> None:  # what an updater without lakenodes does to find what is new, then writes it
            last = pl.scan_delta(hand_uri, storage_options=self.options or None).group_by("unique_identifier").agg(
                pl.col("time_index").max()).collect()
            assert last.height == s.daily_assets
            raw_append(hand_uri, hand_next)

        times = interleaved({"ours": node.run, "raw": raw_append, "by_uri": lambda: raw_append(by_uri, by_uri_next),
                             "hand_rolled": hand_rolled}, max(11, s.repeats * 2))
        size = f"{s.daily_assets} assets x {s.daily_days} days"
        self.report.add(Row(self.section("daily"), f"run() +1 row/asset, warm process ({size})", times["ours"],
                            "write_deltalake append, table kept open", times["raw"], 1.2,
                            "the strict floor: the append alone, no log replay"))
        self.report.add(Row(self.section("daily"), f"run() +1 row/asset, warm process ({size})", times["ours"],
                            "write_deltalake(uri) append", times["by_uri"], None,
                            "as raw appends are usually written: each replays the log since its last checkpoint "
                            "(delta-rs' default: every 100 commits), so it slows as the repeats add commits"))
        self.report.add(Row(self.section("daily"), f"run() +1 row/asset, warm process ({size})", times["ours"],
                            "hand-rolled: max time per asset (pl.scan_delta), then the append", times["hand_rolled"],
                            None, "what an updater without lakenodes pays to find what is new before writing it"))
        ours, collecting, raw, floor = [], [], [], []
        for _ in range(s.fresh_repeats):
            elapsed, collected = fresh_process(_fresh_daily_run, self.lake.uri, self.options, s.daily_assets, "daily")
            ours.append(elapsed)
            collecting.append(collected)
            for fresh, kept in ((_fresh_raw_append, raw), (_fresh_floor_append, floor)):
                kept.append(fresh_process(fresh, raw_uri, self.options, s.daily_assets, raw_next[0].isoformat()))
                raw_next[0] += DAY
        self.report.add(Row(self.section("daily"), f"run() +1 row/asset, fresh process ({size})",
                            pystats.median(ours), "write_deltalake append (fresh)", pystats.median(raw), 1.3,
                            f"run() / write timed inside; imports excluded; {pystats.median(collecting) * 1e3:.0f} ms "
                            "of it in the garbage collection the interpreter is due (median)"))
        self.report.add(Row(self.section("daily"), "fresh process: validation + raw append, lakenodes imported",
                            pystats.median(floor), "write_deltalake append (fresh)", pystats.median(raw), None,
                            "the frame rules' checks and the append in an interpreter holding a run's imports: what "
                            "any validating updater pays; the rest of run() is statistics, watermarks and catalog"))
        ours, raw, floor = [], [], []
        for repeat in range(max(3, s.fresh_repeats) + 1):  # the first round compiles (see timed_environment)
            this_round = {"ours": cron_job("lakenodes", self.lake.uri, s.daily_assets, "daily", self.options)}
            for kind in ("raw", "floor"):
                this_round[kind] = cron_job(kind, raw_uri, s.daily_assets, raw_next[0].isoformat(), self.options)
                raw_next[0] += DAY
            if repeat:
                for kind, kept in (("ours", ours), ("raw", raw), ("floor", floor)):
                    kept.append(this_round[kind])
        self.report.add(Row(self.section("daily"), f"cron job +1 row/asset, whole process ({size})",
                            pystats.median(ours), "python + pyarrow + write_deltalake", pystats.median(raw), 1.3,
                            "wall time: interpreter start-up, imports, the write"))
        self.report.add(Row(self.section("daily"), "cron job floor: raw job + polars + a pydantic model",
                            pystats.median(floor), "python + pyarrow + write_deltalake", pystats.median(raw), None,
                            "what any polars + pydantic tool pays; bounds the cron job row"))
        if self.lake.is_local:
            self._cron_job_through_the_cli(size)

    def _cron_job_through_the_cli(self, size: str) -> None:
        """The cron job the docs recommend (``lakenodes run MODULE:CLASS``) against the same node
        run by a Python script, alternated on one table: what the CLI's own start-up costs."""
        s = self.sizes
        cli, script = [], []
        for repeat in range(max(3, s.fresh_repeats) + 1):  # the first round creates the table and compiles
            this_round = (cli_job(self.lake.uri, s.daily_assets, "cli"),
                          cron_job("script", self.lake.uri, s.daily_assets, "cli", self.options))
            if repeat:
                cli.append(this_round[0])
                script.append(this_round[1])
        self.report.add(Row(self.section("daily"), f"cron job via `lakenodes run` +1 row/asset ({s.daily_assets} assets)",
                            pystats.median(cli), "the same node run by a python script", pystats.median(script), None,
                            "wall time; the difference is the CLI's start-up (typer, its commands, the config parse)"))

    # statistics -------------------------------------------------------------------------------
    def statistics(self) -> None:
        s = self.sizes
        for assets in s.stats_assets:
            self._statistics_case(build_node(self.lake, assets, "stats", s.stats_days), f"{assets} assets x {s.stats_days} days",
                                  0.10 if assets >= 1000 else None)
        long_assets = 1000 if 1000 in s.stats_assets else s.stats_assets[-1]
        self._statistics_case(build_node(self.lake, long_assets, "stats-long", s.stats_days_long),
                              f"{long_assets} assets x {s.stats_days_long} days", 0.10)
        node = build_node(self.lake, s.appends_assets, "appends", 1)
        self._append_days(node, s.appends_count - 1)
        self._statistics_case(node, f"{s.appends_assets} assets after {s.appends_count} daily appends", 0.10)

    def _append_days(self, node: BenchPrices, count: int) -> None:
        """``count`` one-row-per-asset appends (raw, same layout; building the case is not timed)."""
        table = node.store.table()
        last = node.compute_update_statistics().max_time_index_value
        for i in range(count):
            write_deltalake(table, price_rows(asset_ids(node.config.assets), last + (i + 1) * DAY, 1), mode="append")
        node.store.table()

    def _scan(self, uri: str) -> Callable[[], pl.DataFrame]:
        def scan() -> pl.DataFrame:
            return (pl.scan_delta(uri, storage_options=self.options or None)
                    .group_by("unique_identifier").agg(pl.col("time_index").max()).collect())
        return scan

    def _statistics_case(self, node: BenchPrices, case: str, target: float | None) -> None:
        s = self.sizes
        scan = self._scan(node.store.uri)
        expected = {row["unique_identifier"]: row["time_index"] for row in scan().iter_rows(named=True)}
        got = node.compute_update_statistics().index_progress
        assert got == expected, f"statistics differ from the scan for {case}"

        def cold() -> None:
            clear_lakenodes_caches()
            node.compute_update_statistics()

        def cold_footers() -> None:
            clear_lakenodes_caches()
            forget_persisted_facts(self.lake, node.store.uri)
            node.compute_update_statistics()

        def floor() -> None:  # what any cold reader of the Delta log pays: the log replay and the file list
            add_actions(DeltaTable(node.store.uri, storage_options=self.options or None))

        repeats = max(3, s.repeats // 2)
        times = interleaved({"cold": cold, "footers": cold_footers, "floor": floor, "scan": scan}, repeats)
        warm = median_time(node.compute_update_statistics, repeats * 3)
        section = self.section("statistics")
        self.report.add(Row(section, f"{case}: cold", times["cold"], "scan_delta max/asset", times["scan"], target))
        self.report.add(Row(section, f"{case}: cold, no facts file", times["footers"], "scan_delta max/asset",
                            times["scan"], target))
        self.report.add(Row(section, f"{case}: floor (open table + add actions)", times["floor"],
                            "scan_delta max/asset", times["scan"], None, "the log replay every cold Delta reader pays"))
        self.report.add(Row(section, f"{case}: warm", warm, "scan_delta max/asset", times["scan"], target))
        if "appends" in case:
            incremental = []
            table = node.store.table()
            for _ in range(repeats):
                last = node.update_statistics.max_time_index_value
                write_deltalake(table, price_rows(asset_ids(node.config.assets), last + DAY, 1), mode="append")
                start = time.perf_counter()
                node.update_statistics = node.compute_update_statistics()
                incremental.append(time.perf_counter() - start)
            self.report.add(Row(section, f"{case}: after +1 append", pystats.median(incremental),
                                "scan_delta max/asset", times["scan"], target))
            if self.sizes.fresh_repeats:
                fresh = [fresh_process(_fresh_statistics, self.lake.uri, self.options, node.config.assets, "appends")
                         for _ in range(self.sizes.fresh_repeats)]
                self.report.add(Row(section, f"{case}: fresh process", pystats.median(fresh),
                                    "scan_delta max/asset", times["scan"], target))

    # maintenance ------------------------------------------------------------------------------
    def maintenance(self) -> None:
        """Daily appends (one small file per asset per day) before and after ``optimize_table``,
        against the same table written compactly in one go. Target after optimize: within 2x."""
        from lakenodes.lake.maintenance import optimize_table

        s = self.sizes
        appended = build_node(self.lake, s.appends_assets, "maint", 1)
        self._append_days(appended, s.appends_count - 1)
        compact = build_node(self.lake, s.appends_assets, "maint-compact", s.appends_count)
        wanted = asset_ids(s.appends_assets)[:5]

        def cases(node: BenchPrices) -> dict[str, Callable[[], Any]]:
            def statistics() -> None:
                clear_lakenodes_caches()
                node.compute_update_statistics()

            return {"statistics": statistics,
                    "read": lambda: node.get_df_between_dates(unique_identifier_list=wanted)}

        repeats = max(3, s.repeats // 2)
        baseline = {name: median_time(fn, repeats) for name, fn in cases(compact).items()}
        before = {name: median_time(fn, repeats) for name, fn in cases(appended).items()}
        optimize_table(self.lake, appended.storage_hash)
        after = {name: median_time(fn, repeats) for name, fn in cases(appended).items()}
        assert appended.get_df_between_dates().height == compact.get_df_between_dates().height
        size = f"{s.appends_assets} assets x {s.appends_count} daily appends"
        for name, label in (("statistics", "cold statistics"), ("read", "read 5 assets, all history")):
            self.report.add(Row(self.section("maintenance"), f"{label}, {size}: before optimize", before[name],
                                "same data written compactly", baseline[name]))
            self.report.add(Row(self.section("maintenance"), f"{label}, {size}: after optimize", after[name],
                                "same data written compactly", baseline[name], 2.0))

    # backfill ---------------------------------------------------------------------------------
    def backfill(self) -> None:
        s = self.sizes
        data = price_rows(asset_ids(s.backfill_assets), START, s.backfill_rows)
        counter = [0]

        def ours() -> None:
            counter[0] += 1
            node = BenchPrices(bench_config(s.backfill_assets, f"backfill-{counter[0]}"), lake=self.lake,
                               days_per_run=s.backfill_rows)
            node.update = lambda: data  # the same rows as the raw write; generating them is not timed
            node.run()

        if self.lake.is_local:
            target_dir = self.scratch / "raw-backfill"
            target_dir.mkdir(exist_ok=True)

            def single_file() -> None:
                counter[0] += 1
                pq.write_table(data, str(target_dir / f"part-{counter[0]}.parquet"))
        else:
            filesystem, root = lake_filesystem(self.lake, self.lake.join("raw-backfill"))

            def single_file() -> None:
                counter[0] += 1
                pq.write_table(data, f"{root}/part-{counter[0]}.parquet", filesystem=filesystem)

        def partitioned() -> None:  # the same rows and layout as lakenodes', written by delta-rs alone
            counter[0] += 1
            write_deltalake(self.lake.join("raw", f"backfill-{counter[0]}"), data, partition_by=["unique_identifier"],
                            storage_options=self.options or None)

        def validation() -> None:  # the frame rules alone (what run() checks before writing a row)
            normalize_frame(data, ())

        record = pa.table({"name": pa.array(["bench"]), "storage_hash": pa.array(["benchprices_0"])})

        def published() -> None:  # the same, validated, plus one row in each catalog table a new table needs
            normalize_frame(data, ())
            partitioned()
            for ledger in ("claims", "updates", "tables"):  # its identifier claim, its updater, its record
                write_deltalake(self.lake.join("raw", "catalog", ledger), record, mode="append",
                                storage_options=self.options or None)

        repeats = max(3, s.repeats // 2)
        times = interleaved({"ours": ours, "partitioned": partitioned, "single": single_file,
                             "validation": validation, "published": published}, repeats, warmup=1)
        rows = data.num_rows
        case = f"{s.backfill_assets} assets x {s.backfill_rows} rows via run()"
        for name, baseline, target in (("partitioned", "write_deltalake partitioned", 1 / 0.8),
                                       ("single", "pq.write_table (1 file)", None)):
            self.report.add(Row(self.section("backfill"), case, times["ours"], baseline, times[name], target,
                                f"{rows / times['ours'] / 1e6:.2f} M rows/s, "
                                f"{times[name] / times['ours']:.0%} of its throughput"))
        self.report.add(Row(self.section("backfill"), f"{case}: floor (validation alone)", times["validation"],
                            "write_deltalake partitioned", times["partitioned"], None,
                            "the frame rules' checks (duplicates, types, identities): paid on top of the write"))
        self.report.add(Row(self.section("backfill"), f"{case}: floor of a published new table", times["published"],
                            "write_deltalake partitioned", times["partitioned"], None,
                            "raw: the validation, the write and one append to each of 3 catalog tables "
                            "(identifier claim, updater, table record); bounds the row above"))
        self.streaming_backfill()

    def streaming_backfill(self) -> None:
        """A backfill streamed from a RecordBatchReader in a fresh process: time and peak RSS against
        write_deltalake of the same stream (partitioned the same way)."""
        s = self.sizes
        rows = s.stream_assets * s.stream_days
        samples: dict[bool, list[tuple[float, int]]] = {False: [], True: []}
        for repeat in range(3):  # alternated, each into a new table; medians of time and of peak RSS
            samples[False].append(fresh_process(_fresh_streamed_backfill, self.lake.uri, self.options,
                                                s.stream_assets, s.stream_days, f"stream-{repeat}", False))
            samples[True].append(fresh_process(_fresh_streamed_backfill, self.lake.join("raw", f"stream-{repeat}"),
                                               self.options, s.stream_assets, s.stream_days, "stream", True))
        (ours, ours_rss), (raw, raw_rss) = ((pystats.median(t for t, _ in samples[kind]),
                                             pystats.median(m for _, m in samples[kind])) for kind in (False, True))
        in_memory = price_rows(asset_ids(s.stream_assets), START, 1).nbytes * s.stream_days
        self.report.add(Row(self.section("backfill"),
                            f"{rows / 1e6:g} M rows streamed ({s.stream_assets} assets), fresh process (median of 3)",
                            ours,
                            "write_deltalake partitioned (same stream)", raw, 1 / 0.8,
                            f"peak RSS {ours_rss / 2**20:.0f} MB (write_deltalake {raw_rss / 2**20:.0f} MB; "
                            f"the rows: {in_memory / 2**20:.0f} MB in Arrow)"))

    # reads ------------------------------------------------------------------------------------
    def reads(self) -> None:
        """Asset-scoped and cross-sectional reads at each size, on the table as run() wrote it and again
        after ``optimize_table(..., cross_section=True)`` (the time-ordered copy). Targets: asset-scoped
        reads lead every peer; 1 date x all assets within 5x of ArcticDB's multi-index symbol."""
        for assets in (self.sizes.read_assets, *self.sizes.read_assets_more):
            self._reads_at(assets)

    def _reads_at(self, assets: int) -> None:
        from lakenodes.lake.maintenance import optimize_table

        s = self.sizes
        node = build_node(self.lake, assets, f"reads-{assets}", s.read_days)
        uri = node.store.uri
        uids = asset_ids(assets)
        picked = uids[::max(1, assets // 10)][:10]
        end = START + (s.read_days - 1) * DAY
        year_start = end - 364 * DAY
        one_day = START + (s.read_days // 2) * DAY
        section = self.section("reads")
        arctic = ArcticTwin.create(self.arctic_uri, node, uids) if self.arctic_uri else None
        if self.arctic_uri and arctic is None:
            self.report.notes.append(f"{section}: ArcticDB unavailable here; its columns are skipped")
        cases = [
            (f"10 of {assets} assets x 1 year",
             lambda: node.get_df_between_dates(year_start, end, unique_identifier_list=picked),
             lambda: self._scan_filter(uri, year_start, end, picked),
             (lambda: arctic.per_asset(picked, year_start, end)) if arctic else None,
             (lambda: arctic.multi(picked, year_start, end)) if arctic else None,
             10 * 365, 1.0),
            (f"1 date x all {assets} assets",
             lambda: node.get_df_between_dates(one_day, one_day),
             lambda: self._scan_filter(uri, one_day, one_day, None),
             (lambda: arctic.per_asset(uids, one_day, one_day)) if arctic else None,
             (lambda: arctic.multi(None, one_day, one_day)) if arctic else None,
             assets, 5.0),
        ]
        floors = {cases[0][0]: self._files_read(node, year_start, end, picked),
                  cases[1][0]: self._files_read(node, one_day, one_day, None)}
        for layout in ("", ", after optimize --cross-section"):
            if layout:
                optimize_table(self.lake, node.storage_hash, cross_section=True)
            for case, ours, scan, per_asset, multi, expected_rows, multi_target in cases:
                assert ours().height == expected_rows == scan().height, case
                fns = {"ours": ours, "scan": scan}
                if not layout:
                    for engine, read in floors[case].items():
                        assert read().num_rows == expected_rows, (case, engine)
                        fns[f"floor {engine}"] = read
                if arctic:
                    assert len(per_asset()) == expected_rows == len(multi()), case
                    fns.update({"per_asset": per_asset, "multi": multi})
                times = interleaved(fns, s.repeats * 2)
                name = case + layout
                self.report.add(Row(section, name, times["ours"], "pl.scan_delta", times["scan"], 1.0))
                if arctic:
                    self.report.add(Row(section, name, times["ours"], f"ArcticDB {arctic.backend}, 1 symbol/asset",
                                        times["per_asset"], 1.0))
                    self.report.add(Row(section, name, times["ours"],
                                        f"ArcticDB {arctic.backend}, 1 multi-index symbol", times["multi"],
                                        multi_target))
                if not layout:
                    engine = min(floors[case], key=lambda engine: times[f"floor {engine}"])
                    baseline = ("ArcticDB " + arctic.backend + ", 1 multi-index symbol", times["multi"]) if arctic \
                        else ("pl.scan_delta", times["scan"])
                    self.report.add(Row(section, f"{name}: its files read directly (paths known, no log)",
                                        times[f"floor {engine}"], *baseline, None,
                                        f"{engine} (the quicker of polars and pyarrow here) reading the Parquet files "
                                        "that hold the rows, the partition column left out: what a reader of this "
                                        "layout (one file per asset) pays for the files alone, their footers included "
                                        "(lakenodes keeps those it read: on S3 one request a file less)"))

    def _files_read(self, node: BenchPrices, start: datetime.datetime, end: datetime.datetime,
                    uids: list[str] | None) -> dict[str, Callable[[], pa.Table]]:
        """Reads of the rows between ``start`` and ``end`` (of ``uids``) from the files holding them,
        by polars and by pyarrow, the files chosen now as lakenodes chooses them (partition value and
        time statistics), so the timed read is the files' own: no log, no choice."""
        table = node.store.table()
        snapshot = snapshot_of(table, ("time_index", "unique_identifier"))
        chosen = snapshot.candidates(Pruning.of(start, end, None if uids is None else {"unique_identifier": uids}, None))
        filesystem, root = lake_filesystem(self.lake, table.table_uri)
        paths = [f"{root}/{data_file_path(path)}" for path in chosen["path"].to_list()]
        prefix = "" if self.lake.is_local else "s3://"

        def with_polars() -> pa.Table:
            return pl.scan_parquet([prefix + path for path in paths], storage_options=self.options or None,
                                   hive_partitioning=False, glob=False).filter(
                pl.col("time_index").is_between(start, end)).collect().to_arrow()

        def with_pyarrow() -> pa.Table:
            import pyarrow.dataset as pds

            return pds.dataset(paths, format="parquet", filesystem=filesystem).to_table(
                filter=(pds.field("time_index") >= pa.scalar(start, pa.timestamp("us", "UTC")))
                & (pds.field("time_index") <= pa.scalar(end, pa.timestamp("us", "UTC"))))

        return {"polars": with_polars, "pyarrow": with_pyarrow}

    def _scan_filter(self, uri: str, start: datetime.datetime, end: datetime.datetime,
                     uids: list[str] | None) -> pl.DataFrame:
        frame = pl.scan_delta(uri, storage_options=self.options or None)
        predicate = pl.col("time_index").is_between(start, end)
        if uids is not None:
            predicate = predicate & pl.col("unique_identifier").is_in(uids)
        return frame.filter(predicate).sort("time_index", "unique_identifier").collect()

    # time travel -----------------------------------------------------------------------------
    def time_travel(self) -> None:
        """The reads section's cases as of the version before one more daily run (the same rows:
        the new day is outside the window) vs the latest read and ``pl.scan_delta(version=)``."""
        s = self.sizes
        node = build_node(self.lake, s.read_assets, "travel", s.read_days)
        previous = node.store.table().version()
        node.run()  # one more day: as_of reads the version before it
        uids = asset_ids(s.read_assets)
        picked = uids[::max(1, s.read_assets // 10)][:10]
        end = START + (s.read_days - 1) * DAY
        one_day = START + (s.read_days // 2) * DAY
        cases = [(f"10 of {s.read_assets} assets x 1 year", end - 364 * DAY, end, picked),
                 (f"1 date x all {s.read_assets} assets", one_day, one_day, None)]
        for case, start, stop, chosen in cases:
            def as_of(start=start, stop=stop, chosen=chosen) -> pl.DataFrame:
                return node.get_df_between_dates(start, stop, unique_identifier_list=chosen, as_of=previous)

            def latest(start=start, stop=stop, chosen=chosen) -> pl.DataFrame:
                return node.get_df_between_dates(start, stop, unique_identifier_list=chosen)

            def scan(start=start, stop=stop, chosen=chosen) -> pl.DataFrame:
                frame = pl.scan_delta(node.store.uri, version=previous, storage_options=self.options or None)
                predicate = pl.col("time_index").is_between(start, stop)
                if chosen is not None:
                    predicate = predicate & pl.col("unique_identifier").is_in(chosen)
                return frame.filter(predicate).sort("time_index", "unique_identifier").collect()

            assert as_of().equals(latest()) and as_of().height == scan().height, case
            times = interleaved({"as_of": as_of, "latest": latest, "scan": scan}, s.repeats * 2)
            section = self.section("time_travel")
            self.report.add(Row(section, f"as_of previous version: {case}", times["as_of"],
                                "latest read, same rows", times["latest"]))
            self.report.add(Row(section, f"as_of previous version: {case}", times["as_of"],
                                "pl.scan_delta(version=)", times["scan"]))


class ArcticTwin:
    """The read benchmark's rows in ArcticDB: one symbol per asset and one multi-index symbol."""

    def __init__(self, library: Any, backend: str):
        self.library = library
        self.backend = backend

    @classmethod
    def create(cls, uri: str, node: BenchPrices, uids: list[str]) -> ArcticTwin | None:
        try:
            import arcticdb
        except ImportError:
            return None
        arctic = arcticdb.Arctic(uri)
        name = f"reads_{node.storage_hash[-8:]}"
        if name in arctic.list_libraries():
            arctic.delete_library(name)
        library = arctic.create_library(name)
        frame = node.get_df_between_dates(frame="pandas").reset_index()
        frame = frame.set_index("time_index")
        library.write("multi", frame)
        payloads = [arcticdb.WritePayload(uid, group.drop(columns=["unique_identifier"]))
                    for uid, group in frame.groupby("unique_identifier", sort=False)]
        for chunk in range(0, len(payloads), 500):
            library.write_batch(payloads[chunk:chunk + 500])
        return cls(library, "LMDB" if uri.startswith("lmdb") else "S3")

    def per_asset(self, uids: list[str], start: datetime.datetime, end: datetime.datetime) -> Any:
        import arcticdb
        import pandas as pd

        requests = [arcticdb.ReadRequest(uid, date_range=(pd.Timestamp(start), pd.Timestamp(end))) for uid in uids]
        frames = [item.data for item in self.library.read_batch(requests)]
        return pd.concat(frames)

    def multi(self, uids: list[str] | None, start: datetime.datetime, end: datetime.datetime) -> Any:
        import arcticdb
        import pandas as pd

        query = None
        if uids is not None:
            query = arcticdb.QueryBuilder()
            query = query[query["unique_identifier"].isin(uids)]
        return self.library.read("multi", date_range=(pd.Timestamp(start), pd.Timestamp(end)), query_builder=query).data


# -- orchestration ------------------------------------------------------------------------------
def selected(only: Sequence[str] | None, kind: str, section: str) -> bool:
    if not only:
        return True
    name = section if kind == "local" else f"s3-{section}"
    return any(item in (name, kind, section if kind == "local" else "s3", "all") for item in only)


def known_names() -> list[str]:
    return ["local", "s3", *SECTIONS, *(f"s3-{name}" for name in SECTIONS)]


def s3_server() -> contextlib.AbstractContextManager[Any]:
    """A moto S3 server in its own process (no GIL sharing with delta-rs)."""
    from lakenodes.testing import running_s3_server

    return running_s3_server()


def arctic_s3_uri(server: Any, bucket: str) -> str:
    host_port = server.endpoint_url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    options = server.storage_options
    return (f"s3://{host}:{bucket}?port={port}&access={options['AWS_ACCESS_KEY_ID']}"
            f"&secret={options['AWS_SECRET_ACCESS_KEY']}&region={options['AWS_REGION']}")


def arcticdb_available() -> bool:
    try:
        import arcticdb  # noqa: F401
    except ImportError:
        return False
    return True


def run(quick: bool, only: Sequence[str] | None = None, output: Path = RESULTS) -> Report:
    unknown = [item for item in only or [] if item not in known_names() + ["all"]]
    if unknown:
        raise SystemExit(f"unknown benchmark name(s) {unknown}; choose from {known_names()}")
    report = Report(mode="quick" if quick else "full", machine=machine_info())
    if not arcticdb_available():
        report.notes.append("ArcticDB is not installed (pip install arcticdb): its read columns are skipped")
    scratch = Path(tempfile.mkdtemp(prefix="lakenodes-bench-"))
    try:
        local_sizes = QUICK_LOCAL if quick else FULL_LOCAL
        if any(selected(only, "local", name) for name in SECTIONS):
            report.sizes["local"] = asdict(local_sizes)
            bench = Bench(report, Lake(scratch / "lake"), "local", local_sizes, scratch,
                          f"lmdb://{scratch}/arctic?map_size=8GB" if arcticdb_available() else None)
            run_sections(bench, only)
        if any(selected(only, "s3", name) for name in SECTIONS):
            s3_sizes = QUICK_S3 if quick else FULL_S3
            report.sizes["s3"] = asdict(s3_sizes)
            with s3_server() as server:
                lake = server.new_lake()
                arctic_uri = arctic_s3_uri(server, server.create_bucket()) if arcticdb_available() else None
                bench = Bench(report, lake, "s3", s3_sizes, scratch, arctic_uri)
                run_sections(bench, only)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report.to_json(), indent=2, default=str))
    return report


def run_sections(bench: Bench, only: Sequence[str] | None) -> None:
    for name in SECTIONS:
        if not selected(only, bench.kind, name) or (bench.kind != "local" and name in LOCAL_ONLY):
            continue
        started = time.perf_counter()
        print(f"[{bench.kind}] {name} ...", file=sys.stderr, flush=True)
        try:
            getattr(bench, name)()
        except Exception as error:  # one broken section must not hide the others
            bench.report.notes.append(f"{bench.section(name)} failed: {type(error).__name__}: {error}")
            import traceback

            traceback.print_exc()
        bench.report.timings[bench.section(name)] = round(time.perf_counter() - started, 1)


def print_report(report: Report) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency
        Console = None
    m = report.machine
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    header = (f"lakenodes core benchmarks ({report.mode}) - {m['cores']} cores, Python {m['python']}, {m['platform']}\n"
              f"{versions}")
    sizes = "\n".join(f"sizes[{kind}]: " + ", ".join(f"{k}={v}" for k, v in values.items())
                      for kind, values in report.sizes.items())
    columns = ["benchmark", "case", "lakenodes", "baseline", "baseline time", "ratio", "target", "met", "note"]
    rows = []
    for row in report.rows:
        rows.append([row.section, row.case, fmt(row.lakenodes_s), row.baseline, fmt(row.baseline_s),
                     "-" if row.ratio is None else f"{row.ratio:.3f}",
                     "-" if row.target is None else f"<= {row.target:.2f}",
                     "-" if row.met is None else ("yes" if row.met else "NO"), row.note])
    footer = ["ratio = lakenodes time / baseline time (lower is better); medians after a warm-up, runs alternated.",
              "statistics: cold = lakenodes' in-process caches cleared (open tables, file facts, progress) but the "
              "persisted facts file used (boundary facts and the progress of the newest version: one log listing, "
              "no log replay); cold, no facts file = also that file deleted, so the log is replayed and boundary "
              "Parquet footers are read; floor = opening the table (log replay) and listing its files, what any "
              "cold Delta reader pays; warm = same process, same table version; after +1 append = one new version "
              "(raw append) since the last call; fresh process = newly spawned interpreter.",
              "backfill floor = the frame rules' validation alone; reads 'after optimize --cross-section' = the "
              "same table after optimize_table(cross_section=True) (a time-ordered copy, read with the files "
              "appended since, until a commit removes a file).",
              "fresh process rows are timed inside a newly spawned interpreter (imports excluded, those lakenodes defers "
              "to first use too); cron job rows are wall times of a whole `python -m benchmarks.cron` process (both jobs "
              "build rows from NumPy buffers: pa.array() imports pandas); cron and import rows load compiled "
              "bytecode, as an installed package does (PYTHONDONTWRITEBYTECODE ignored, a scratch pycache prefix).",
              *report.notes, "section seconds: " + ", ".join(f"{k} {v}" for k, v in report.timings.items())]
    if Console is None:
        print(header)
        print(sizes)
        print(" | ".join(columns))
        for values in rows:
            print(" | ".join(values))
        print("\n".join(footer))
        return
    table = Table(title=header, title_justify="left", caption="\n".join([sizes, *footer]), caption_justify="left")
    for name in columns:
        table.add_column(name, justify="right" if name in ("lakenodes", "baseline time", "ratio") else "left")
    for values in rows:
        table.add_row(*values)
    Console(width=200).print(table)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 3 minutes on 2 cores)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"run only these (repeatable or comma-separated): {', '.join(known_names())}; "
                             "'local'/'s3' select every section of that lake, 'daily' etc. the local one")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    only = [name.strip() for item in args.only or [] for name in item.split(",") if name.strip()] or None
    started = time.perf_counter()
    report = run(args.quick, only, args.output)
    report.timings["total"] = round(time.perf_counter() - started, 1)
    args.output.write_text(json.dumps(report.to_json(), indent=2, default=str))
    print_report(report)
    return 0

