"""Measurements in new interpreters: functions run in a spawned process (``fresh_process``; spawn,
as forking after deltalake ran hangs), whole ``python`` commands timed as a scheduler starts them,
and ``python -X importtime`` import costs."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
from deltalake import write_deltalake

from benchmarks.node import DAY, START, BenchPrices, asset_ids, bench_config, price_rows
from lakenodes import Lake
from lakenodes._internal.afterwards import settle
from lakenodes.core.frames import normalize_frame

Measured = TypeVar("Measured")


def fresh_process(fn: Callable[..., Measured], *args: Any) -> Measured:
    """Run ``fn(*args)`` in a brand-new spawned interpreter and return what it measured."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def fresh_daily_run(uri: str, options: dict[str, str], assets: int, label: str) -> tuple[float, float, float]:
    """Seconds of one ``run()`` in this fresh interpreter, the seconds of it spent in garbage
    collections (the full one a fresh interpreter is due lands wherever allocations trigger it),
    and the seconds the work it left for after it returned took to finish (its file facts on an
    object store; the interpreter would wait for it at exit)."""
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
    settle()
    return elapsed, sum(collecting[:len(collecting) // 2 * 2]), time.perf_counter() - start - elapsed


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


def fresh_raw_append(uri: str, options: dict[str, str], assets: int, when: str) -> float:
    data = price_rows(asset_ids(assets), datetime.datetime.fromisoformat(when), 1)
    start = time.perf_counter()
    write_deltalake(uri, data, mode="append", partition_by=["unique_identifier"], storage_options=options or None)
    return time.perf_counter() - start


def fresh_floor_append(uri: str, options: dict[str, str], assets: int, when: str) -> float:
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


def fresh_statistics(uri: str, options: dict[str, str], assets: int, label: str) -> float:
    lake = Lake(uri, storage_options=options or None)
    node = BenchPrices(bench_config(assets, label), lake=lake)
    start = time.perf_counter()
    node.compute_update_statistics()
    return time.perf_counter() - start


def fresh_latest_rows(uri: str, options: dict[str, str], assets: int, label: str, table_uri: str, kind: str) -> float:
    """Seconds of reading the latest row of each of ``assets`` assets in this fresh interpreter, as a
    cron job reads a dependency's table: ``kind`` ``"ours"`` (``get_last_observation``), ``"scan"``
    (``pl.scan_delta`` of ``table_uri`` keeping each asset's latest row) or ``"floor"`` (the table
    opened, each asset's file with the latest ``max`` statistic read by polars, its latest row kept:
    what any reader of this layout pays in a new process). Imports and the node's construction are
    excluded: the read alone, nothing of it known to the process."""
    import importlib
    import logging

    import polars as pl

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for module in ("pyarrow.acero", "pyarrow.compute", "pyarrow.dataset"):
        importlib.import_module(module)
    node = BenchPrices(bench_config(assets, label), lake=Lake(uri, storage_options=options or None))
    start = time.perf_counter()
    if kind == "ours":
        rows = len(node.get_last_observation())
    elif kind == "scan":
        latest = pl.col("time_index") == pl.col("time_index").max().over("unique_identifier")
        rows = pl.scan_delta(table_uri, storage_options=options or None).filter(latest).collect().height
    else:
        rows = _latest_files_read(table_uri, options).height
    elapsed = time.perf_counter() - start
    if rows != assets:
        raise AssertionError(f"{kind}: {rows} latest rows, expected {assets}")
    return elapsed


def _latest_files_read(table_uri: str, options: dict[str, str]) -> Any:
    """The latest row of each file holding an asset's latest ``max`` statistic (one file per asset
    here), read by polars from the paths the table's add actions give, the partition column left out."""
    import polars as pl
    from deltalake import DeltaTable

    table = DeltaTable(table_uri, storage_options=options or None)
    actions = pl.from_arrow(pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all())
    actions = actions.select("path", "partition.unique_identifier", "max.time_index")
    last = actions.sort("max.time_index").group_by("partition.unique_identifier").last()
    root = table.table_uri.rstrip("/")
    files = pl.scan_parquet([f"{root}/{path}" for path in last["path"]], include_file_paths="file",
                            storage_options=options or None)
    return files.filter(pl.col("time_index") == pl.col("time_index").max().over("file")).collect()


def fresh_streamed_backfill(uri: str, options: dict[str, str], assets: int, days: int, label: str,
                            kind: str) -> tuple[float, int]:
    """A backfill of ``assets x days`` rows streamed from a generator (never all in memory): seconds
    and the process's peak RSS in bytes. ``kind``: ``"ours"`` (a lakenodes run), ``"raw"`` (the same
    stream to ``write_deltalake``) or ``"published"`` (the floor of a published new table: each batch
    through the frame rules, that stream to ``write_deltalake``, then one append to each of the 3
    catalog tables a new lakenodes table needs, under ``uri``'s parent)."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    uids, chunk = asset_ids(assets), max(1, 500_000 // assets)
    schema = price_rows(uids[:1], START, 1).schema

    def batches() -> Any:
        for first in range(0, days, chunk):
            yield from price_rows(uids, START + first * DAY, min(chunk, days - first), seed=first).to_batches()

    def validated() -> Any:
        for batch in batches():
            yield from normalize_frame(pa.Table.from_batches([batch]), ()).table.to_batches()

    reader = pa.RecordBatchReader.from_batches(schema, validated() if kind == "published" else batches())
    start = time.perf_counter()
    if kind == "ours":
        node = BenchPrices(bench_config(assets, label), lake=Lake(uri, storage_options=options or None))
        node.update = lambda: reader
        node.run()
    else:
        write_deltalake(uri, reader, partition_by=["unique_identifier"], storage_options=options or None)
    if kind == "published":
        append_catalog_records(f"{uri.rsplit('/', 1)[0]}/catalog", label, options)
    elapsed = time.perf_counter() - start
    return elapsed, peak_rss()


def append_catalog_records(catalog: str, storage_hash: str, options: dict[str, str]) -> None:
    """The raw stand-in, in the floors of a published new table, for what lakenodes records of one:
    a row appended to each of 3 Delta tables under ``catalog`` (its identifier claim, its updater,
    its table record)."""
    record = pa.table({"name": pa.array(["bench"]), "storage_hash": pa.array([storage_hash])})
    for ledger in ("claims", "updates", "tables"):
        write_deltalake(f"{catalog}/{ledger}", record, mode="append", storage_options=options or None)


def peak_rss() -> int:
    """This process's peak resident memory in bytes, its own alone. On Linux that is ``VmHWM``:
    ``ru_maxrss`` survives the exec of a spawned interpreter, so it reports the parent's size at the
    fork when the parent (this benchmark, holding its tables) is the larger."""
    import resource

    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


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
