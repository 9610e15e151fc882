"""The write-side sections: imports, daily runs (warm, fresh, cron job), statistics, maintenance
and backfills (in memory and streamed)."""

from __future__ import annotations

import datetime
import statistics as pystats
import time
import uuid
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from benchmarks.harness import (
    Row,
    Sections,
    boundary_footers,
    build_node,
    clear_lakenodes_caches,
    forget_persisted_facts,
    interleaved,
    median_time,
    raw_twin,
)
from benchmarks.node import DAY, START, BenchPrices, asset_ids, bench_config, price_rows
from benchmarks.processes import (
    append_catalog_records,
    cli_job,
    cron_job,
    fresh_daily_run,
    fresh_floor_append,
    fresh_process,
    fresh_raw_append,
    fresh_statistics,
    fresh_streamed_backfill,
    import_seconds,
)
from lakenodes.core.frames import normalize_frame
from lakenodes.lake._scan import add_actions
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.store import TABLE_CONFIGURATION

STREAM_REPEATS = 5


class WriteSections(Sections):
    """The sections that write (and the imports a writing job pays)."""

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

        protected_table = DeltaTable(raw_twin(self.lake, node, "daily-protected", TABLE_CONFIGURATION),
                                     storage_options=self.options or None)
        protected_next, app_ids = [START + s.daily_days * DAY], [f"bench.{uid}" for uid in asset_ids(s.daily_assets)]

        def protected_append() -> None:  # what run() cannot do without: validated rows, overlapping writers refused
            data = price_rows(asset_ids(s.daily_assets), protected_next[0], 1)
            protected_next[0] += DAY
            normalize_frame(data, ())
            stamp = int(time.time() * 1000)
            transactions = [Transaction(app_id, 1, last_updated=stamp) for app_id in [uuid.uuid4().hex, *app_ids]]
            write_deltalake(protected_table, data, mode="append", partition_by=["unique_identifier"],
                            commit_properties=CommitProperties(app_transactions=transactions),
                            storage_options=self.options or None)

        times = interleaved({"ours": node.run, "raw": raw_append, "by_uri": lambda: raw_append(by_uri, by_uri_next),
                             "hand_rolled": hand_rolled, "protected": protected_append}, max(15, s.repeats * 3))
        size = f"{s.daily_assets} assets x {s.daily_days} days"
        self.report.add(Row(self.section("daily"), f"run() +1 row/asset, warm process ({size})", times["ours"],
                            "write_deltalake append, table kept open", times["raw"], 1.2,
                            "the strict floor: the append alone, no log replay"
                            + ("" if self.lake.is_local else "; the file facts run() saves after it returns are "
                               "finished untimed before the next call (see interleaved)")))
        self.report.add(Row(self.section("daily"), f"run() +1 row/asset, warm process ({size})", times["ours"],
                            "write_deltalake(uri) append", times["by_uri"], None,
                            "as raw appends are usually written: each replays the log since its last checkpoint "
                            "(delta-rs' default: every 100 commits), so it slows as the repeats add commits"))
        self.report.add(Row(self.section("daily"), f"run() +1 row/asset, warm process ({size})", times["ours"],
                            "hand-rolled: max time per asset (pl.scan_delta), then the append", times["hand_rolled"],
                            None, "what an updater without lakenodes pays to find what is new before writing it"))
        self.report.add(Row(self.section("daily"), "warm floor: validation + the append with one app transaction per "
                            "asset, lakenodes' table settings", times["protected"],
                            "write_deltalake append, table kept open", times["raw"], None,
                            "the frame rules and the overlapping-writer protection done raw (table kept open): what a "
                            "validating, protected writer pays; the rest of run() is lakenodes' statistics, "
                            "watermark decision, file facts and run record"))
        ours, collecting, afterwards, raw, floor = [], [], [], [], []
        for _ in range(s.fresh_repeats):
            elapsed, collected, finishing = fresh_process(fresh_daily_run, self.lake.uri, self.options,
                                                          s.daily_assets, "daily")
            ours.append(elapsed)
            collecting.append(collected)
            afterwards.append(finishing)
            for fresh, kept in ((fresh_raw_append, raw), (fresh_floor_append, floor)):
                kept.append(fresh_process(fresh, raw_uri, self.options, s.daily_assets, raw_next[0].isoformat()))
                raw_next[0] += DAY
        self.report.add(Row(self.section("daily"), f"run() +1 row/asset, fresh process ({size})",
                            pystats.median(ours), "write_deltalake append (fresh)", pystats.median(raw), 1.3,
                            f"run() / write timed inside; imports excluded; {pystats.median(collecting) * 1e3:.0f} ms "
                            "of it in the garbage collection the interpreter is due (median)"
                            + ("" if self.lake.is_local else
                               f"; then {pystats.median(afterwards) * 1e3:.0f} ms until the file facts, saved after "
                               "run() returned, were written (the interpreter waits for them at exit)")))
        self.report.add(Row(self.section("daily"), "fresh floor: validation + raw append, lakenodes imported",
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

        def floor_footers() -> None:  # what an exact cold reader pays without the facts file
            boundary_footers(node.store.table().table_uri, self.lake)

        repeats = max(3, s.repeats // 2)
        times = interleaved({"cold": cold, "footers": cold_footers, "floor": floor, "floor_footers": floor_footers,
                             "scan": scan}, repeats)
        warm = median_time(node.compute_update_statistics, repeats * 3)
        section = self.section("statistics")
        self.report.add(Row(section, f"{case}: cold", times["cold"], "scan_delta max/asset", times["scan"], target))
        self.report.add(Row(section, f"{case}: cold, no facts file", times["footers"], "scan_delta max/asset",
                            times["scan"], target))
        self.report.add(Row(section, f"{case}: floor (open table + add actions)", times["floor"],
                            "scan_delta max/asset", times["scan"], None, "the log replay every cold Delta reader pays"))
        self.report.add(Row(section, f"{case}: floor without the facts file (+ the boundary files' footers)",
                            times["floor_footers"], "scan_delta max/asset", times["scan"], None,
                            "the log replay, then the footer of each file that may hold an asset's last time (its "
                            "Delta statistics are at milliseconds), read raw with pyarrow, its size taken from the "
                            "log (on S3 one request a footer): what an exact cold reader pays without a cache; "
                            "bounds the 'no facts file' row"))
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
                fresh = [fresh_process(fresh_statistics, self.lake.uri, self.options, node.config.assets, "appends")
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

        def published() -> None:  # the same, validated, plus one row in each catalog table a new table needs
            normalize_frame(data, ())
            partitioned()
            append_catalog_records(self.lake.join("raw", "catalog"), "benchprices_0", self.options)

        repeats = max(5, s.repeats)  # a median of 3 moved the ratio by 0.3 between runs
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
        samples: dict[str, list[tuple[float, int]]] = {"ours": [], "raw": [], "published": []}
        # alternated, each into a new table; medians of time and of peak RSS (of 5: in a new process the
        # time moves 2x from run to run on a VM that backs memory on first touch, see README)
        for repeat in range(STREAM_REPEATS):
            for kind, uri in (("ours", self.lake.uri), ("raw", self.lake.join("raw", f"stream-{repeat}")),
                              ("published", self.lake.join("raw", f"stream-published-{repeat}"))):
                samples[kind].append(fresh_process(fresh_streamed_backfill, uri, self.options, s.stream_assets,
                                                   s.stream_days, f"stream-{repeat}", kind))
        (ours, ours_rss), (raw, raw_rss), (floor, _) = (
            (pystats.median(t for t, _ in samples[kind]), pystats.median(m for _, m in samples[kind]))
            for kind in ("ours", "raw", "published"))
        in_memory = price_rows(asset_ids(s.stream_assets), START, 1).nbytes * s.stream_days
        self.report.add(Row(self.section("backfill"),
                            f"{rows / 1e6:g} M rows streamed ({s.stream_assets} assets), fresh process (median of {STREAM_REPEATS})",
                            ours,
                            "write_deltalake partitioned (same stream)", raw, 1 / 0.8,
                            f"peak RSS {ours_rss / 2**20:.0f} MB (write_deltalake {raw_rss / 2**20:.0f} MB; "
                            f"the rows: {in_memory / 2**20:.0f} MB in Arrow)"))
        self.report.add(Row(self.section("backfill"), f"{rows / 1e6:g} M rows streamed: floor of a published new table",
                            floor, "write_deltalake partitioned (same stream)", raw, None,
                            "raw, fresh process: each batch through the frame rules, the stream's write, one append "
                            "to each of 3 catalog tables; bounds the row above"))

