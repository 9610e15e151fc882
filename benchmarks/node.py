"""The benchmark node: a synthetic daily price table, in a module as small as a user's own.

The cron-job benchmark (``benchmarks/cron.py``) imports its node from here, so a timed job
imports what a user's job imports (lakenodes, NumPy, pyarrow) and not the benchmark harness
(``benchmarks/harness.py``, ``processes.py``, ``peers.py``: its reports, process pools, ArcticDB glue).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pyarrow as pa

from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData, Lake

DAY = datetime.timedelta(days=1)
START = datetime.datetime(2015, 1, 1, tzinfo=datetime.UTC)


def asset_ids(count: int) -> list[str]:
    return [f"A{i:05d}" for i in range(count)]


class BenchConfig(DataNodeConfiguration):
    assets: int
    label: str = "bench"


def bench_config(assets: int, label: str) -> BenchConfig:
    """A configuration with a published identifier, so runs pay the catalog's identifier claim."""
    metadata = DataNodeMetaData(identifier=f"bench_{label}_{assets}", description=f"benchmark prices ({label})",
                                data_frequency_id="1d")
    return BenchConfig(assets=assets, label=label, node_metadata=metadata)


class BenchPrices(DataNode):
    """A synthetic daily price table: ``days_per_run`` new days per asset on every run."""

    days_per_run: ClassVar[int] = 1

    def __init__(self, config: BenchConfig, *, lake: Lake | None = None, days_per_run: int = 1):
        super().__init__(config, lake=lake)
        self.days_per_run = days_per_run

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    def get_asset_list(self) -> list[str]:
        return asset_ids(self.config.assets)

    def update(self) -> pa.Table:
        last = self.update_statistics.max_time_index_value
        first = START if last is None else last + DAY
        return price_rows(asset_ids(self.config.assets), first, self.days_per_run)


def price_rows(uids: Sequence[str], first: datetime.datetime, days: int, seed: int = 7) -> pa.Table:
    """``days`` daily rows per asset from ``first``, sorted by (time_index, unique_identifier)."""
    n = len(uids) * days
    rng = np.random.default_rng(seed)
    base = np.datetime64(first.replace(tzinfo=None), "us")
    times = base + np.repeat(np.arange(days, dtype="int64"), len(uids)) * np.int64(86_400_000_000)
    return pa.table({
        "time_index": pa.array(times, pa.timestamp("us", "UTC")),
        "unique_identifier": pa.array(np.tile(np.array(uids, dtype=object), days), pa.string()),
        "close": pa.array(100 + rng.standard_normal(n).cumsum() * 0.01),
        "volume": pa.array(rng.integers(0, 1_000_000, n)),
    })
