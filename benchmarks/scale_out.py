"""Scale-out benchmark: 8 sharded updaters writing one table, serially, on a spawn process pool and
on a Dask LocalCluster (``run_many(..., executor=...)``), next to the raw floor (the same 8 frames
appended with ``write_deltalake``, serially, in this process).

Every mode starts from an empty lake and writes the same rows (``--quick``: 8 x 100 assets x 500
days, 400,000 rows, once; full: 8 x 250 assets x 2,000 days, 4 million rows, 3 repeats).
Reported: wall time of the run, rows/s, and the start-up cost of the executor (creating the pool
or the cluster until every worker has imported lakenodes), separately and included. Workers =
``os.cpu_count()`` (2 on the project's machine): with 2 cores, the parallel modes can at best
halve the compute, and every updater's commit still serializes on the one table's Delta log.

Run ``python -m benchmarks.scale_out [--quick]`` from the repository root.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake
from pydantic import Field

from benchmarks.node import price_rows
from lakenodes import DataNode, DataNodeConfiguration, Lake, run_many, use_lake

UTC = datetime.UTC
START = datetime.datetime(2020, 1, 1, tzinfo=UTC)
SHARDS = 8
RESULTS = Path(__file__).resolve().parent / "results" / "scale_out.json"


class ShardConfig(DataNodeConfiguration):
    uids: list[str] = Field(..., json_schema_extra={"update_only": True})  # shards share one table
    days: int = Field(250, json_schema_extra={"update_only": True})


class ShardedPrices(DataNode):
    """``days`` daily rows of its own assets from START (everything new on the first run)."""

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    def get_asset_list(self) -> list[str]:
        return list(self.config.uids)

    def update(self) -> pa.Table:
        if self.update_statistics.max_time_index_value is not None:
            return pa.table({})
        return shard_rows(self.config.uids, self.config.days)


def shard_rows(uids: list[str], days: int) -> pa.Table:
    """The rows of one shard: ``days`` daily prices of ``uids`` (seeded by the shard, not the process)."""
    return price_rows(uids, START, days, seed=zlib.crc32(uids[0].encode()))


def shards(assets: int, days: int) -> list[ShardedPrices]:
    return [ShardedPrices(ShardConfig(uids=[f"S{shard}A{i:04d}" for i in range(assets)], days=days))
            for shard in range(SHARDS)]


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[Executor]:
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@contextlib.contextmanager
def dask_cluster(workers: int) -> Iterator[Executor]:
    import distributed

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client.get_executor()


def warm_up(token: str) -> str:
    """A first task for a worker: importing this module imports lakenodes, delta-rs and polars
    (``token`` keeps Dask from caching it; the sleep spreads the tasks over the workers)."""
    time.sleep(0.5)
    return token


def timed_run(lake_dir: Path, assets: int, days: int,
              executor: Callable[[], contextlib.AbstractContextManager[Executor]] | None) -> dict[str, float]:
    """One mode on a fresh lake: start-up seconds (pool/cluster up, every worker warmed up) and run seconds."""
    with use_lake(Lake(lake_dir)), contextlib.ExitStack() as stack:
        nodes = shards(assets, days)
        started = time.perf_counter()
        pool = None
        if executor is not None:
            pool = stack.enter_context(executor())
            workers = os.cpu_count() or 2
            for future in [pool.submit(warm_up, uuid.uuid4().hex) for _ in range(workers)]:
                future.result()  # the workers are up, with lakenodes and this module imported
        startup = time.perf_counter() - started
        began = time.perf_counter()
        summaries = run_many(nodes, executor=pool)
        elapsed = time.perf_counter() - began
    rows = sum(summary.rows_written for summary in summaries.values())
    assert rows == SHARDS * assets * days, rows
    return {"startup_s": startup, "run_s": elapsed, "rows": rows,
            "node_s": sum(summary.duration_s for summary in summaries.values())}


def raw_floor(lake_dir: Path, assets: int, days: int) -> dict[str, float]:
    """The same 8 frames appended to one partitioned Delta table by ``write_deltalake``."""
    frames = [shard_rows(node.config.uids, days) for node in shards(assets, days)]
    uri = str(lake_dir / "raw")
    began = time.perf_counter()
    for frame in frames:
        write_deltalake(uri, frame, mode="append", partition_by=["unique_identifier"])
    elapsed = time.perf_counter() - began
    return {"startup_s": 0.0, "run_s": elapsed, "rows": sum(f.num_rows for f in frames), "node_s": elapsed}


def measure(quick: bool, repeats: int) -> dict[str, Any]:
    assets, days = (100, 500) if quick else (250, 2000)
    workers = os.cpu_count() or 2
    modes: dict[str, Callable[[Path], dict[str, float]]] = {
        "raw write_deltalake (serial)": lambda d: raw_floor(d, assets, days),
        "serial (run_many, no executor)": lambda d: timed_run(d, assets, days, None),
        f"spawn process pool ({workers} workers)": lambda d: timed_run(d, assets, days, lambda: process_pool(workers)),
        f"Dask LocalCluster ({workers} worker processes)": lambda d: timed_run(
            d, assets, days, lambda: dask_cluster(workers)),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in modes}
    scratch = Path(tempfile.mkdtemp(prefix="lakenodes-scale-out-"))
    try:
        for attempt in range(repeats):  # modes alternate so machine noise hits all alike
            for index, (name, mode) in enumerate(modes.items()):
                print(f"[{attempt + 1}/{repeats}] {name} ...", file=sys.stderr, flush=True)
                results[name].append(mode(scratch / f"{attempt}-{index}"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = {name: {key: statistics.median(run[key] for run in runs) for key in ("startup_s", "run_s", "rows", "node_s")}
            for name, runs in results.items()}
    return {"mode": "quick" if quick else "full", "cores": os.cpu_count(), "workers": workers, "shards": SHARDS,
            "assets_per_shard": assets, "days": days, "repeats": repeats, "results": rows}


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (f"lakenodes scale-out ({report['mode']}): {report['shards']} sharded updaters x "
             f"{report['assets_per_shard']} assets x {report['days']} days -> one table; {report['cores']} cores")
    table = Table(title=title, title_justify="left", caption=(
        "medians of the repeats; run = run_many wall time once the executor is up; start-up = pool/cluster "
        "creation until every worker imported lakenodes; rows/s with start-up = rows / (start-up + run); "
        "sum of node runs = the RunSummary.duration_s of the 8 updaters added up (above the run time: they overlapped; "
        "above serial's: each took longer, sharing 2 cores and retrying commits that collided)."),
        caption_justify="left")
    for column in ("mode", "start-up", "run", "rows/s", "rows/s with start-up", "vs serial (run)", "sum of node runs"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    serial = next(row["run_s"] for name, row in report["results"].items() if name.startswith("serial"))
    for name, row in report["results"].items():
        total = row["startup_s"] + row["run_s"]
        table.add_row(name, f"{row['startup_s']:.2f} s", f"{row['run_s']:.2f} s", f"{row['rows'] / row['run_s']:,.0f}",
                      f"{row['rows'] / total:,.0f}", f"{serial / row['run_s']:.2f}x", f"{row['node_s']:.2f} s")
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_out", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (about 2 minutes on 2 cores)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    report = measure(args.quick, 1 if args.quick else 3)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
