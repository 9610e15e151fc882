"""Crash safety: ``run()`` killed with SIGKILL at random points, 20 times, on a local and an S3 lake.

A child process runs one appender (``DailyBatch`` from test_concurrency, 10 assets, one new day
per run). It writes a marker line at each step it reaches (``ready`` before ``run()``,
``update`` inside ``update()``, ``commit-begin``/``commit-end`` around the Delta write,
``done`` after ``run()`` returned). The parent cycles through kill points — wait for one marker,
then SIGKILL after a random delay — so kills land before, during and after the commit. After each
kill: the table loads (DeltaTable) and reads (polars), holds all or none of the killed run's rows,
and the next normal run completes the data exactly, without duplicates.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_concurrency import SPAWN, DailyBatch, appender, assert_table_exact, assets, day, frame, stored_rows

from lakenodes import Lake, use_lake

KILLS = 20
BATCH = assets(10)
UPDATE_SECONDS = 0.3  # update() "calls a slow vendor API": a kill during it is surely before the commit
PHASES = {  # last marker written before the kill -> where the run was
    "": "starting (imports, node construction)",
    "ready": "registration / statistics",
    "update": "update / validation (before the commit)",
    "commit-begin": "write: data files and commit",
    "commit-end": "after the commit (catalog, run record)",
    "done": "finished before the kill",
}


@dataclass(frozen=True)
class KillPoint:
    """Wait for ``marker``, then kill after a uniform random delay in ``[0, max_delay]`` seconds."""

    marker: str
    max_delay: float


KILL_POINTS = (KillPoint("ready", 0.2), KillPoint("update", UPDATE_SECONDS),
               KillPoint("commit-begin", 0.05), KillPoint("commit-end", 0.03))


def crash_child(uri: str, env: dict[str, str], last_day: int, markers: str, go) -> None:
    """Child body: wait for ``go``, then run one appender, writing markers (see module doc)."""
    os.environ.update(env)
    instrument(Path(markers))
    with use_lake(Lake(uri)):
        node = appender(BATCH, last_day=last_day)
        go.wait()
        mark(Path(markers), "ready")
        try:
            node.run()
        except Exception as error:
            mark(Path(markers), f"error {type(error).__name__}: {error}")
            raise
        mark(Path(markers), "done")


def mark(path: Path, name: str) -> None:
    with path.open("a") as handle:
        handle.write(name + "\n")


def instrument(markers: Path) -> None:
    """Markers around update() and the Delta data write (test-side patches; the library has no hooks)."""
    from lakenodes.lake import store as storage

    update, write = DailyBatch.update, storage.write_deltalake

    def slow_update(self):
        mark(markers, "update")
        time.sleep(UPDATE_SECONDS)
        return update(self)

    def marked_write(*args, **kwargs):
        mark(markers, "commit-begin")
        result = write(*args, **kwargs)
        mark(markers, "commit-end")
        return result

    DailyBatch.update, storage.write_deltalake = slow_update, marked_write


class Child:
    """A spawned child, imported and waiting for ``go`` (spawned ahead so imports overlap the previous kill)."""

    def __init__(self, lake: Lake, env: dict[str, str], last_day: int, workdir: Path):
        self.markers = workdir / f"markers-{last_day}.txt"
        self.markers.touch()
        self.go = SPAWN.Event()
        self.process = SPAWN.Process(target=crash_child, args=(lake.uri, env, last_day, str(self.markers), self.go))
        self.process.start()

    def reached(self) -> list[str]:
        return self.markers.read_text().split("\n")[:-1]

    def wait_for(self, marker: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reached = self.reached()
            errors = [line for line in reached if line.startswith("error")]
            assert not errors, errors
            if marker in reached or "done" in reached:
                return
            if not self.process.is_alive():
                raise AssertionError(f"child exited with {self.process.exitcode} after {reached}")
            time.sleep(0.002)
        raise AssertionError(f"child never reached {marker!r} (got {self.reached()})")

    def kill(self) -> str:
        self.process.kill()
        self.process.join(30)
        reached = self.reached()
        return reached[-1] if reached else ""


def crash_scenario(lake: Lake, env: dict[str, str], workdir: Path, kills: int = KILLS, seed: int = 0) -> Counter:
    """Kill ``kills`` runs (run i appends day i), checking the table after each; returns the kill phases."""
    rng = random.Random(seed)
    phases: Counter = Counter()
    committed = Counter()
    with use_lake(lake):
        node = appender(BATCH)
    upcoming = Child(lake, env, 1, workdir)
    for i in range(1, kills + 1):
        child, point = upcoming, KILL_POINTS[(i - 1) % len(KILL_POINTS)]
        child.go.set()
        if i < kills:
            upcoming = Child(lake, env, i + 1, workdir)
        child.wait_for(point.marker)
        time.sleep(rng.uniform(0, point.max_delay))
        phase = PHASES[child.kill()]

        if i == 1 and not node.store.exists():  # killed before the very first commit created the table
            rows = frame([])
        else:
            rows = stored_rows(lake, node)  # a fresh DeltaTable loads and polars reads it
        killed_rows = rows.filter(rows["time_index"] == day(i)).height
        assert killed_rows in (0, len(BATCH)), f"kill {i} ({phase}) left {killed_rows} of {len(BATCH)} rows"
        assert rows.filter(rows["time_index"] > day(i)).height == 0
        phases[phase] += 1
        committed[killed_rows > 0] += 1

        with use_lake(lake):
            appender(BATCH, last_day=i).run()  # the next normal run completes the data
            assert_table_exact(lake, node, BATCH, i)
    print(f"\ncrash figures ({lake.uri}): kills={kills} committed={committed[True]} "
          f"not_committed={committed[False]} phases={dict(phases)}")
    assert committed[True] and committed[False]  # kills after commit-end / during update() guarantee both
    return phases


@pytest.mark.slow
def test_sigkill_at_random_points_local(tmp_path):
    crash_scenario(Lake(tmp_path / "lake"), {}, tmp_path)


@pytest.mark.slow
@pytest.mark.s3
def test_sigkill_at_random_points_s3(s3_server, tmp_path):
    crash_scenario(s3_server.new_lake(), s3_server.env, tmp_path, seed=1)
