"""Nodes that journal every ``update()`` call to a file, so a test can count calls made in other
processes (spawn pools, Dask workers) as well as in its own. Shared by the run and executor tests."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
from pydantic import Field

from lakenodes import DataNode, DataNodeConfiguration

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
RUNTIME = {"runtime_only": True}


class JournalConfig(DataNodeConfiguration):
    name: str
    journal: str = Field(..., json_schema_extra=RUNTIME)
    days: int | None = Field(None, json_schema_extra=RUNTIME)  # stop after this many rows (None: never)
    failure: str | None = Field(None, json_schema_extra=RUNTIME)  # update() raises RuntimeError(failure)


class Daily(DataNode):
    """Each ``update()`` journals ``"<name> <pid>"``, then returns one row: the day after its
    watermark (or nothing once ``days`` rows are stored)."""

    def __init__(self, config: JournalConfig, deps: dict[str, DataNode] | None = None, **kwargs):
        self.deps = dict(deps or {})
        super().__init__(config, **kwargs)

    def dependencies(self) -> dict[str, DataNode]:
        return dict(self.deps)

    def update(self) -> pl.DataFrame:
        with open(self.config.journal, "a", encoding="utf-8") as journal:
            journal.write(f"{self.config.name} {os.getpid()}\n")
        if self.config.failure:
            raise RuntimeError(self.config.failure)
        last = self.update_statistics.max_time_index_value
        stored = 0 if last is None else (last - START).days + 1
        if self.config.days is not None and stored >= self.config.days:
            return pl.DataFrame()
        return pl.DataFrame({"time_index": [START + dt.timedelta(days=stored)], "value": [float(stored)]})


def daily(tmp_path: Path, name: str, deps: dict[str, DataNode] | None = None, **config) -> Daily:
    """A ``Daily`` node journaling to ``tmp_path/journal.txt``."""
    return Daily(JournalConfig(name=name, journal=str(tmp_path / "journal.txt"), **config), deps)


def journal(tmp_path: Path) -> list[tuple[str, int]]:
    """The ``(name, pid)`` of every ``update()`` call so far, in order."""
    path = tmp_path / "journal.txt"
    if not path.exists():
        return []
    return [(name, int(pid)) for name, pid in (line.split() for line in path.read_text().splitlines())]


def stored_rows(node: DataNode) -> int:
    """Rows in the node's table (0 before its first write)."""
    return node.get_df_between_dates(frame="arrow").num_rows
