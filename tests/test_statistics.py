"""UpdateStatistics from Delta metadata: exact to the microsecond, scoped, and in the seeds' shapes."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pydantic import Field

from lakenodes import Asset, DataNode, DataNodeConfiguration, Lake, LakenodesUserError, clear_caches

UTC = dt.UTC
DAY = dt.timedelta(days=1)
DEFAULT_OFFSET = dt.datetime(2018, 1, 1, tzinfo=UTC)


class StatsConfig(DataNodeConfiguration):
    name: str = "stats"
    assets: list[str] | None = Field(None, json_schema_extra={"update_only": True})


class QueueNode(DataNode):
    """Returns one queued frame per run; ``config.assets`` (update_only) scopes its statistics."""

    def __init__(self, config: StatsConfig, frames=(), **kwargs):
        super().__init__(config, **kwargs)
        self.frames = list(frames)
        self.seen: list = []

    def dependencies(self):
        return {}

    def get_asset_list(self):
        if self.config.assets is None:
            return None
        return [Asset(unique_identifier=uid) for uid in self.config.assets]

    def update(self):
        self.seen.append(self.update_statistics)
        return self.frames.pop(0) if self.frames else pl.DataFrame()


class AccountNode(QueueNode):
    """The seeds' 3-level table: (time_index, account_uid, unique_identifier)."""

    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ("account_uid", "unique_identifier")


class PortfolioNode(QueueNode):
    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ("portfolio_uid", "entity_uid")


class LateStartNode(QueueNode):
    OFFSET_START: ClassVar[dt.datetime] = dt.datetime(2023, 6, 1, tzinfo=UTC)


def at(day: int, second: int = 0, us: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, 12, 0, second, us, tzinfo=UTC)


def frame(rows, dims=("unique_identifier",)) -> pl.DataFrame:
    """rows: (time, identity tuple, value)."""
    data = {"time_index": pl.Series([r[0] for r in rows], dtype=pl.Datetime("us", "UTC"))}
    for i, dim in enumerate(dims):
        data[dim] = [r[1][i] for r in rows]
    data["value"] = [float(r[2]) for r in rows]
    return pl.DataFrame(data)


@pytest.fixture
def cold(monkeypatch):
    """Compute a node's statistics from the Delta metadata alone, bypassing the process caches
    (which also remember this process's own appends)."""

    def compute(node: DataNode):
        clear_caches()
        return node.compute_update_statistics()

    return compute


def add_actions(lake: Lake, node: DataNode) -> pa.Table:
    return pa.table(DeltaTable(node.table_uri, storage_options=lake.storage_options or None).get_add_actions(flatten=True))


# -- exactness ------------------------------------------------------------------------------------
def test_max_is_exact_although_file_stats_are_millisecond_truncated(any_lake: Lake, cold) -> None:
    times = [at(1, us=999), at(1, us=999_999), at(1, second=1)]
    node = QueueNode(StatsConfig(name="single"), [frame([(t, (), i)], dims=()) for i, t in enumerate(times)])
    for written in times:
        node.run()
        assert node.update_statistics.max_time_index_value == written
        assert node.update_statistics.index_progress == written
        assert cold(QueueNode(StatsConfig(name="single"))).max_time_index_value == written
    stats_max = add_actions(any_lake, node).column("max.time_index").to_pylist()
    assert at(1, us=999_999) not in stats_max  # the trap: Delta keeps milliseconds only


def test_max_is_exact_when_many_files_tie_at_the_millisecond(any_lake: Lake, cold) -> None:
    micros = [5_100, 5_300, 5_700, 5_999]  # all inside the same millisecond
    frames = [frame([(at(1, us=us), ("A",), us)] + ([(at(1, us=us - 50), ("B",), us)] if us != 5_300 else []))
              for us in micros]
    frames.append(frame([(at(1, us=5_300), ("A",), -1)]))  # restatement below the watermark
    node = QueueNode(StatsConfig(name="ties"), frames)
    for us in micros:
        node.run()
        assert node.update_statistics.index_progress["A"] == at(1, us=us)
        assert cold(node).index_progress["A"] == at(1, us=us)
    node.run()
    progress = node.update_statistics.index_progress
    assert progress == {"A": at(1, us=5_999), "B": at(1, us=5_949)}
    assert cold(node).index_progress == progress
    assert node.update_statistics.max_time_index_value == at(1, us=5_999)
    millis = {t.replace(microsecond=t.microsecond // 1000 * 1000) for t in add_actions(any_lake, node)
              .column("max.time_index").to_pylist()}
    assert millis == {at(1, us=5_000)}  # every file looks alike in the Delta statistics
    assert node.get_df_between_dates().height == 7


def test_statistics_come_from_metadata_not_from_scanning_rows(any_lake: Lake, monkeypatch, cold) -> None:
    rows = [(at(d, us=d * 111), (uid,), d) for d in (1, 2, 3) for uid in ("A", "BRK/B", "é=1%")]
    node = QueueNode(StatsConfig(name="noscan"), [frame(rows[:6]), frame(rows[6:])])
    node.run()
    node.run()
    single = QueueNode(StatsConfig(name="noscan_single"), [frame([(at(1, us=999_999), (), 1)], dims=())])
    single.run()

    calls: list[str] = []

    def counting(owner, name):
        """Count reads of table rows; lakenodes' own small metadata files (``_lakenodes/``) are fine."""
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            source = args[0] if args else kwargs.get("source")
            if not (isinstance(source, str) and "/_lakenodes/" in source):
                calls.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for name in ("read_table",):
        counting(pq, name)
    for name in ("read", "read_row_group", "read_row_groups", "iter_batches"):
        counting(pq.ParquetFile, name)
    for name in ("to_pyarrow_dataset", "to_pyarrow_table"):
        counting(DeltaTable, name)
    for name in ("read_parquet", "scan_parquet", "read_delta", "scan_delta"):
        counting(pl, name)
    stats = cold(node)  # from cold caches, so the statistics are really computed here
    assert stats.index_progress == {uid: at(3, us=333) for uid in ("A", "BRK/B", "é=1%")}
    assert cold(single).max_time_index_value == at(1, us=999_999)
    assert calls == []


# -- scope and fallbacks ----------------------------------------------------------------------------
def test_statistics_are_scoped_to_the_asset_list(any_lake: Lake) -> None:
    writer = QueueNode(StatsConfig(name="px"), [frame([(at(3), ("A",), 1), (at(9), ("B",), 2), (at(5), ("C",), 3)])])
    writer.run()
    scoped = QueueNode(StatsConfig(name="px", assets=["A", "NEW"], offset_start=at(1)))
    assert scoped.storage_hash == writer.storage_hash

    stats = scoped.update_statistics
    assert [a.unique_identifier for a in stats.asset_list] == ["A", "NEW"]
    assert stats.index_progress == {"A": at(3)}
    assert stats.max_time_index_value == at(3)  # B is later, but out of scope
    assert stats.get_last_update_index_2d("A") == at(3)
    assert stats.get_last_update_index_2d("NEW") == at(1)
    assert stats.get_asset_earliest_multiindex_update(Asset(unique_identifier="NEW")) == at(1)
    assert stats.get_update_range_map_great_or_equal() == {
        "A": {"start_date": at(3), "start_date_operand": ">="},
        "NEW": {"start_date": at(1), "start_date_operand": ">="},
    }
    assert stats.get_dimension_range_map_great_or_equal(extra_time_delta=DAY) == [
        {"coordinate": {"unique_identifier": "A"}, "start_date": at(2), "start_date_operand": ">="},
        {"coordinate": {"unique_identifier": "NEW"}, "start_date": at(1) - DAY, "start_date_operand": ">="},
    ]
    unscoped = writer.update_statistics
    assert unscoped.asset_list is None
    assert unscoped.max_time_index_value == at(9)
    assert set(unscoped.get_update_range_map_great_or_equal()) == {"A", "B", "C"}


@pytest.mark.parametrize(
    ("node_class", "offset_start", "expected"),
    [
        (QueueNode, dt.datetime(2024, 3, 1, 9, tzinfo=UTC), dt.datetime(2024, 3, 1, 9, tzinfo=UTC)),
        (LateStartNode, dt.datetime(2024, 3, 1, tzinfo=UTC), dt.datetime(2024, 3, 1, tzinfo=UTC)),
        (LateStartNode, None, dt.datetime(2023, 6, 1, tzinfo=UTC)),
        (QueueNode, None, DEFAULT_OFFSET),
    ],
    ids=["config", "config-over-class", "class", "default"],
)
def test_offset_start_fallback_for_assets_never_written(local_lake, node_class, offset_start, expected) -> None:
    writer = node_class(StatsConfig(name="offsets"), [frame([(at(2), ("OLD",), 1)])])
    writer.run()
    node = node_class(StatsConfig(name="offsets", assets=["OLD", "NEVER"], offset_start=offset_start))
    stats = node.update_statistics
    assert stats.get_last_update_index_2d("NEVER") == expected
    assert stats.get_asset_earliest_multiindex_update(Asset(unique_identifier="NEVER")) == expected
    assert stats.get_update_range_map_great_or_equal()["NEVER"]["start_date"] == expected
    assert stats.get_last_update_index_2d("OLD") == at(2)


def test_statistics_before_the_first_write(local_lake) -> None:
    scoped = QueueNode(StatsConfig(name="empty", assets=["A"], offset_start=at(1)))
    stats = scoped.update_statistics
    assert stats.max_time_index_value is None
    assert stats.index_progress == {}
    assert stats.get_update_range_map_great_or_equal() == {"A": {"start_date": at(1), "start_date_operand": ">="}}
    single = QueueNode(StatsConfig(name="empty_single"))
    assert single.update_statistics.max_time_index_value is None
    assert single.update_statistics.index_progress is None


class IncrementalWindowNode(QueueNode):
    """The seeds' incremental read (DataNode guide §6.2): the stored window of each identity, read back
    through a dimension range map, on a node that declares no identity dimensions (its first frame does)."""

    def update(self):
        stats = self.update_statistics
        window = stats.get_dimension_range_map_great_or_equal(identity_dimensions=["unique_identifier"])
        self.seen.append((window, self.get_df_between_dates(dimension_range_map=window).height))
        return self.frames.pop(0) if self.frames else pl.DataFrame()


def test_the_seeds_range_map_read_works_before_a_table_without_declared_dimensions_exists(any_lake: Lake) -> None:
    first, second = [(at(d), ("A",), d) for d in (1, 2)], [(at(3), ("A",), 3)]
    node = IncrementalWindowNode(StatsConfig(name="window"), [frame(first), frame(second)])
    node.run()  # nothing stored yet and no dimension declared: an empty window, not "unknown dimension"
    node.run()
    assert node.seen == [([], 0), ([{"coordinate": {"unique_identifier": "A"}, "start_date": at(2),
                                     "start_date_operand": ">="}], 1)]
    assert node.get_df_between_dates()["value"].to_list() == [1.0, 2.0, 3.0]
    with pytest.raises(LakenodesUserError, match=r"unknown identity dimension\(s\) \['sector'\]"):
        node.update_statistics.get_dimension_range_map_great_or_equal(identity_dimensions=["sector"])


# -- multi-dimensional shapes -----------------------------------------------------------------------
ACCOUNT_ROWS = (
    [(at(d), ("acc1", "A"), d) for d in (1, 2, 3)]
    + [(at(d), ("acc1", "B"), d) for d in (1, 2)]
    + [(at(1), ("acc2", "A"), 1)]
)


def test_three_level_progress_and_range_maps(any_lake: Lake) -> None:
    dims = AccountNode.IDENTITY_DIMENSIONS
    node = AccountNode(StatsConfig(name="acct"), [frame(ACCOUNT_ROWS[:3], dims), frame(ACCOUNT_ROWS[3:], dims)])
    node.run()
    node.run()
    stats = node.update_statistics
    assert stats.index_progress == {"acc1": {"A": at(3), "B": at(2)}, "acc2": {"A": at(1)}}
    assert stats.max_time_index_value == at(3)
    assert stats.get_asset_earliest_multiindex_update(Asset(unique_identifier="A")) == at(1)  # the laggard
    assert stats.get_last_update_index_2d("A") == at(3)
    assert stats.get_update_range_map_great_or_equal() == {
        "A": {"start_date": at(1), "start_date_operand": ">="},
        "B": {"start_date": at(2), "start_date_operand": ">="},
    }
    full = stats.get_dimension_range_map_great_or_equal(extra_time_delta=DAY)
    assert full == [
        {"coordinate": {"account_uid": "acc1", "unique_identifier": "A"}, "start_date": at(2), "start_date_operand": ">="},
        {"coordinate": {"account_uid": "acc1", "unique_identifier": "B"}, "start_date": at(1), "start_date_operand": ">="},
        {"coordinate": {"account_uid": "acc2", "unique_identifier": "A"}, "start_date": at(1) - DAY,
         "start_date_operand": ">="},
    ]
    by_account = stats.get_dimension_range_map_great_or_equal(identity_dimensions=["account_uid"])
    assert by_account == [
        {"coordinate": {"account_uid": "acc1"}, "start_date": at(2), "start_date_operand": ">="},
        {"coordinate": {"account_uid": "acc2"}, "start_date": at(1), "start_date_operand": ">="},
    ]
    with pytest.raises(LakenodesUserError, match="unknown identity dimension.*'portfolio_uid'"):
        stats.get_dimension_range_map_great_or_equal(identity_dimensions=["portfolio_uid"])

    # both range-map shapes are accepted back by the reads
    window = node.get_df_between_dates(dimension_range_map=full)
    assert sorted(window.select("account_uid", "unique_identifier", "value").rows()) == [
        ("acc1", "A", 2.0), ("acc1", "A", 3.0), ("acc1", "B", 1.0), ("acc1", "B", 2.0), ("acc2", "A", 1.0),
    ]
    accounts = node.get_df_between_dates(dimension_range_map=by_account)
    assert sorted(accounts.select("account_uid", "unique_identifier", "value").rows()) == [
        ("acc1", "A", 2.0), ("acc1", "A", 3.0), ("acc1", "B", 2.0), ("acc2", "A", 1.0),
    ]
    last = node.get_last_observation(frame="pandas")
    assert list(last.index.names) == ["time_index", "account_uid", "unique_identifier"]
    assert sorted((i[0].day, i[1], i[2]) for i in last.index) == [(1, "acc2", "A"), (2, "acc1", "B"), (3, "acc1", "A")]
    per_asset = node.get_ranged_data_per_asset(stats.get_update_range_map_great_or_equal())
    assert sorted(per_asset.select("account_uid", "unique_identifier", "value").rows()) == [
        ("acc1", "A", 1.0), ("acc1", "A", 2.0), ("acc1", "A", 3.0), ("acc1", "B", 2.0), ("acc2", "A", 1.0),
    ]


def test_three_level_scope_uses_the_unique_identifier_level(local_lake) -> None:
    dims = AccountNode.IDENTITY_DIMENSIONS
    AccountNode(StatsConfig(name="acct_scope"), [frame(ACCOUNT_ROWS, dims)]).run()
    stats = AccountNode(StatsConfig(name="acct_scope", assets=["B", "Z"], offset_start=at(1))).update_statistics
    assert stats.index_progress == {"acc1": {"B": at(2)}}
    assert stats.get_update_range_map_great_or_equal() == {
        "B": {"start_date": at(2), "start_date_operand": ">="},
        "Z": {"start_date": at(1), "start_date_operand": ">="},
    }
    assert stats.get_dimension_range_map_great_or_equal(identity_dimensions=["unique_identifier"]) == [
        {"coordinate": {"unique_identifier": "B"}, "start_date": at(2), "start_date_operand": ">="},
        {"coordinate": {"unique_identifier": "Z"}, "start_date": at(1), "start_date_operand": ">="},
    ]


def test_three_level_without_unique_identifier_nests_in_declared_order(any_lake: Lake) -> None:
    dims = PortfolioNode.IDENTITY_DIMENSIONS
    rows = [(at(2), ("p1", "e1"), 1), (at(3, us=999_999), ("p1", "e2"), 2), (at(1), ("p2", "e1"), 3)]
    node = PortfolioNode(StatsConfig(name="pf"), [frame(rows, dims)])
    node.run()
    stats = node.update_statistics
    assert stats.index_progress == {"p1": {"e1": at(2), "e2": at(3, us=999_999)}, "p2": {"e1": at(1)}}
    by_entity = stats.get_dimension_range_map_great_or_equal(identity_dimensions=["entity_uid"])
    assert by_entity == [
        {"coordinate": {"entity_uid": "e1"}, "start_date": at(1), "start_date_operand": ">="},
        {"coordinate": {"entity_uid": "e2"}, "start_date": at(3, us=999_999), "start_date_operand": ">="},
    ]
    assert node.get_df_between_dates(dimension_range_map=by_entity).height == 3


# -- range maps fed back into reads, and refresh after run ------------------------------------------
def test_two_level_range_maps_are_accepted_back_by_reads(any_lake: Lake) -> None:
    rows = [(at(d), ("A",), d) for d in (1, 2, 3, 4)] + [(at(d), ("B",), 10 + d) for d in (1, 2)]
    node = QueueNode(StatsConfig(name="maps"), [frame(rows)])
    node.run()
    stats = node.update_statistics
    uid_map = stats.get_update_range_map_great_or_equal(extra_time_delta=DAY)
    assert uid_map == {
        "A": {"start_date": at(3), "start_date_operand": ">="},
        "B": {"start_date": at(1), "start_date_operand": ">="},
    }
    expected = [("A", 3.0), ("A", 4.0), ("B", 11.0), ("B", 12.0)]
    by_uid = node.get_df_between_dates(unique_identifier_range_map=uid_map)
    assert sorted(by_uid.select("unique_identifier", "value").rows()) == expected
    ranged = node.get_ranged_data_per_asset(range_descriptor=uid_map)
    assert sorted(ranged.select("unique_identifier", "value").rows()) == expected
    dim_map = stats.get_dimension_range_map_great_or_equal(identity_dimensions=["unique_identifier"],
                                                           extra_time_delta=DAY)
    by_dimension = node.get_df_between_dates(dimension_range_map=dim_map)
    assert by_dimension.equals(by_uid)
    last_only = node.get_ranged_data_per_asset(stats.get_update_range_map_great_or_equal())
    assert sorted(last_only.select("unique_identifier", "value").rows()) == [("A", 4.0), ("B", 12.0)]


class EntityNode(QueueNode):
    """The guide's two-dimensional table: (time_index, entity_uid), no unique_identifier."""

    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ("entity_uid",)


@pytest.mark.parametrize("node_class", [EntityNode, PortfolioNode], ids=["entity_uid", "portfolio_uid-entity_uid"])
def test_the_per_asset_range_map_of_a_table_without_unique_identifier_is_accepted_back(local_lake, node_class) -> None:
    """The seeds' incremental read (``get_ranged_data_per_asset(update_statistics.get_update_range_map_great_or_equal())``)
    on a table identified by other dimensions: the statistics key the map by the first identity
    dimension (as ``get_last_update_index_2d`` and ``get_last_observation`` do), and the read refused
    it with "unknown identity dimension(s) ['unique_identifier']" on every run after the first."""
    dims = node_class.IDENTITY_DIMENSIONS
    keys = [(key,) if len(dims) == 1 else (key, "e1") for key in ("k1", "k2")]
    rows = [(at(d), keys[0], d) for d in (1, 2, 3)] + [(at(d), keys[1], 10 + d) for d in (1, 2)]
    node = node_class(StatsConfig(name="entities"), [frame(rows, dims)])
    node.run()
    stats = node.update_statistics
    uid_map = stats.get_update_range_map_great_or_equal()
    assert uid_map == {"k1": {"start_date": at(3), "start_date_operand": ">="},
                       "k2": {"start_date": at(2), "start_date_operand": ">="}}
    last = node.get_ranged_data_per_asset(range_descriptor=uid_map)
    assert sorted(last.select(dims[0], "value").rows()) == [("k1", 3.0), ("k2", 12.0)]
    assert last.equals(node.get_last_observation())
    window = node.get_ranged_data_per_asset(stats.get_update_range_map_great_or_equal(extra_time_delta=DAY),
                                            columns=["value"], frame="pandas")
    assert list(window.index.names) == ["time_index", *dims]
    assert sorted(window["value"]) == [2.0, 3.0, 11.0, 12.0]


def test_update_statistics_before_update_and_after_run(any_lake: Lake) -> None:
    node = QueueNode(StatsConfig(name="refresh"), [frame([(at(1), ("A",), 1)]), frame([(at(2, us=1), ("A",), 2)])])
    assert node.update_statistics.max_time_index_value is None
    node.run()
    assert node.seen[0].max_time_index_value is None  # what update() saw
    assert node.update_statistics.max_time_index_value == at(1)  # refreshed after the write
    node.run()
    assert node.seen[1].max_time_index_value == at(1)
    assert node.update_statistics.index_progress == {"A": at(2, us=1)}
    node.run()  # nothing new
    assert node.seen[2].index_progress == {"A": at(2, us=1)}
    assert node.update_statistics.max_time_index_value == at(2, us=1)


# -- the persisted progress snapshot (lakenodes/lake/_progress_snapshot.py) -----------------------------
def test_cold_statistics_come_from_the_persisted_snapshot_without_opening_the_table(any_lake: Lake, cold) -> None:
    rows = [(at(d, us=d * 7), (uid,), d) for d in (1, 2, 3) for uid in ("A", "B/é")]
    node = QueueNode(StatsConfig(name="snapshot"), [frame(rows)])
    node.run()
    stats = cold(QueueNode(StatsConfig(name="snapshot")))
    assert stats.index_progress == {"A": at(3, us=21), "B/é": at(3, us=21)}
    assert not node.store.is_open()  # no log replay: one listing and one footer read
    assert stats.min_time_index_value == at(1, us=7)  # ``first`` is resolved from the log on demand


def test_a_snapshot_of_an_older_version_is_not_trusted(any_lake: Lake, cold) -> None:
    node = QueueNode(StatsConfig(name="stale"), [frame([(at(1), ("A",), 1)])])
    node.run()
    cold(node)  # the snapshot of version 1 is on storage
    foreign = pa.table({"time_index": pa.array([at(2, us=3)], pa.timestamp("us", "UTC")),
                        "unique_identifier": ["A"], "value": [2.0]})
    from deltalake import write_deltalake

    write_deltalake(node.table_uri, foreign, mode="append", storage_options=any_lake.storage_options or None)
    assert cold(node).index_progress == {"A": at(2, us=3)}
    assert cold(node).index_progress == {"A": at(2, us=3)}  # and from the snapshot of the new version


def test_a_snapshot_of_a_table_rebuilt_at_the_same_uri_is_not_trusted(local_lake: Lake, cold) -> None:
    import shutil

    node = QueueNode(StatsConfig(name="rebuilt"), [frame([(at(1), ("A",), 1)])])
    node.run()
    cold(node)
    facts = f"{node.table_uri}/_lakenodes/file_facts.parquet"
    kept = pq.read_table(facts)  # a snapshot of version 1 left behind by the old table
    shutil.rmtree(f"{node.table_uri}/_delta_log")
    clear_caches()
    QueueNode(StatsConfig(name="rebuilt"), [frame([(at(5), ("B",), 1)])]).run()
    pq.write_table(kept, facts)
    assert cold(node).index_progress == {"B": at(5)}


class UndeclaredAccounts(QueueNode):
    """The guide's 3-level node: its pandas frames' index names the dimensions (no IDENTITY_DIMENSIONS)."""

    def update(self):
        self.seen.append(self.update_statistics.get_dimension_range_map_great_or_equal(
            identity_dimensions=["account_uid", "unique_identifier"]))
        return self.frames.pop(0) if self.frames else pl.DataFrame()


def test_the_guides_range_map_on_a_first_run_of_undeclared_dimensions(local_lake):
    """Regression: before the first write an asset list made the table look (time_index,
    unique_identifier), and the guide's call failed the run ("unknown identity dimension(s)
    ['account_uid']")."""
    rows = [(at(1), ("ACC1", "AAPL"), 1), (at(1), ("ACC2", "AAPL"), 2)]
    seeds_shape = frame(rows, dims=("account_uid", "unique_identifier")).to_pandas().set_index(
        ["time_index", "account_uid", "unique_identifier"])
    node = UndeclaredAccounts(StatsConfig(assets=["AAPL"]), frames=[seeds_shape, seeds_shape])
    assert node.run()[0] is False and node.seen == [[]]
    node.run()
    assert [entry["coordinate"] for entry in node.seen[1]] == [
        {"account_uid": "ACC1", "unique_identifier": "AAPL"}, {"account_uid": "ACC2", "unique_identifier": "AAPL"}]
    with pytest.raises(LakenodesUserError, match=r"unknown identity dimension\(s\) \['portfolio'\]"):
        node.compute_update_statistics().get_dimension_range_map_great_or_equal(["portfolio"])  # now they are known
    with pytest.raises(LakenodesUserError, match=r"identity_dimensions must be a list, got 'unique_identifier'; wrap a single value as \['unique_identifier'\]"):
        node.compute_update_statistics().get_dimension_range_map_great_or_equal("unique_identifier")


def test_declared_dimensions_are_checked_before_the_first_write(local_lake):
    with pytest.raises(LakenodesUserError, match=r"unknown identity dimension\(s\) \['portfolio'\]"):
        AccountNode(StatsConfig(assets=["AAPL"])).compute_update_statistics().get_dimension_range_map_great_or_equal(
            ["portfolio"])


def test_a_naive_class_offset_start_is_refused_naming_it(local_lake):
    class NaiveStart(QueueNode):
        OFFSET_START: ClassVar[dt.datetime] = dt.datetime(2020, 1, 1)

    with pytest.raises(LakenodesUserError, match=r"NaiveStart.OFFSET_START .* has no time zone"):
        NaiveStart(StatsConfig()).compute_update_statistics()


@pytest.mark.parametrize("start", ["2024-01-01T00:00:00+00:00", dt.date(2024, 1, 1)], ids=["iso text", "date"])
def test_a_class_offset_start_that_is_no_datetime_is_refused_naming_it(local_lake, start):
    """It failed in the statistics phase with "AttributeError: 'str' object has no attribute 'tzinfo'"."""
    class OtherStart(QueueNode):
        OFFSET_START = start

    with pytest.raises(LakenodesUserError, match=rf"OtherStart.OFFSET_START must be a timezone-aware datetime, "
                                                 rf"got {type(start).__name__} "):
        OtherStart(StatsConfig()).compute_update_statistics()


class TypoAssetsNode(QueueNode):
    def get_asset_list(self):
        return [Asset(unique_identifier=uid) for uid in self.config.asset_names]  # the field is ``assets``


def test_an_attribute_error_inside_update_statistics_is_reported_as_itself(local_lake) -> None:
    """A typo in ``get_asset_list`` raised inside the ``update_statistics`` property: the node's
    ``__getattr__`` turned it into "'TypoAssetsNode' object has no attribute 'update_statistics'",
    hiding the cause in a notebook. Now the typo's own error comes out."""
    node = TypoAssetsNode(StatsConfig(name="typo", assets=["A"]))
    with pytest.raises(AttributeError, match="'StatsConfig' object has no attribute 'asset_names'"):
        node.update_statistics  # noqa: B018


# -- a dependency's statistics as a dependent's update() reads them -------------------------------------
class FeedConfig(DataNodeConfiguration):
    name: str = "feed"


class Feed(DataNode):
    """One row a day up to ``days`` (a class-level clock the test advances)."""

    days: ClassVar[int] = 1

    def dependencies(self):
        return {}

    def update(self) -> pl.DataFrame:
        last = self.update_statistics.max_time_index_value
        start = DEFAULT_OFFSET if last is None else last + DAY
        days = pl.datetime_range(start, DEFAULT_OFFSET + (self.days - 1) * DAY, "1d", time_zone="UTC", eager=True)
        return pl.DataFrame({"time_index": days, "value": [float(day.day) for day in days]})


class Passthrough(DataNode):
    def __init__(self, config: FeedConfig, **kwargs):
        self.feed = Feed(FeedConfig())
        super().__init__(config, **kwargs)

    def dependencies(self):
        return {"feed": self.feed}

    def update(self) -> pl.DataFrame:
        return pl.DataFrame()


class CopyUpToFeed(DataNode):
    """Copies the feed up to the feed's watermark, read from the feed's statistics. The feed is
    built twice (here and inside ``Passthrough``): the run writes through one of the two."""

    def __init__(self, config: FeedConfig, **kwargs):
        self.passthrough = Passthrough(FeedConfig(name="passthrough"))
        self.feed = Feed(FeedConfig())
        super().__init__(config, **kwargs)

    def dependencies(self):
        return {"passthrough": self.passthrough, "feed": self.feed}

    def update(self) -> pl.DataFrame:
        end = self.feed.update_statistics.max_time_index_value
        last = self.update_statistics.max_time_index_value
        return self.feed.get_df_between_dates(start_date=last, great_or_equal=False, end_date=end)


def test_a_dependencys_statistics_follow_its_writes_in_a_long_lived_process(local_lake, monkeypatch):
    """A driver running the tree every day in one process: the dependent read the feed's watermark
    from its own instance of the feed, whose statistics were cached on the first day while the run
    wrote through the other instance, so it copied day 1 and then nothing, silently, every day."""
    node = CopyUpToFeed(FeedConfig(name="copy"))
    for day in (1, 2, 3):
        monkeypatch.setattr(Feed, "days", day)
        node.run()
    assert node.get_df_between_dates()["value"].to_list() == [1.0, 2.0, 3.0]
    assert node.feed.update_statistics.max_time_index_value == DEFAULT_OFFSET + 2 * DAY


class FeedReadingItself(Feed):
    """Reads its own table before its statistics, as an update() comparing with its last rows does."""

    def update(self) -> pl.DataFrame:
        self.get_df_between_dates(start_date=DEFAULT_OFFSET)
        return super().update()


def test_a_run_in_a_new_process_computes_its_statistics_once(local_lake, monkeypatch):
    """The run's statistics come from the table's persisted snapshot before the table is opened;
    update() then opens it (a read of its own rows). Reading the statistics after that must not take
    the opening for the table having moved on (nothing was written since): one computation a run."""
    monkeypatch.setattr(Feed, "days", 2)
    FeedReadingItself(FeedConfig(name="once")).run()
    clear_caches()  # a new process: nothing open, the persisted snapshot on disk
    computed = []
    original = Feed.compute_update_statistics

    def counted(self, **kwargs):
        computed.append(self.update_hash)
        return original(self, **kwargs)

    monkeypatch.setattr(Feed, "compute_update_statistics", counted)
    monkeypatch.setattr(Feed, "days", 3)
    node = FeedReadingItself(FeedConfig(name="once"))
    node.run()
    assert len(computed) == 1, computed
    assert node.get_df_between_dates()["value"].to_list() == [1.0, 2.0, 3.0]



FRESH_STATISTICS = """
import json, sys
import lakenodes.lake._exact_bounds as exact_bounds
from lakenodes import Lake
sys.path.insert(0, sys.argv[3])
from test_statistics import QueueNode, StatsConfig

exact_bounds.FOOTERS_REPAYING_AN_IMPORT = 2  # as a table of many assets has: pyarrow.dataset's import repaid
node = QueueNode(StatsConfig(name="footers"), lake=Lake(sys.argv[1], storage_options=json.loads(sys.argv[2])))
print(json.dumps({uid: str(time) for uid, time in node.compute_update_statistics().index_progress.items()}))
"""


@pytest.mark.s3
def test_many_footers_on_s3_are_read_in_one_request_each(s3_server) -> None:
    """Without the facts file, a new process finds the exact bounds in the boundary files' footers.
    Opening a file on S3 asked for its length (HEAD) before reading its footer (GET); the Delta log
    holds every file's size, so each footer is one request now, once they are many enough to repay
    the import that reading them so takes (see test_import_time for a few). Counted through the
    recording proxy."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from faultproxy import FaultProxy

    from lakenodes._internal.afterwards import settle
    from lakenodes.lake._facts_file import FACTS_PATH
    from lakenodes.lake.location import lake_filesystem

    lake = s3_server.new_lake()
    uids = [f"A{i}" for i in range(4)]
    days = [frame([(at(day, us=7), (uid,), day) for uid in uids]) for day in (1, 2, 3)]
    node = QueueNode(StatsConfig(name="footers"), days, lake=lake)
    for _ in days:
        node.run()
    expected = {uid: str(time) for uid, time in node.update_statistics.index_progress.items()}
    assert set(expected.values()) == {str(at(3, us=7))}  # microseconds: beyond the log's millisecond statistics
    settle()  # the facts file saved after the last run
    filesystem, root = lake_filesystem(lake, node.table_uri)
    filesystem.delete_file(f"{root}/{FACTS_PATH}")
    with FaultProxy(s3_server.endpoint_url) as proxy:
        options = {**lake.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url}
        done = subprocess.run([sys.executable, "-c", FRESH_STATISTICS, lake.uri, json.dumps(options), str(Path(__file__).parent)],
                              capture_output=True, text=True, timeout=120, check=True)
        data_files = [(method, path) for method, path in proxy.requests
                      if path.split("?")[0].endswith(".parquet") and "/_lakenodes/" not in path and "/_catalog/" not in path]
    assert json.loads(done.stdout.splitlines()[-1]) == expected
    assert [method for method, _ in data_files] == ["GET"] * len(uids), data_files  # each asset's last file, once


@pytest.mark.parametrize("statistics", [True, False], ids=["with statistics", "without statistics"])
@pytest.mark.parametrize("size_known", [True, False], ids=["size known", "size unknown"])
def test_a_files_exact_time_bounds_come_from_its_footer_or_its_column(tmp_path, statistics, size_known) -> None:
    """footer_time_bounds reads the footer (in one request on an object store when the log gave the
    file's size), and the time column itself where another engine wrote no statistics."""
    import os

    import pyarrow.fs as pafs

    from lakenodes.lake._file_facts import footer_time_bounds

    path = str(tmp_path / "part.parquet")
    times = [at(1, us=7), at(3, us=999_999), at(2)]
    pq.write_table(pa.table({"time_index": pa.array(times, pa.timestamp("us", "UTC")), "value": [1.0, 2.0, 3.0]}),
                   path, write_statistics=statistics)
    size = os.path.getsize(path) if size_known else None
    assert footer_time_bounds(pafs.LocalFileSystem(), path, size) == (at(1, us=7), at(3, us=999_999))
