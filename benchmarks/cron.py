"""One daily update as a cron job runs it: a brand-new interpreter that imports what it needs,
appends one row per asset and exits. Timed from outside by ``benchmarks/writes.py`` (``daily``
section, "whole process" rows: interpreter start-up, imports and the write).

    python -m benchmarks.cron lakenodes URI ASSETS LABEL OPTIONS_JSON   # BenchPrices(...).run()
    python -m benchmarks.cron raw URI ASSETS WHEN OPTIONS_JSON          # pyarrow + write_deltalake
    python -m benchmarks.cron floor URI ASSETS WHEN OPTIONS_JSON        # the same plus polars and a pydantic model
    python -m benchmarks.cron script URI ASSETS LABEL OPTIONS_JSON      # CronPrices(...).run()
    python -m lakenodes --lake URI run benchmarks.cron:CronPrices --config '{"assets": ASSETS, "label": LABEL}'

The raw job imports only numpy, pyarrow and deltalake and builds its rows inline, as a script
without lakenodes would, from NumPy buffers (``pa.array()`` would import pandas); the lakenodes
job imports the benchmark node from ``benchmarks.node`` (a module as small as a user's) and
builds its rows the same way.
"""

from __future__ import annotations

import datetime
import json
import sys

import numpy as np
import pyarrow as pa


def daily_rows(assets: int, day: datetime.datetime) -> pa.Table:
    """One row per asset at ``day``, built from NumPy buffers as a careful script builds them:
    ``pa.array()`` of Python or NumPy values asks pyarrow's pandas shim first, which imports pandas
    (~0.15 s) whenever it is installed."""
    def column(kind: pa.DataType, values: np.ndarray) -> pa.Array:
        return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])

    names = [f"A{i:05d}".encode() for i in range(assets)]
    offsets = np.cumsum([0, *map(len, names)], dtype=np.int32)
    return pa.table({
        "time_index": column(pa.timestamp("us", "UTC"), np.full(assets, int(day.timestamp()) * 1_000_000)),
        "unique_identifier": pa.Array.from_buffers(pa.string(), assets, [None, pa.py_buffer(offsets),
                                                                         pa.py_buffer(b"".join(names))]),
        "close": column(pa.float64(), 100 + np.random.default_rng(7).standard_normal(assets)),
        "volume": column(pa.int64(), np.random.default_rng(8).integers(0, 1_000_000, assets)),
    })


def raw_job(uri: str, assets: int, when: str, options: dict[str, str]) -> None:
    from deltalake import write_deltalake

    data = daily_rows(assets, datetime.datetime.fromisoformat(when))
    write_deltalake(uri, data, mode="append", partition_by=["unique_identifier"], storage_options=options or None)


def lakenodes_job(uri: str, assets: int, label: str, options: dict[str, str]) -> None:
    from benchmarks.node import DAY, START, BenchPrices, bench_config
    from lakenodes import Lake

    node = BenchPrices(bench_config(assets, label), lake=Lake(uri, storage_options=options or None))

    def update() -> pa.Table:  # BenchPrices.update's rows, built as the raw job builds them
        last = node.update_statistics.max_time_index_value
        return daily_rows(assets, START if last is None else last + DAY)

    node.update = update  # type: ignore[method-assign]
    node.run()


def __getattr__(name: str) -> type:
    """``CronPrices``, built on first access (``lakenodes run benchmarks.cron:CronPrices`` reads it),
    so the raw job never imports lakenodes."""
    if name != "CronPrices":
        raise AttributeError(name)
    from benchmarks.node import DAY, START, BenchConfig, BenchPrices

    class CronPrices(BenchPrices):
        """``BenchPrices`` as ``lakenodes run`` runs it; its rows built as the raw job builds them."""

        Config = BenchConfig  # what `lakenodes run --config` validates into

        def update(self) -> pa.Table:
            last = self.update_statistics.max_time_index_value
            return daily_rows(self.config.assets, START if last is None else last + DAY)

    globals()[name] = CronPrices
    return CronPrices


def script_job(uri: str, assets: int, label: str, options: dict[str, str]) -> None:
    """The node ``lakenodes run`` runs, run by a Python script instead."""
    from benchmarks.node import BenchConfig
    from lakenodes import Lake

    node_class = __getattr__("CronPrices")
    node_class(BenchConfig(assets=assets, label=label), lake=Lake(uri, storage_options=options or None)).run()


def floor_job(uri: str, assets: int, when: str, options: dict[str, str]) -> None:
    """The raw job plus what any polars + pydantic tool pays (import polars, one pydantic model
    defined and validated: ``import pydantic`` alone loads little, the first model builds its
    validator machinery): what bounds the lakenodes job."""
    import polars  # noqa: F401
    from pydantic import BaseModel

    class Job(BaseModel):
        assets: int
        when: datetime.datetime

    Job(assets=assets, when=when)
    raw_job(uri, assets, when, options)


def main(argv: list[str]) -> int:
    kind, uri, assets, extra, options = argv
    job = {"raw": raw_job, "floor": floor_job, "script": script_job}.get(kind, lakenodes_job)
    job(uri, int(assets), extra, json.loads(options))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
