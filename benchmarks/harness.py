"""The benchmarks' harness: problem sizes, the node built for a case, timing helpers and the report.

Every section of ``python -m benchmarks`` (``benchmarks/writes.py``, ``benchmarks/reads.py``) measures
through these helpers and adds its figures to one ``Report`` as ``Row``s: a lakenodes time, a
baseline time measured in the same run, and the target ratio where the issue sets one.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics as pystats
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from benchmarks.node import BenchPrices, bench_config
from lakenodes import Lake, clear_caches
from lakenodes._internal.afterwards import settle
from lakenodes.lake import progress as ln_statistics
from lakenodes.lake._scan import add_actions
from lakenodes.lake.location import lake_filesystem


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


def raw_twin(lake: Lake, node: BenchPrices, name: str, configuration: dict[str, str] | None = None) -> str:
    """A raw Delta table with the same layout and rows as ``node``'s (written by write_deltalake;
    delta-rs' table settings unless ``configuration``)."""
    uri = lake.join("raw", name)
    data = node.store.read()
    write_deltalake(uri, data, mode="overwrite", partition_by=["unique_identifier"], configuration=configuration,
                    storage_options=lake.storage_options or None)
    return uri


def boundary_footers(table_uri: str, lake: Lake) -> list[Any]:
    """The exact last ``time_index`` of each file of the table at ``table_uri`` that may hold its
    asset's last time (its millisecond max statistic within 1 ms of the asset's highest), read from
    the Parquet footers by pyarrow, each file's size taken from the log (on S3 one request a footer,
    no HEAD first): locally one after the other (threads only contend for the GIL there), on S3 in
    16 threads."""
    import pyarrow.dataset as pds  # here: the fresh processes the suite times import this module

    filesystem, root = lake_filesystem(lake, table_uri)
    files = pl.from_arrow(add_actions(DeltaTable(table_uri, storage_options=lake.storage_options or None)))
    last, asset = pl.col("max.time_index"), "partition.unique_identifier"
    boundary = files.filter(last >= last.max().over(asset) - pl.duration(milliseconds=1))
    paths = list(zip(boundary["path"].to_list(), boundary["size_bytes"].to_list(), strict=True))

    def footer_max(path_and_size: tuple[str, int]) -> Any:
        path, size = path_and_size
        metadata = pds.ParquetFileFormat().make_fragment(f"{root}/{path}", filesystem=filesystem, file_size=size).metadata
        position = metadata.schema.names.index("time_index")
        return max(metadata.row_group(group).column(position).statistics.max for group in range(metadata.num_row_groups))

    if lake.is_local:
        return [footer_max(path) for path in paths]
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(footer_max, paths))


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
        settle()
    return pystats.median(times)


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each function, alternating them so machine noise hits all alike. What a
    run left to finish after it returned (a cache saved on an object store) is finished untimed
    before the next call, so that no call is timed while it runs."""
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
            settle()
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
    ratios: tuple[float | None, ...] = ()  # every run's ratio, when several runs were combined (benchmarks/runs.py)

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline_s else self.lakenodes_s / self.baseline_s

    @property
    def met(self) -> bool | None:
        return target_met(self.ratio, self.target)


def target_met(ratio: float | None, target: float | None) -> bool | None:
    """Whether ``ratio`` is within ``target`` (None when either is missing)."""
    return None if target is None or ratio is None else ratio <= target


@dataclass
class Report:
    mode: str
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    sizes: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    runs: int = 1  # runs combined into this report, each row the run with its median ratio (benchmarks/runs.py)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        ratio = fmt_ratio(row.ratio)
        print(f"  {row.section:<18} {row.case:<44} {fmt(row.lakenodes_s):>9} vs {row.baseline} "
              f"{fmt(row.baseline_s):>9}  ratio {ratio}", file=sys.stderr, flush=True)

    def to_json(self) -> dict[str, Any]:
        rows = [{**asdict(row), "ratio": row.ratio, "met": row.met} for row in self.rows]
        return {"mode": self.mode, "runs": self.runs, "machine": self.machine, "sizes": self.sizes,
                "notes": self.notes, "section_seconds": self.timings, "rows": rows}


def fmt_ratio(ratio: float | None, ratios: Sequence[float | None] = ()) -> str:
    """``ratio`` to 3 decimals, with the range of every run's ``ratios`` when several runs were combined.

    Example:
        >>> fmt_ratio(1.25), fmt_ratio(1.2, (1.3, 1.1, 1.2)), fmt_ratio(None)
        ('1.250', '1.200 (1.100-1.300)', '-')
    """
    if ratio is None:
        return "-"
    known = [value for value in ratios if value is not None]
    spread = f" ({min(known):.3f}-{max(known):.3f})" if len(known) > 1 else ""
    return f"{ratio:.3f}{spread}"


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
        "processor": platform.processor() or platform.machine(), "versions": versions, "memory": memory_settings(),
    }


def memory_settings() -> dict[str, str | None]:
    """What decides how fast fresh memory is: pyarrow's allocator and the kernel's transparent huge
    pages (``[madvise]`` lets pyarrow's mimalloc ask for them; in a VM whose memory the host backs
    lazily, a fresh-process streamed backfill here took up to 2x as long with them, see README)."""
    settings: dict[str, str | None] = {"pyarrow_memory_pool": pa.default_memory_pool().backend_name}
    for name in ("enabled", "defrag"):
        try:
            settings[f"transparent_hugepage_{name}"] = Path(f"/sys/kernel/mm/transparent_hugepage/{name}").read_text().strip()
        except OSError:
            settings[f"transparent_hugepage_{name}"] = None
    return settings



class Sections:
    """What every section class shares: the report, the lake (local folder or S3 bucket) and its sizes."""

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
