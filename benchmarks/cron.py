"""One daily update as a cron job runs it: a brand-new interpreter that imports what it needs,
appends one row per asset and exits. Timed from outside by ``benchmarks/core.py`` (``daily``
section, "whole process" rows: interpreter start-up, imports and the write).

    python -m benchmarks.cron lakenodes URI ASSETS LABEL OPTIONS_JSON   # BenchPrices(...).run()
    python -m benchmarks.cron raw URI ASSETS WHEN OPTIONS_JSON          # pyarrow + write_deltalake

The raw job imports only numpy, pyarrow and deltalake and builds its rows inline, as a script
without lakenodes would; the lakenodes job imports the benchmark node from ``benchmarks.core``.
"""

from __future__ import annotations

import json
import sys


def raw_job(uri: str, assets: int, when: str, options: dict[str, str]) -> None:
    import datetime

    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    day = datetime.datetime.fromisoformat(when)
    data = pa.table({
        "time_index": pa.array([day] * assets, pa.timestamp("us", "UTC")),
        "unique_identifier": pa.array([f"A{i:05d}" for i in range(assets)], pa.string()),
        "close": pa.array(100 + np.random.default_rng(7).standard_normal(assets)),
        "volume": pa.array(np.random.default_rng(8).integers(0, 1_000_000, assets)),
    })
    write_deltalake(uri, data, mode="append", partition_by=["unique_identifier"], storage_options=options or None)


def lakenodes_job(uri: str, assets: int, label: str, options: dict[str, str]) -> None:
    from benchmarks.core import BenchPrices, bench_config
    from lakenodes import Lake

    BenchPrices(bench_config(assets, label), lake=Lake(uri, storage_options=options or None)).run()


def main(argv: list[str]) -> int:
    kind, uri, assets, extra, options = argv
    job = raw_job if kind == "raw" else lakenodes_job
    job(uri, int(assets), extra, json.loads(options))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
