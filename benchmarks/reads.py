"""The read-side sections: asset-scoped and cross-sectional reads against ``pl.scan_delta`` and
ArcticDB, and ``as_of`` reads of an earlier version."""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Callable

import polars as pl
import pyarrow as pa

from benchmarks.harness import Row, Sections, build_node, interleaved
from benchmarks.node import DAY, START, BenchPrices, asset_ids
from benchmarks.peers import ArcticTwin
from benchmarks.processes import fresh_latest_rows, fresh_process
from lakenodes.lake._scan import Pruning, data_file_path, snapshot_of
from lakenodes.lake.location import lake_filesystem

FRESH_READ_REPEATS = 5  # a new process's time moves 2x from run to run on this VM (see README)


class ReadSections(Sections):
    """The sections that read."""

    # reads ------------------------------------------------------------------------------------
    def reads(self) -> None:
        """Asset-scoped and cross-sectional reads at each size, on the table as run() wrote it and again
        after ``optimize_table(..., cross_section=True)`` (the time-ordered copy). Targets: asset-scoped
        reads lead every peer; 1 date x all assets within 5x of ArcticDB's multi-index symbol."""
        for assets in (self.sizes.read_assets, *self.sizes.read_assets_more):
            self._reads_at(assets)

    def _reads_at(self, assets: int) -> None:
        from lakenodes.lake.maintenance import optimize_table

        s = self.sizes
        node = build_node(self.lake, assets, f"reads-{assets}", s.read_days)
        uri = node.store.uri
        uids = asset_ids(assets)
        picked = uids[::max(1, assets // 10)][:10]
        end = START + (s.read_days - 1) * DAY
        year_start = end - 364 * DAY
        one_day = START + (s.read_days // 2) * DAY
        section = self.section("reads")
        arctic = ArcticTwin.create(self.arctic_uri, node, uids) if self.arctic_uri else None
        if self.arctic_uri and arctic is None:
            self.report.notes.append(f"{section}: ArcticDB unavailable here; its columns are skipped")
        cases = [
            (f"10 of {assets} assets x 1 year",
             lambda: node.get_df_between_dates(year_start, end, unique_identifier_list=picked),
             lambda: self._scan_filter(uri, year_start, end, picked),
             (lambda: arctic.per_asset(picked, year_start, end)) if arctic else None,
             (lambda: arctic.multi(picked, year_start, end)) if arctic else None,
             10 * 365, 1.0),
            (f"1 date x all {assets} assets",
             lambda: node.get_df_between_dates(one_day, one_day),
             lambda: self._scan_filter(uri, one_day, one_day, None),
             (lambda: arctic.per_asset(uids, one_day, one_day)) if arctic else None,
             (lambda: arctic.multi(None, one_day, one_day)) if arctic else None,
             assets, 5.0),
        ]
        self._latest_rows(node, assets, arctic, end)
        for layout in ("", ", after optimize --cross-section"):
            if layout:
                optimize_table(self.lake, node.storage_hash, cross_section=True)
            # the files chosen in this layout; after optimize the cross-sectional read is of the
            # time-ordered copy, not of data files, so only the asset-scoped read gets a floor there
            floors = {cases[0][0]: self._files_read(node, year_start, end, picked)}
            if not layout:
                floors[cases[1][0]] = self._files_read(node, one_day, one_day, None)
            for case, ours, scan, per_asset, multi, expected_rows, multi_target in cases:
                assert ours().height == expected_rows == scan().height, case
                fns = {"ours": ours, "scan": scan}
                for engine, read in floors.get(case, {}).items():
                    assert read().num_rows == expected_rows, (case, engine)
                    fns[f"floor {engine}"] = read
                if arctic:
                    assert len(per_asset()) == expected_rows == len(multi()), case
                    fns.update({"per_asset": per_asset, "multi": multi})
                times = interleaved(fns, s.repeats * 2)
                name = case + layout
                self.report.add(Row(section, name, times["ours"], "pl.scan_delta", times["scan"], 1.0))
                if arctic:
                    self.report.add(Row(section, name, times["ours"], f"ArcticDB {arctic.backend}, 1 symbol/asset",
                                        times["per_asset"], 1.0))
                    self.report.add(Row(section, name, times["ours"],
                                        f"ArcticDB {arctic.backend}, 1 multi-index symbol", times["multi"],
                                        multi_target))
                if case in floors:
                    baseline = ("ArcticDB " + arctic.backend + ", 1 multi-index symbol", times["multi"]) if arctic \
                        else ("pl.scan_delta", times["scan"])
                    self._floor_row(section, name, times, *baseline)

    def _floor_row(self, section: str, name: str, times: dict[str, float], baseline: str, baseline_time: float) -> None:
        """The row of the quickest ``floor ENGINE`` read of ``times`` (see ``_files_read``) for case ``name``."""
        engine = min((key for key in times if key.startswith("floor ")), key=lambda key: times[key])
        self.report.add(Row(section, f"{name}: floor: its files read directly (paths known, no log)", times[engine],
                            baseline, baseline_time, None,
                            f"{engine.removeprefix('floor ')} (the quickest here of polars, polars reading each file "
                            "whole, and pyarrow) reading the Parquet files that hold the rows, the partition column left out: what a reader of this "
                            "layout (one file per asset) pays for the files alone, their footers included "
                            "(lakenodes keeps those it read: on S3 one request a file less)"))

    def _latest_rows(self, node: BenchPrices, assets: int, arctic: ArcticTwin | None, last: datetime.datetime) -> None:
        """The latest row of every asset (``get_last_observation``: one range per asset) against
        ``pl.scan_delta`` keeping each asset's latest row, ArcticDB's last row of each symbol, and
        the files holding those rows read directly (every asset's latest row is at ``last``)."""
        uids = asset_ids(assets)

        def scan() -> pl.DataFrame:
            frame = pl.scan_delta(node.store.uri, storage_options=self.options or None)
            return frame.filter(pl.col("time_index") == pl.col("time_index").max().over("unique_identifier")).collect()

        fns = {"ours": node.get_last_observation, "scan": scan,
               **{f"floor {engine}": read for engine, read in self._files_read(node, last, last, None).items()}}
        if arctic:
            fns["arctic"] = lambda: arctic.latest(uids)
        assert all(len(read()) == assets for read in fns.values())
        times = interleaved(fns, self.sizes.repeats * 2)
        name, section = f"latest row of each of {assets} assets", self.section("reads")
        self.report.add(Row(section, name, times["ours"], "pl.scan_delta", times["scan"], 1.0))
        if arctic:
            self.report.add(Row(section, name, times["ours"], f"ArcticDB {arctic.backend}, 1 symbol/asset",
                                times["arctic"], None))
        self._floor_row(section, name, times, "pl.scan_delta", times["scan"])
        if assets == self.sizes.read_assets:
            self._fresh_latest_rows(node, assets, f"{name}, fresh process")

    def _fresh_latest_rows(self, node: BenchPrices, assets: int, name: str) -> None:
        """The same read in a new interpreter (a cron job reading its dependency: no footer, no log
        known), against ``pl.scan_delta`` in one; medians of alternated runs."""
        samples: dict[str, list[float]] = {"ours": [], "scan": [], "floor": []}
        for _ in range(FRESH_READ_REPEATS):
            for kind in samples:
                samples[kind].append(fresh_process(fresh_latest_rows, self.lake.uri, self.options, assets,
                                                   node.config.label, node.store.uri, kind))
        ours, scan, floor = (statistics.median(samples[kind]) for kind in ("ours", "scan", "floor"))
        self.report.add(Row(self.section("reads"), name, ours, "pl.scan_delta (fresh process)", scan, 1.0,
                            f"median of {FRESH_READ_REPEATS}, imports excluded"))
        self.report.add(Row(self.section("reads"), f"{name}: floor: the log opened, its files read directly",
                            floor, "pl.scan_delta (fresh process)", scan, None,
                            "raw, a new process: the table opened, each asset's file with the latest max statistic "
                            "read by polars, its latest row kept (what any reader of this layout pays)"))

    def _files_read(self, node: BenchPrices, start: datetime.datetime, end: datetime.datetime,
                    uids: list[str] | None) -> dict[str, Callable[[], pa.Table]]:
        """Reads of the rows between ``start`` and ``end`` (of ``uids``) from the files holding them,
        by polars (the window pushed down, or each file read whole, then filtered) and by pyarrow, the files chosen now as lakenodes chooses them (partition value and
        time statistics), so the timed read is the files' own: no log, no choice."""
        table = node.store.table()
        snapshot = snapshot_of(table, ("time_index", "unique_identifier"))
        chosen = snapshot.candidates(Pruning.of(start, end, None if uids is None else {"unique_identifier": uids}, None))
        filesystem, root = lake_filesystem(self.lake, table.table_uri)
        paths = [f"{root}/{data_file_path(path)}" for path in chosen["path"].to_list()]
        prefix = "" if self.lake.is_local else "s3://"

        def scanned() -> pl.LazyFrame:
            return pl.scan_parquet([prefix + path for path in paths], storage_options=self.options or None,
                                   hive_partitioning=False, glob=False)

        def with_polars() -> pa.Table:
            return scanned().filter(pl.col("time_index").is_between(start, end)).collect().to_arrow()

        def with_polars_whole() -> pa.Table:  # small files: read whole, then filtered (as lakenodes reads them)
            return scanned().collect().filter(pl.col("time_index").is_between(start, end)).to_arrow()

        def with_pyarrow() -> pa.Table:
            import pyarrow.dataset as pds

            return pds.dataset(paths, format="parquet", filesystem=filesystem).to_table(
                filter=(pds.field("time_index") >= pa.scalar(start, pa.timestamp("us", "UTC")))
                & (pds.field("time_index") <= pa.scalar(end, pa.timestamp("us", "UTC"))))

        return {"polars": with_polars, "polars, files read whole": with_polars_whole, "pyarrow": with_pyarrow}

    def _scan_filter(self, uri: str, start: datetime.datetime, end: datetime.datetime,
                     uids: list[str] | None) -> pl.DataFrame:
        frame = pl.scan_delta(uri, storage_options=self.options or None)
        predicate = pl.col("time_index").is_between(start, end)
        if uids is not None:
            predicate = predicate & pl.col("unique_identifier").is_in(uids)
        return frame.filter(predicate).sort("time_index", "unique_identifier").collect()

    # time travel -----------------------------------------------------------------------------
    def time_travel(self) -> None:
        """The reads section's cases as of the version before one more daily run (the same rows:
        the new day is outside the window) vs the latest read and ``pl.scan_delta(version=)``."""
        s = self.sizes
        node = build_node(self.lake, s.read_assets, "travel", s.read_days)
        previous = node.store.table().version()
        node.run()  # one more day: as_of reads the version before it
        uids = asset_ids(s.read_assets)
        picked = uids[::max(1, s.read_assets // 10)][:10]
        end = START + (s.read_days - 1) * DAY
        one_day = START + (s.read_days // 2) * DAY
        cases = [(f"10 of {s.read_assets} assets x 1 year", end - 364 * DAY, end, picked),
                 (f"1 date x all {s.read_assets} assets", one_day, one_day, None)]
        for case, start, stop, chosen in cases:
            def as_of(start=start, stop=stop, chosen=chosen) -> pl.DataFrame:
                return node.get_df_between_dates(start, stop, unique_identifier_list=chosen, as_of=previous)

            def latest(start=start, stop=stop, chosen=chosen) -> pl.DataFrame:
                return node.get_df_between_dates(start, stop, unique_identifier_list=chosen)

            def scan(start=start, stop=stop, chosen=chosen) -> pl.DataFrame:
                frame = pl.scan_delta(node.store.uri, version=previous, storage_options=self.options or None)
                predicate = pl.col("time_index").is_between(start, stop)
                if chosen is not None:
                    predicate = predicate & pl.col("unique_identifier").is_in(chosen)
                return frame.filter(predicate).sort("time_index", "unique_identifier").collect()

            assert as_of().equals(latest()) and as_of().height == scan().height, case
            times = interleaved({"as_of": as_of, "latest": latest, "scan": scan}, s.repeats * 2)
            section = self.section("time_travel")
            self.report.add(Row(section, f"as_of previous version: {case}", times["as_of"],
                                "latest read, same rows", times["latest"]))
            self.report.add(Row(section, f"as_of previous version: {case}", times["as_of"],
                                "pl.scan_delta(version=)", times["scan"]))
