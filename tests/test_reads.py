"""Reads: get_df_between_dates with every argument, per-asset ranges, last observation, APIDataNode."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from lakenodes import (
    APIDataNode,
    Asset,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    Lake,
    LakenodesUserError,
    NotFoundError,
    RecordDefinition,
    hash_namespace,
)

UTC = dt.UTC
DAY = dt.timedelta(days=1)
UIDS = ["A", "BRK/B", "é=1%"]
DAYS = [1, 2, 3, 4]


class ReadConfig(DataNodeConfiguration):
    name: str = "reads"


class QueueNode(DataNode):
    """Returns one queued frame per run (an empty frame once the queue is exhausted)."""

    def __init__(self, config: ReadConfig, frames=(), assets=None, **kwargs):
        self.assets = assets
        super().__init__(config, **kwargs)
        self.frames = list(frames)

    def dependencies(self):
        return {}

    def get_asset_list(self):
        return None if self.assets is None else [Asset(unique_identifier=uid) for uid in self.assets]

    def update(self):
        return self.frames.pop(0) if self.frames else pl.DataFrame()


def day(n: int) -> dt.datetime:
    return dt.datetime(2024, 1, n, tzinfo=UTC)


def panel_frame() -> pl.DataFrame:
    rows = [(day(d), uid, d * 10.0 + k, d * 100 + k) for d in DAYS for k, uid in enumerate(UIDS)]
    rows.reverse()  # unsorted on purpose: reads must come back sorted by the index
    return pl.DataFrame(rows, schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String,
                                      "close": pl.Float64, "volume": pl.Int64}, orient="row")


def series_frame() -> pl.DataFrame:
    return pl.DataFrame({"time_index": [day(d) for d in reversed(DAYS)], "level": [float(d) for d in reversed(DAYS)]})


@pytest.fixture(scope="module", params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def stored(request, tmp_path_factory) -> SimpleNamespace:
    """A (time_index, unique_identifier) panel and a single-index series, written once per lake kind."""
    if request.param == "local":
        lake = Lake(tmp_path_factory.mktemp("reads") / "lake")
    else:
        lake = request.getfixturevalue("s3_server").new_lake()
    panel = QueueNode(ReadConfig(name="panel"), [panel_frame()], lake=lake)
    series = QueueNode(ReadConfig(name="series"), [series_frame()], lake=lake)
    panel.run()
    series.run()
    return SimpleNamespace(lake=lake, panel=panel, series=series)


def keys(data: pl.DataFrame) -> list[tuple[int, str]]:
    return [(row[0].day, row[1]) for row in data.select("time_index", "unique_identifier").rows()]


def expected_keys(days=DAYS, uids=UIDS) -> list[tuple[int, str]]:
    return [(d, uid) for d in days for uid in sorted(uids)]


# -- get_df_between_dates ---------------------------------------------------------------------------
def test_default_read_is_polars_index_first_sorted(stored) -> None:
    data = stored.panel.get_df_between_dates()
    assert isinstance(data, pl.DataFrame)
    assert data.columns == ["time_index", "unique_identifier", "close", "volume"]
    assert data.schema["time_index"] == pl.Datetime("us", "UTC")
    assert data.schema["volume"] == pl.Int64
    assert keys(data) == expected_keys()
    assert data.equals(data.sort(["time_index", "unique_identifier"]))
    series = stored.series.get_df_between_dates()
    assert series.columns == ["time_index", "level"]
    assert series["level"].to_list() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    ("start", "end", "great_or_equal", "less_or_equal", "days"),
    [
        (None, None, True, True, DAYS),
        (day(2), day(3), True, True, [2, 3]),
        (day(2), day(3), False, True, [3]),
        (day(2), day(3), True, False, [2]),
        (day(2), day(3), False, False, []),
        (day(3), None, False, True, [4]),
        (None, day(2), True, False, [1]),
        ("2024-01-02", "2024-01-03T00:00:00Z", True, True, [2, 3]),
        (dt.date(2024, 1, 2), dt.date(2024, 1, 3), True, True, [2, 3]),
        (pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC"), True, True, [2, 3]),
        ("2024-01-02T02:00:00+02:00", dt.datetime(2024, 1, 2, 19, tzinfo=dt.timezone(-dt.timedelta(hours=5))),
         True, True, [2, 3]),
        (dt.datetime(2024, 1, 2), None, True, True, [2, 3, 4]),  # naive is taken as UTC
    ],
)
def test_date_window(stored, start, end, great_or_equal, less_or_equal, days) -> None:
    data = stored.panel.get_df_between_dates(start, end, great_or_equal=great_or_equal, less_or_equal=less_or_equal)
    assert keys(data) == expected_keys(days)
    series = stored.series.get_df_between_dates(
        start_date=start, end_date=end, great_or_equal=great_or_equal, less_or_equal=less_or_equal
    )
    assert [t.day for t in series["time_index"]] == days


def test_identity_filters(stored) -> None:
    node = stored.panel
    chosen = node.get_df_between_dates(unique_identifier_list=["BRK/B", Asset(unique_identifier="é=1%")])
    assert keys(chosen) == expected_keys(uids=["BRK/B", "é=1%"])
    by_dimension = node.get_df_between_dates(day(4), dimension_filters={"unique_identifier": ["A", "é=1%"]})
    assert keys(by_dimension) == [(4, "A"), (4, "é=1%")]
    nothing = node.get_df_between_dates(unique_identifier_list=["NOPE"])
    assert nothing.height == 0
    assert nothing.schema == node.get_df_between_dates().schema


def test_column_selection(stored) -> None:
    node = stored.panel
    assert node.get_df_between_dates(columns=["close"]).columns == ["time_index", "unique_identifier", "close"]
    swapped = node.get_df_between_dates(columns=["volume", "close"])
    assert swapped.columns == ["time_index", "unique_identifier", "volume", "close"]
    assert node.get_df_between_dates(columns=["unique_identifier", "close"]).columns == [
        "time_index", "unique_identifier", "close"]
    assert node.get_df_between_dates(columns=[]).columns == ["time_index", "unique_identifier"]


def test_unique_identifier_range_map(stored) -> None:
    range_map = {
        "A": {"start_date": day(2), "start_date_operand": ">", "end_date": day(4), "end_date_operand": "<"},
        "BRK/B": {"start_date": day(4), "start_date_operand": ">="},
        "é=1%": {"start_date": day(1), "end_date": day(2)},
    }
    data = stored.panel.get_df_between_dates(unique_identifier_range_map=range_map)
    assert sorted(keys(data)) == [(1, "é=1%"), (2, "é=1%"), (3, "A"), (4, "BRK/B")]
    clipped = stored.panel.get_df_between_dates(start_date=day(2), unique_identifier_range_map=range_map)
    assert sorted(keys(clipped)) == [(2, "é=1%"), (3, "A"), (4, "BRK/B")]
    assert stored.panel.get_df_between_dates(unique_identifier_range_map={}).height == 0


def test_dimension_range_map_and_union_with_uid_map(stored) -> None:
    dimension_map = [{"coordinate": {"unique_identifier": "é=1%"}, "start_date": day(3), "end_date": day(3)}]
    data = stored.panel.get_df_between_dates(dimension_range_map=dimension_map)
    assert keys(data) == [(3, "é=1%")]
    both = stored.panel.get_df_between_dates(
        dimension_range_map=dimension_map, unique_identifier_range_map={"A": {"start_date": day(4)}}
    )
    assert keys(both) == [(3, "é=1%"), (4, "A")]


def test_pandas_frame_has_the_seeds_shape(stored) -> None:
    panel = stored.panel.get_df_between_dates(frame="pandas")
    assert isinstance(panel, pd.DataFrame)
    assert list(panel.index.names) == ["time_index", "unique_identifier"]
    assert str(panel.index.levels[0].tz) == "UTC"
    assert list(panel.columns) == ["close", "volume"]
    assert panel.loc[(pd.Timestamp("2024-01-03", tz="UTC"), "BRK/B"), "close"] == 31.0
    assert len(panel) == len(DAYS) * len(UIDS)
    series = stored.series.get_df_between_dates(start_date=day(3), frame="pandas")
    assert isinstance(series.index, pd.DatetimeIndex)
    assert series.index.name == "time_index" and str(series.index.tz) == "UTC"
    assert series["level"].tolist() == [3.0, 4.0]
    arrow = stored.panel.get_df_between_dates(day(4), frame="arrow")
    assert isinstance(arrow, pa.Table) and arrow.num_rows == len(UIDS)


# -- per-asset ranges and last observation ----------------------------------------------------------
def test_get_ranged_data_per_asset(stored) -> None:
    node = stored.panel
    descriptor = node.update_statistics.get_update_range_map_great_or_equal(extra_time_delta=DAY)
    data = node.get_ranged_data_per_asset(descriptor)
    assert keys(data) == expected_keys([3, 4])
    closes = node.get_ranged_data_per_asset({"BRK/B": {"start_date": day(2), "end_date": day(2)}}, columns=["close"])
    assert closes.rows() == [(day(2), "BRK/B", 21.0)]
    as_pandas = node.get_ranged_data_per_asset(range_descriptor=descriptor, frame="pandas")
    assert float(as_pandas.xs("é=1%", level="unique_identifier")["close"].iloc[-1]) == 42.0
    # regression: the dimension-shaped map (DESIGN: both shapes are accepted back by the reads) was refused
    by_coordinate = node.update_statistics.get_dimension_range_map_great_or_equal(extra_time_delta=DAY)
    assert keys(node.get_ranged_data_per_asset(by_coordinate)) == expected_keys([3, 4])


def test_get_last_observation(stored) -> None:
    last = stored.panel.get_last_observation()
    assert keys(last) == expected_keys([4])
    assert last["close"].to_list() == [40.0, 41.0, 42.0]
    one = stored.panel.get_last_observation(asset_list=[Asset(unique_identifier="BRK/B")])
    assert one.rows() == [(day(4), "BRK/B", 41.0, 401)]
    assert stored.panel.get_last_observation(asset_list=["é=1%", "NOPE"])["unique_identifier"].to_list() == ["é=1%"]
    series = stored.series.get_last_observation(frame="pandas")
    assert series.index.tolist() == [pd.Timestamp("2024-01-04", tz="UTC")]


def test_get_last_observation_columns(stored) -> None:
    """``columns=`` as every other read takes it: the index, then those columns, of each latest row
    (as_of too; before the first write: test_reads_before_the_first_write_return_empty_declared_frames);
    an unknown column is refused by name."""
    closes = stored.panel.get_last_observation(columns=["close"])
    assert closes.columns == ["time_index", "unique_identifier", "close"]
    assert closes.rows() == stored.panel.get_last_observation().select(closes.columns).rows()
    assert stored.panel.get_last_observation(["BRK/B"], "pandas", columns=("volume",)).columns.tolist() == ["volume"]
    assert stored.panel.get_last_observation(columns=["close"], as_of=0).columns == closes.columns
    assert stored.panel.get_last_observation(columns=[]).columns == ["time_index", "unique_identifier"]
    with pytest.raises(LakenodesUserError, match=r"unknown column\(s\) \['clse'\]"):
        stored.panel.get_last_observation(columns=["clse"])
    with pytest.raises(LakenodesUserError, match="columns must be a list"):
        stored.panel.get_last_observation(columns="close")


# -- rejected arguments -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"start_date": "yesterday-ish"}, "start_date='yesterday-ish' is not an ISO-8601"),
        ({"end_date": "2024-13-45"}, "end_date="),
        ({"start_date": 20240101}, "start_date must be a datetime"),
        ({"columns": ["close", "nope"]}, "unknown column(s) ['nope']"),
        ({"columns": "close"}, "columns must be a list"),
        ({"unique_identifier_list": "BRK/B"}, "unique_identifier_list must be a list"),
        ({"unique_identifier_list": [42]}, "expected a unique_identifier"),
        ({"dimension_filters": {"account_uid": ["x"]}}, "unknown identity dimension(s) ['account_uid']"),
        ({"dimension_filters": {"unique_identifier": "A"}}, "must be a list"),
        ({"unique_identifier_range_map": {"A": {"start_date": day(1), "start_date_operand": "=>"}}},
         "start_date_operand must be one of"),
        ({"unique_identifier_range_map": {"A": {"end_date": day(1), "end_date_operand": ">="}}},
         "end_date_operand must be one of"),
        ({"unique_identifier_range_map": {"A": "2024-01-01"}}, "a range must be a mapping"),
        ({"unique_identifier_range_map": [("A", {})]}, "unique_identifier_range_map must map"),
        ({"dimension_range_map": [{"start_date": day(1)}]}, "needs a 'coordinate' mapping"),
        ({"dimension_range_map": {"coordinate": {"unique_identifier": "A"}}}, "must be a list"),
        ({"dimension_range_map": [{"coordinate": {"sector": "tech"}, "start_date": day(1)}]},
         "unknown identity dimension(s) ['sector']"),
        ({"frame": "numpy"}, "frame must be 'polars', 'pandas' or 'arrow'"),
    ],
)
def test_bad_arguments_are_user_errors(stored, kwargs, fragment) -> None:
    with pytest.raises(LakenodesUserError) as caught:
        stored.panel.get_df_between_dates(**kwargs)
    assert fragment in str(caught.value)


def test_bad_arguments_on_other_reads(stored) -> None:
    with pytest.raises(LakenodesUserError, match="unknown identity dimension"):
        stored.series.get_df_between_dates(unique_identifier_list=["A"])  # a single-index table
    with pytest.raises(LakenodesUserError, match="frame must be"):
        stored.panel.get_last_observation(frame="dict")
    with pytest.raises(LakenodesUserError, match="asset_list must be a list"):
        stored.panel.get_last_observation(asset_list="A")
    with pytest.raises(LakenodesUserError, match="not an ISO-8601"):
        stored.panel.get_ranged_data_per_asset({"A": {"start_date": "garbage"}})


# -- before the first write -------------------------------------------------------------------------
class RecordsConfig(DataNodeConfiguration):
    name: str = "unwritten"
    records: list[RecordDefinition] = [
        RecordDefinition(column_name="close", dtype="float64"),
        RecordDefinition(column_name="volume", dtype="int64"),
        RecordDefinition(column_name="venue", dtype="string"),
    ]


def test_reads_before_the_first_write_return_empty_declared_frames(any_lake: Lake) -> None:
    node = QueueNode(RecordsConfig(), assets=["A"])
    data = node.get_df_between_dates()
    assert data.height == 0
    assert data.schema == pl.Schema({"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String,
                                     "close": pl.Float64, "volume": pl.Int64, "venue": pl.String})
    assert node.get_df_between_dates(columns=["close"]).columns == ["time_index", "unique_identifier", "close"]
    assert node.get_last_observation().columns == data.columns
    assert node.get_last_observation(columns=["close"]).columns == ["time_index", "unique_identifier", "close"]
    assert node.get_ranged_data_per_asset({"A": {"start_date": day(1)}}).height == 0
    as_pandas = node.get_df_between_dates(frame="pandas")
    assert len(as_pandas) == 0 and list(as_pandas.columns) == ["close", "volume", "venue"]
    assert list(as_pandas.index.names) == ["time_index", "unique_identifier"]
    series_node = QueueNode(RecordsConfig(name="unwritten_series"))
    series = series_node.get_df_between_dates()
    assert series.columns == ["time_index", "close", "volume", "venue"] and series.height == 0
    series_pandas = series_node.get_df_between_dates(frame="pandas")
    assert series_pandas.index.name == "time_index" and str(series_pandas.index.tz) == "UTC"
    plain = QueueNode(ReadConfig(name="nothing_declared")).get_df_between_dates()
    assert plain.columns == ["time_index"] and plain.height == 0


# -- APIDataNode --------------------------------------------------------------------------------------
def published(name: str, identifier: str, frame: pl.DataFrame, **kwargs) -> QueueNode:
    config = ReadConfig(name=name, node_metadata=DataNodeMetaData(identifier=identifier))
    node = QueueNode(config, [frame], **kwargs)
    node.run()
    return node


def test_api_data_node_reads_a_published_table(any_lake: Lake) -> None:
    source = published("api_src", "px_daily", panel_frame())
    api = APIDataNode.build_from_identifier("px_daily")
    assert api.storage_hash == source.storage_hash
    assert api.get_df_between_dates().equals(source.get_df_between_dates())
    assert keys(api.get_last_observation()) == expected_keys([4])
    pandas_view = api.get_df_between_dates(day(4), frame="pandas")
    assert list(pandas_view.index.names) == ["time_index", "unique_identifier"]
    with pytest.raises(NotFoundError, match="'px_unknown'"):
        APIDataNode.build_from_identifier("px_unknown")


def test_api_data_node_has_the_update_statistics_a_dependent_node_reads(any_lake: Lake) -> None:
    """Main Sequence's APIDataNode answers get_update_statistics() and get_asset_list(); a node
    reading its dependency's watermarks got an AttributeError."""
    source = published("api_stats", "px_stats", panel_frame())
    api = APIDataNode.build_from_identifier("px_stats")
    assert api.get_asset_list() is None
    assert api.update_statistics.max_time_index_value == source.update_statistics.max_time_index_value == day(4)
    assert {uid: api.get_update_statistics().get_last_update_index_2d(uid) for uid in UIDS} == dict.fromkeys(UIDS, day(4))


def test_api_data_node_resolves_the_active_namespace_first(any_lake: Lake) -> None:
    default = published("api_ns", "px_ns", series_frame())
    isolated = published("api_ns", "px_ns", series_frame().head(1), hash_namespace="ns1")
    assert isolated.storage_hash != default.storage_hash

    assert APIDataNode.build_from_identifier("px_ns").storage_hash == default.storage_hash
    with hash_namespace("ns1"):
        assert APIDataNode.build_from_identifier("px_ns").get_df_between_dates().height == 1
    with hash_namespace("elsewhere"):  # not published there: falls back to the default namespace
        assert APIDataNode.build_from_identifier("px_ns").storage_hash == default.storage_hash
    assert APIDataNode.build_from_identifier("px_ns", namespace="ns1").storage_hash == isolated.storage_hash
    with pytest.raises(NotFoundError):
        APIDataNode.build_from_identifier("px_ns", namespace="nowhere")


def test_an_api_data_node_over_a_table_that_does_not_exist_fails_its_reads_naming_it(tmp_path, any_lake: Lake) -> None:
    """``APIDataNode(storage_hash)`` with a mistyped hash (or over another lake) read as an empty frame
    (one ``time_index`` column, no rows), so a node reading it in ``update()`` wrote nothing and
    succeeded; only its statistics said "no such table". Every read now says so; a read ``as_of``
    a version of a table that exists is unchanged."""
    source = published("api_missing", "px_missing", panel_frame())
    mistyped = APIDataNode(source.storage_hash[:-1] + "0")
    elsewhere = APIDataNode(source.storage_hash, lake=Lake(str(tmp_path / "other_lake")))
    for api in (mistyped, elsewhere):
        reads = [api.get_df_between_dates, lambda api=api: api.get_df_between_dates(day(1), frame="pandas"),
                 api.get_last_observation, api.scan, lambda api=api: api.get_ranged_data_per_asset({"A": {}})]
        for read in reads:
            with pytest.raises(NotFoundError, match=f"storage_hash='{api.storage_hash}'.*: no such table in "):
                read()
    present = APIDataNode(source.storage_hash)
    assert present.get_df_between_dates(as_of=0).height == len(UIDS) * len(DAYS)
    assert present.get_df_between_dates(day(9)).height == 0  # a table that exists, no row in the window


class DoubledConfig(DataNodeConfiguration):
    source_identifier: str


class Doubled(DataNode):
    """Doubles the ``level`` of a published series."""

    def __init__(self, config: DoubledConfig, **kwargs):
        self.source = APIDataNode.build_from_identifier(config.source_identifier)
        super().__init__(config, **kwargs)

    def dependencies(self):
        return {"source": self.source}

    def update(self):
        start = self.update_statistics.max_time_index_value
        data = self.source.get_df_between_dates(start_date=start, great_or_equal=start is None)
        return data.with_columns(pl.col("level") * 2)


def test_api_data_node_as_a_dependency(any_lake: Lake) -> None:
    published("api_dep", "levels_daily", series_frame())
    node = Doubled(DoubledConfig(source_identifier="levels_daily"))
    error, written = node.run()
    assert error is False
    assert written["level"].to_list() == [2.0, 4.0, 6.0, 8.0]
    assert node.get_df_between_dates()["level"].to_list() == [2.0, 4.0, 6.0, 8.0]
    assert node.run()[1].height == 0
