"""Concurrent updaters of one table, in real processes: nothing lost, nothing duplicated.

The workload (``DailyBatch``) is shared with test_crash.py and test_faults.py:

- an *appender* (``restater=None``) owns a batch of assets and, per run, appends the next day of
  each of them (value ``original(uid, day)``);
- a *restater* (``restater=k``) rewrites the even-day rows of its batch it finds unrestated with
  ``restated(uid, day)`` (a MERGE). Restated values are a fixed function of the key, so the
  final table is checkable whatever the commit order: a key that any restater reports having
  written holds ``restated``, every other key ``original``.

Scale: ``LAKENODES_STRESS_SCALE=full`` runs 8 appenders x 25 runs + 4 restaters x 10 runs
(docs/reliability.md); the default runs the same scenario with 8 runs per appender and 4 per
restater (see ``stress_scale``). Catalog registration under contention is tested at the end.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import multiprocessing
import os
import queue
import subprocess
import sys
import textwrap
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable
from pydantic import Field

from lakenodes import (
    Asset,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    Lake,
    RecordDefinition,
    TimeIndexMetaTable,
    use_lake,
)
from lakenodes.catalog import catalog

UTC = dt.timezone.utc
DAY0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
IDENTIFIER = "reliability_daily_batch"
SPAWN = multiprocessing.get_context("spawn")


def day(n: int) -> dt.datetime:
    """Day ``n`` of the workload (day 1 is DAY0)."""
    return DAY0 + dt.timedelta(days=n - 1)


def original(uid: str, when: dt.datetime) -> float:
    return float(zlib.crc32(f"{uid}|{when:%Y-%m-%d}".encode()) % 100_000) / 100


def restated(uid: str, when: dt.datetime) -> float:
    return original(uid, when) + 1_000.0


class BatchConfig(DataNodeConfiguration):
    asset_batch: list[str] = Field(..., json_schema_extra={"update_only": True})
    restater: int | None = Field(None, json_schema_extra={"update_only": True})
    last_day: int = Field(10_000, json_schema_extra={"update_only": True})
    days_per_run: int = Field(1, json_schema_extra={"update_only": True})
    records: list[RecordDefinition] = [RecordDefinition(column_name="close", dtype="float64")]
    node_metadata: DataNodeMetaData = Field(
        default_factory=lambda: DataNodeMetaData(identifier=IDENTIFIER, data_frequency_id="1d"),
        json_schema_extra={"runtime_only": True},
    )


class DailyBatch(DataNode):
    """Appends the next day of each asset of its batch (or restates stored days, see module doc)."""

    def dependencies(self):
        return {}

    def get_asset_list(self):
        return list(self.config.asset_batch)

    def update(self) -> pl.DataFrame:
        if self.config.restater is not None:
            return self._restate()
        stats = self.update_statistics
        rows = []
        for uid in self.config.asset_batch:
            last = stats.get_last_update_index_2d(uid)
            for step in range(1, self.config.days_per_run + 1):
                following = last + dt.timedelta(days=step)
                if following <= day(self.config.last_day):
                    rows.append((following, uid, original(uid, following)))
        return frame(rows)

    def _restate(self) -> pl.DataFrame:
        stored = self.get_df_between_dates(unique_identifier_list=self.config.asset_batch)
        rows = [(when, uid, restated(uid, when)) for when, uid, close in stored.iter_rows()
                if close == original(uid, when) and when.day % 2 == 0]  # even days only: both kinds remain
        return frame(rows[-2 * len(self.config.asset_batch):])  # the latest ones: small merges


def frame(rows: Sequence[tuple[dt.datetime, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String,
                                      "close": pl.Float64}, orient="row")


def appender(batch: Iterable[str], **config) -> DailyBatch:
    return DailyBatch(BatchConfig(asset_batch=list(batch), offset_start=day(0), **config))


def restater(k: int, batch: Iterable[str]) -> DailyBatch:
    return DailyBatch(BatchConfig(asset_batch=list(batch), restater=k, offset_start=day(0)))


# -- child processes --------------------------------------------------------------------------------
@dataclass
class Job:
    """What one child process does: ``runs`` runs of one DailyBatch updater."""

    batch: list[str]
    runs: int
    restater: int | None = None
    pause: float = 0.0  # seconds between runs (restaters spread their merges over the appenders' runs)
    round_barrier: bool = False  # wait for every child before each run (maximal overlap)
    last_day: int = 10_000  # appenders stop there (overlapping batches advance an asset more than once a round)


@dataclass
class Outcome:
    update_hash: str = ""
    restater: bool = False
    succeeded: int = 0
    retries: int = 0  # commit attempts lakenodes retried (conflicts, transient storage errors)
    errors: list[str] = field(default_factory=list)
    written: list[tuple[dt.datetime, str]] = field(default_factory=list)


def run_job(uri: str, env: dict[str, str], job: Job, start, results) -> None:
    """Child process body: run ``job`` against the lake at ``uri`` and put an Outcome on ``results``."""
    os.environ.update(env)
    outcome = Outcome(restater=job.restater is not None)
    retries = RetryCounter()
    logging.getLogger("lakenodes").addHandler(retries)
    try:
        with use_lake(Lake(uri)):
            node = appender(job.batch, last_day=job.last_day) if job.restater is None \
                else restater(job.restater, job.batch)
            outcome.update_hash = node.update_hash
            start.wait(timeout=300)
            for _ in range(job.runs):
                if job.round_barrier:
                    start.wait(timeout=300)
                try:
                    _, written = type(node)(node.config).run()
                    outcome.succeeded += 1
                    outcome.written += list(zip(written["time_index"], written["unique_identifier"], strict=True)) \
                        if written.height else []
                except Exception as error:  # reported to the parent, which fails the test
                    outcome.errors.append(f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
                time.sleep(job.pause)
    except Exception as error:
        outcome.errors.append(f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
    outcome.retries = retries.count
    results.put(outcome)


class RetryCounter(logging.Handler):
    """Counts lakenodes' "retrying" warnings (one per retried commit attempt)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "retrying" in record.getMessage()


def run_jobs(lake: Lake, env: dict[str, str], jobs: Sequence[Job], timeout: float = 900) -> list[Outcome]:
    """Run every job in its own spawned process, all starting together; return their outcomes."""
    return in_processes(run_job, [(lake.uri, env, job) for job in jobs], timeout)


def in_processes(target: Callable, argument_lists: Sequence[tuple], timeout: float = 900) -> list[Any]:
    """Spawn ``target(*arguments, start_barrier, results_queue)`` per argument tuple; collect one result each."""
    start, results = SPAWN.Barrier(len(argument_lists)), SPAWN.Queue()
    processes = [SPAWN.Process(target=target, args=(*arguments, start, results)) for arguments in argument_lists]
    for process in processes:
        process.start()
    collected, deadline = [], time.monotonic() + timeout
    try:
        while len(collected) < len(processes):
            try:
                collected.append(results.get(timeout=max(1.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"only {len(collected)} of {len(processes)} children reported in {timeout}s") from None
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    return collected


# -- checks -----------------------------------------------------------------------------------------
def stored_rows(lake: Lake, node: DataNode) -> pl.DataFrame:
    """The table as any Delta reader sees it (a fresh DeltaTable, not lakenodes' cache)."""
    table = DeltaTable(node.table_uri, storage_options=lake.storage_options or None)
    return pl.from_arrow(table.to_pyarrow_table()).sort(["unique_identifier", "time_index"])


def duplicate_keys(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.group_by(["time_index", "unique_identifier"]).len().filter(pl.col("len") > 1)


def expected_rows(assets: Iterable[str], days: int, restated_keys: set[tuple[dt.datetime, str]]) -> pl.DataFrame:
    rows = [(day(n), uid, restated(uid, day(n)) if (day(n), uid) in restated_keys else original(uid, day(n)))
            for uid in assets for n in range(1, days + 1)]
    return frame(rows).sort(["unique_identifier", "time_index"])


def assert_table_exact(lake: Lake, node: DataNode, assets: Iterable[str], days: int,
                       restated_keys: set[tuple[dt.datetime, str]] = frozenset()) -> pl.DataFrame:
    rows = stored_rows(lake, node)
    assert duplicate_keys(rows).height == 0, duplicate_keys(rows)
    expected = expected_rows(assets, days, set(restated_keys))
    keys = ["time_index", "unique_identifier"]
    differences = expected.join(rows, on=keys, how="full", suffix="_stored", coalesce=True).filter(
        pl.col("close").ne_missing(pl.col("close_stored")))
    assert differences.height == 0, f"{differences.height} rows differ from the expected table:\n{differences}"
    assert rows.select(expected.columns).equals(expected)
    return rows


def assert_runs_recorded(lake: Lake, outcomes: Sequence[Outcome], storage_hash: str) -> None:
    """One success record per run, no error record, every updater registered on the storage."""
    history = catalog.run_history(lake)
    assert len({run["run_id"] for run in history}) == len(history)
    per_updater = Counter((run["update_hash"], run["status"]) for run in history)
    for outcome in outcomes:
        assert per_updater[(outcome.update_hash, "success")] == outcome.succeeded
        assert per_updater[(outcome.update_hash, "error")] == 0
    registered = {p["update_hash"]: p for p in catalog.update_processes(lake)}
    for outcome in outcomes:
        assert registered[outcome.update_hash]["storage_hash"] == storage_hash
    assert len(TimeIndexMetaTable.filter(lake=lake, storage_hash=storage_hash)) == 1


def assert_no_errors(outcomes: Sequence[Outcome]) -> None:
    errors = [error for outcome in outcomes for error in outcome.errors]
    assert not errors, "\n".join(errors[:3])


# -- scenarios --------------------------------------------------------------------------------------
def assets(n: int) -> list[str]:
    return [f"A{i:02d}" if i % 4 else f"BRK/{i:02d}" for i in range(n)]  # some path-like identifiers


@dataclass(frozen=True)
class Scale:
    appenders: int
    runs: int
    restaters: int
    restater_runs: int
    batch_size: int = 2


def stress_scale() -> Scale:
    """``LAKENODES_STRESS_SCALE=full`` → 8 appenders x 25 runs + 4 restaters; default: 8 x 8 + 4."""
    if os.environ.get("LAKENODES_STRESS_SCALE", "").lower() == "full":
        return Scale(appenders=8, runs=25, restaters=4, restater_runs=10)
    return Scale(appenders=8, runs=8, restaters=4, restater_runs=4)


def stress(lake: Lake, env: dict[str, str], scale: Scale) -> dict[str, int]:
    universe = assets(scale.appenders * scale.batch_size)
    batches = [universe[i * scale.batch_size:(i + 1) * scale.batch_size] for i in range(scale.appenders)]
    # restater k covers two appenders' batches, and every asset is covered by two restaters
    restater_batches = [sorted({*batches[(2 * k) % scale.appenders], *batches[(2 * k + 1) % scale.appenders],
                                *batches[(2 * k + 2) % scale.appenders], *batches[(2 * k + 3) % scale.appenders]})
                        for k in range(scale.restaters)]
    jobs = [Job(batch, scale.runs) for batch in batches]
    jobs += [Job(batch, scale.restater_runs, restater=k, pause=0.2) for k, batch in enumerate(restater_batches)]
    started = time.monotonic()
    outcomes = run_jobs(lake, env, jobs)
    elapsed = time.monotonic() - started
    assert_no_errors(outcomes)
    restated_keys = {key for outcome in outcomes if outcome.restater for key in outcome.written}
    with use_lake(lake):
        node = appender(batches[0])
        rows = assert_table_exact(lake, node, universe, scale.runs, restated_keys)
        assert_runs_recorded(lake, outcomes, node.storage_hash)
    figures = {
        "processes": len(jobs), "runs": sum(o.succeeded for o in outcomes), "rows": rows.height,
        "restated_rows": len(restated_keys), "commit_retries": sum(o.retries for o in outcomes),
        "failures": 0, "duplicates": 0, "seconds": round(elapsed),
    }
    print(f"\nconcurrency figures: {figures}")
    return figures


@pytest.mark.slow
@pytest.mark.s3
def test_concurrent_appenders_and_restaters_on_s3(s3_server):
    stress(s3_server.new_lake(), s3_server.env, stress_scale())


def test_concurrent_appenders_quick_local(tmp_path):
    stress(Lake(tmp_path / "lake"), {}, Scale(appenders=3, runs=3, restaters=1, restater_runs=2))


def test_frames_of_series_in_the_runs_threads_skip_polars_unlocked_dispatch():
    """Regression (polars 1.34, the lowest allowed): the quick test above failed a run's catalog phase after
    its commit with "RuntimeError: dictionary changed size during iteration". Polars before 2.0 builds a
    DataFrame from a *list* of Series through a singledispatch that registers ``pl.Series`` on its first
    use, unlocked (pola-rs/polars#29121), and the recorder's threads built their first such frames at
    once. The frames of Series lakenodes builds in them (catalog rows, panel bounds) never register a
    type there: checked in a fresh interpreter, where nothing has registered one yet."""
    script = textwrap.dedent("""
        import datetime as dt
        import polars as pl
        import pyarrow as pa
        from polars._utils.construction.dataframe import _sequence_to_pydf_dispatcher as dispatcher
        from lakenodes._internal.arrow_rows import arrow_table
        from lakenodes.core.frame_index import index_bounds

        before = set(dispatcher.registry)
        day = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        table = arrow_table([{"at": day, "x": 1}], pa.schema([("at", pa.timestamp("us", "UTC")), ("x", pa.int64())]))
        assert table.num_rows == 1
        times = pa.array([day, day, day + dt.timedelta(days=1), day + dt.timedelta(days=1)], pa.timestamp("us", "UTC"))
        panel = pa.table({"time_index": times, "unique_identifier": ["A", "B", "A", "B"]})
        assert index_bounds(panel, ["time_index", "unique_identifier"])["n"].to_list() == [2, 2]
        print(sorted(t.__name__ for t in set(dispatcher.registry) - before))  # polars < 2: a list of Series adds Series
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def overlapping_appenders(lake: Lake, env: dict[str, str], workers: int, runs: int) -> None:
    """Appenders whose batches overlap append the same new rows at the same moment, round after round."""
    universe = assets(workers)
    batches = [[universe[i], universe[(i + 1) % workers]] for i in range(workers)]
    started = time.monotonic()
    outcomes = run_jobs(lake, env, [Job(batch, runs, round_barrier=True, last_day=runs) for batch in batches])
    assert_no_errors(outcomes)
    print(f"\noverlap figures: processes={workers} runs={sum(o.succeeded for o in outcomes)} "
          f"commit_retries={sum(o.retries for o in outcomes)} seconds={time.monotonic() - started:.0f}")
    with use_lake(lake):
        node = appender(batches[0])
        assert_table_exact(lake, node, universe, runs)
        assert_runs_recorded(lake, outcomes, node.storage_hash)


def test_overlapping_appenders_never_duplicate_local(tmp_path):
    overlapping_appenders(Lake(tmp_path / "lake"), {}, workers=3, runs=4)


@pytest.mark.slow
@pytest.mark.s3
def test_overlapping_appenders_never_duplicate_on_s3(s3_server):
    overlapping_appenders(s3_server.new_lake(), s3_server.env, workers=4, runs=6)


# -- catalog registration under contention ------------------------------------------------------------
def contend(uri: str, env: dict[str, str], action: Callable[[], None], rounds: int, start, results) -> None:
    """Child body: ``rounds`` times, wait for every child, then ``action()`` on the lake; report any error."""
    os.environ.update(env)
    try:
        with use_lake(Lake(uri)):
            for _ in range(rounds):
                start.wait(timeout=300)
                action()
        results.put(None)
    except Exception as error:
        results.put(f"{type(error).__name__}: {error}\n{traceback.format_exc()}")


def register_batch_table() -> None:
    """What a run does to register its table, identifier and updater."""
    from lakenodes.runtime.recorder import catalog_record

    node = appender(["A00"])
    catalog.claim_identifier(node.lake, IDENTIFIER, "", node.storage_hash)
    catalog.register_table(node.lake, catalog_record(node))
    catalog.register_updater(node.lake, node.update_hash, node.storage_hash, "", node.source_class, {})


def asset_specs(worker: int) -> list[dict[str, Any]]:
    """Overlapping asset lists: worker k registers assets k..k+5 (snapshot fixed per asset)."""
    return [{"unique_identifier": uid, "snapshot": {"ticker": uid.replace("/", "."), "name": f"asset {uid}"}}
            for uid in assets(12)[worker:worker + 6]]


def register_assets(worker: int) -> None:
    Asset.batch_get_or_register_custom_assets(asset_specs(worker))


@pytest.mark.slow
@pytest.mark.s3
def test_table_registration_under_contention_on_s3(s3_server):
    lake = s3_server.new_lake()
    errors = in_processes(contend, [(lake.uri, s3_server.env, register_batch_table, 2)] * 6)
    assert errors == [None] * 6, [e for e in errors if e][:2]
    with use_lake(lake):
        node = appender(["A00"])
        records = TimeIndexMetaTable.filter(storage_hash=node.storage_hash)
        assert [(r.identifier, r.storage_hash) for r in records] == [(IDENTIFIER, node.storage_hash)]
        assert catalog.resolve_identifier(lake, IDENTIFIER) == node.storage_hash
        assert [p["update_hash"] for p in catalog.update_processes(lake)] == [node.update_hash]


@pytest.mark.slow
@pytest.mark.s3
def test_asset_registration_under_contention_on_s3(s3_server):
    lake = s3_server.new_lake()
    errors = in_processes(contend, [(lake.uri, s3_server.env, functools.partial(register_assets, k), 3)
                                    for k in range(6)])
    assert errors == [None] * 6, [e for e in errors if e][:2]
    registered = Asset.filter(lake=lake)
    expected = {spec["unique_identifier"]: spec["snapshot"] for k in range(6) for spec in asset_specs(k)}
    assert sorted(a.unique_identifier for a in registered) == sorted(expected)  # each exactly once
    assert all((a.ticker, a.name) == (expected[a.unique_identifier]["ticker"], expected[a.unique_identifier]["name"])
               for a in registered)
