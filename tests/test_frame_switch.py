"""The pandas switch: ``LAKENODES_FRAME=pandas`` / ``set_default_frame("pandas")`` make reads and
``run()`` return the seeds' pandas shape; ``frame=`` wins; polars stays the default and the library's
own machinery (run_many, catalog, CLI) is unaffected."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from lakenodes import (
    APIDataNode,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    Lake,
    LakenodesUserError,
    TimeIndexMetaTable,
    default_frame,
    run_many,
    set_default_frame,
)

UTC = dt.timezone.utc
DAYS = [dt.datetime(2024, 1, day, tzinfo=UTC) for day in (1, 2, 3)]
ASSETS = ["AAA", "BRK/B"]


@pytest.fixture(autouse=True)
def polars_by_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts (and leaves the program) with no switch set."""
    monkeypatch.delenv("LAKENODES_FRAME", raising=False)
    set_default_frame(None)
    yield
    set_default_frame(None)


class PanelConfig(DataNodeConfiguration):
    series: bool = False  # a single series (time_index only) instead of a panel


class Panel(DataNode):
    """Three days of closes for two assets (or one series); each run writes the days not yet stored."""

    updates: ClassVar[int] = 0

    def dependencies(self):
        return {}

    def update(self) -> pl.DataFrame:
        type(self).updates += 1
        last = self.update_statistics.max_time_index_value
        days = [day for day in DAYS if last is None or day > last]
        if self.config.series:
            return pl.DataFrame({"time_index": days, "close": [float(day.day) for day in days]},
                                schema={"time_index": pl.Datetime("us", "UTC"), "close": pl.Float64})
        rows = [(day, uid, float(day.day) + index) for day in days for index, uid in enumerate(ASSETS)]
        return pl.DataFrame(rows, schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String,
                                          "close": pl.Float64}, orient="row")


def panel(identifier: str = "switch_panel") -> Panel:
    return Panel(PanelConfig(node_metadata=DataNodeMetaData(identifier=identifier)))


def switch_on(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "env":
        monkeypatch.setenv("LAKENODES_FRAME", "pandas")  # read at call time, after import
    else:
        set_default_frame("pandas")


def assert_seeds_panel(frame: object, rows: int) -> None:
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index.names) == ["time_index", "unique_identifier"]
    assert list(frame.columns) == ["close"] and len(frame) == rows
    assert str(frame.index.get_level_values("time_index").tz) == "UTC"


# -- polars by default, with a hint at the switch ------------------------------------------------------
def test_polars_is_the_default_and_pandas_names_point_at_the_switch(local_lake: Lake) -> None:
    node = panel()
    _, written = node.run()
    data = node.get_df_between_dates()
    assert default_frame() == "polars"
    assert isinstance(written, pl.DataFrame) and isinstance(data, pl.DataFrame)
    for name in ("iloc", "empty", "xs"):
        for frame in (written, data, node.get_last_observation()):
            with pytest.raises(AttributeError, match=name) as caught:
                getattr(frame, name)
            assert "LAKENODES_FRAME=pandas" in str(caught.value) and "set_default_frame" in str(caught.value)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        data.nonsense  # noqa: B018 - other names fail as usual
    assert data.filter(pl.col("close") > 0).height == 6  # still a polars frame in every other respect


# -- the switch --------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["env", "set_default_frame"])
def test_the_switch_makes_reads_and_run_return_the_seeds_pandas_shape(
    local_lake: Lake, monkeypatch: pytest.MonkeyPatch, how: str,
) -> None:
    node = panel()
    switch_on(how, monkeypatch)
    before = node.get_df_between_dates()  # before the first write: empty, indexed (nothing declared but time)
    assert isinstance(before, pd.DataFrame) and before.empty and before.index.names == ["time_index"]

    _, written = node.run()
    assert_seeds_panel(written, 6)
    assert_seeds_panel(node.get_df_between_dates(), 6)
    assert_seeds_panel(node.get_df_between_dates(DAYS[1], unique_identifier_list=["BRK/B"]), 2)
    ranges = {"AAA": {"start_date": DAYS[2], "start_date_operand": ">="}}
    assert_seeds_panel(node.get_ranged_data_per_asset(ranges), 1)
    last = node.get_last_observation()
    assert_seeds_panel(last, 2)
    assert last.xs("BRK/B", level="unique_identifier")["close"].tolist() == [4.0]
    assert_seeds_panel(APIDataNode.build_from_identifier("switch_panel").get_df_between_dates(), 6)

    _, nothing_new = node.run()
    assert isinstance(nothing_new, pd.DataFrame) and nothing_new.empty

    series = Panel(PanelConfig(series=True))
    _, written = series.run()
    assert isinstance(written, pd.DataFrame) and written.index.name == "time_index"
    assert series.get_df_between_dates().index.name == "time_index"
    assert series.get_df_between_dates().loc[DAYS[1], "close"] == 2.0



@pytest.mark.parametrize("kind", ["polars", "pandas", "arrow"])
def test_a_run_with_nothing_new_returns_the_tables_columns(local_lake: Lake, kind: str) -> None:
    """Regression: a run with nothing new returned a (0, 0) frame with no columns (a notebook showed
    an empty box). It returns the table's columns, typed as stored, with no rows: the frame an empty
    read returns, in every frame kind."""
    node = panel()
    node.run()
    set_default_frame(kind)  # type: ignore[arg-type]
    _, nothing_new = node.run()
    empty_read = node.get_df_between_dates(DAYS[2] + dt.timedelta(days=1))
    assert type(nothing_new) is type(empty_read) and len(nothing_new) == len(empty_read) == 0
    if kind == "pandas":
        assert list(nothing_new.index.names) == list(empty_read.index.names) == ["time_index", "unique_identifier"]
        assert nothing_new.dtypes.to_dict() == empty_read.dtypes.to_dict() == {"close": "float64"}
    elif kind == "arrow":
        assert nothing_new.schema == empty_read.schema
    else:
        assert nothing_new.schema == empty_read.schema == {
            "time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String, "close": pl.Float64}


def test_a_runs_arrow_rows_have_the_types_a_read_returns(local_lake: Lake) -> None:
    """Regression: ``run()`` returned Arrow rows with ``large_string`` text (they come back through
    polars) where a read of the same rows gives ``string``: comparing or concatenating the two failed."""
    set_default_frame("arrow")
    _, written = panel().run()
    read = panel().get_df_between_dates()
    assert written.schema == read.schema
    assert written.sort_by([("time_index", "ascending"), ("unique_identifier", "ascending")]).equals(
        read.sort_by([("time_index", "ascending"), ("unique_identifier", "ascending")]))

@pytest.mark.parametrize("how", ["env", "set_default_frame"])
def test_an_explicit_frame_argument_wins(local_lake: Lake, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    node = panel()
    node.run()
    switch_on(how, monkeypatch)
    assert isinstance(node.get_df_between_dates(frame="polars"), pl.DataFrame)
    assert isinstance(node.get_last_observation(frame="arrow"), pa.Table)
    assert isinstance(node.get_ranged_data_per_asset({"AAA": {"start_date": DAYS[0]}}, frame="polars"), pl.DataFrame)


def test_set_default_frame_wins_over_the_environment(local_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    node = panel()
    node.run()
    monkeypatch.setenv("LAKENODES_FRAME", "pandas")
    set_default_frame("polars")
    assert isinstance(node.get_df_between_dates(), pl.DataFrame)
    set_default_frame(None)  # back to the environment
    assert isinstance(node.get_df_between_dates(), pd.DataFrame)
    monkeypatch.setenv("LAKENODES_FRAME", " Arrow ")
    assert isinstance(node.get_df_between_dates(), pa.Table)


def test_bad_values_are_one_line_user_errors(local_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    node = panel()
    node.run()
    with pytest.raises(LakenodesUserError) as caught:
        set_default_frame("excel")
    assert "\n" not in str(caught.value) and "'excel'" in str(caught.value)
    assert default_frame() == "polars"  # unchanged

    with pytest.raises(LakenodesUserError, match="frame must be 'polars', 'pandas' or 'arrow', got 'numpy'"):
        node.get_df_between_dates(frame="numpy")

    monkeypatch.setenv("LAKENODES_FRAME", "excel")
    with pytest.raises(LakenodesUserError, match="LAKENODES_FRAME must be") as caught:
        node.get_last_observation()
    assert "\n" not in str(caught.value)

    fresh = Panel(PanelConfig(series=True))
    before = Panel.updates
    with pytest.raises(LakenodesUserError, match="LAKENODES_FRAME"):
        fresh.run()
    assert Panel.updates == before and fresh.get_df_between_dates(frame="arrow").num_rows == 0  # nothing ran


def test_pandas_frames_without_pandas_installed_name_the_extra(local_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain ``pip install lakenodes`` has no pandas: asking for the seeds' pandas frames says which
    install gives them, in one line, and changes nothing (polars reads still work)."""
    node = panel()
    node.run()
    rows = node.get_df_between_dates().height
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed: find_spec finds nothing
    extra = 'pandas is not installed: pip install "lakenodes[pandas]"'
    with pytest.raises(LakenodesUserError, match=r"set_default_frame asks for pandas frames, but " + re.escape(extra)):
        set_default_frame("pandas")
    assert default_frame() == "polars"
    with pytest.raises(LakenodesUserError, match=re.escape(extra)):
        node.get_df_between_dates(frame="pandas")
    monkeypatch.setenv("LAKENODES_FRAME", "pandas")
    with pytest.raises(LakenodesUserError, match=r"LAKENODES_FRAME asks for pandas frames") as caught:
        node.get_last_observation()
    assert "\n" not in str(caught.value)
    assert node.get_df_between_dates(frame="polars").height == rows


# -- the library's own machinery is unaffected ------------------------------------------------------------
def test_run_many_and_the_catalog_keep_their_types_under_the_switch(
    local_lake: Lake, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKENODES_FRAME", "pandas")
    node = panel()
    written = run_many([node], return_frames=True)
    assert isinstance(written[node.update_hash], pl.DataFrame) and written[node.update_hash].height == 6
    table = TimeIndexMetaTable.get(identifier="switch_panel")
    assert table.stats()["row_count"] == 6
    assert table.run_query(f"SELECT count(*) AS n FROM {table.storage_hash}")["results"] == [{"n": 6}]
    assert node.update_statistics.asset_list is None and node.update_statistics.max_time_index_value == DAYS[-1]


def test_the_cli_is_unaffected_by_the_switch(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    lake = str(tmp_path / "cli")

    def cli(*args: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "lakenodes", "--lake", lake, "--json", *args], cwd=repo, capture_output=True,
            text=True, timeout=300, env={**_environment(), "LAKENODES_FRAME": "pandas"},
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert cli("run", "examples.tutorial_nodes:DailyRandomAddition", "--config", '{"mean": 0, "std": 1}')[
        "rows_written"] == 1
    listed = cli("data-node", "list")
    assert len(listed["results"]) == 2  # the node and its dependency, both registered


def _environment() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("LAKENODES_")}


def test_pandas_reads_keep_int64_exact_and_bool_typed_when_a_column_has_nulls(local_lake: Lake) -> None:
    """Regression: an int64 column with a null read as float64 (2**63 - 1 came back 2**63) and a bool
    one as object; such columns now read as pandas' nullable Int64 / boolean, the others unchanged."""

    class Extremes(DataNode):
        def dependencies(self):
            return {}

        def update(self) -> pl.DataFrame:
            days = DAYS[:3]
            return pl.DataFrame({"time_index": days, "i": [-2**63, None, 2**63 - 1], "b": [True, None, False],
                                 "whole": [1, 2, 3]},
                                schema={"time_index": pl.Datetime("us", "UTC"), "i": pl.Int64, "b": pl.Boolean,
                                        "whole": pl.Int64})

    node = Extremes(DataNodeConfiguration())
    node.run()
    frame = node.get_df_between_dates(frame="pandas")
    assert str(frame["i"].dtype) == "Int64" and frame["i"].tolist() == [-2**63, pd.NA, 2**63 - 1]
    assert str(frame["b"].dtype) == "boolean" and frame["b"].isna().tolist() == [False, True, False]
    assert str(frame["whole"].dtype) == "int64"
