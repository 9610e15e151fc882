"""Frame rules at the edges of the data (an edge-case audit): empty frames, pandas' missing values
and Python-object columns. Through real runs on a local Delta lake, with ``assert_rejected`` of
tests/test_frames.py (names the node, the validation phase and the problem; nothing stored changes).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import numpy as np
import pandas as pd
import polars as pl
import pytest
from test_frames import (
    RECORDS,
    TWO_DAYS,
    FrameConfig,
    FrameNode,
    VenueNode,
    _read,
    assert_rejected,
    contract_seed,
    day,
    pandas_frame,
    polars_frame,
    table_state,
    uid_level,
)

from lakenodes import FrameValidationError, RecordDefinition, SchemaMismatchError

UTC_US = pl.Datetime("us", "UTC")


# -- empty frames: "nothing new", but their schema is the frame's schema --------------------------
def _polars_empty(**schema: pl.DataType) -> pl.DataFrame:
    return pl.DataFrame(schema={"time_index": UTC_US, "unique_identifier": pl.String, **schema})


EMPTY_REJECTIONS = [
    pytest.param(lambda: pl.DataFrame(schema={"t": UTC_US, "value": pl.Float64}), ("'time_index'", "missing"),
                 None, id="polars-no-time-index"),
    pytest.param(lambda: pl.DataFrame(schema={"time_index": pl.Datetime("us"), "value": pl.Float64}), ("naive",),
                 None, id="polars-naive-time-index"),
    pytest.param(lambda: _polars_empty(value=pl.Float64).with_columns(pl.col("unique_identifier").cast(pl.Int64)),
                 ("unique_identifier", "must hold strings", "int64"), None, id="polars-int-uid"),
    pytest.param(lambda: _polars_empty(select=pl.Float64), ("'select'", "reserved"), None, id="reserved-column"),
    pytest.param(lambda: _polars_empty(Value=pl.Float64), ("'Value'", "lowercase"), None, id="uppercase-column"),
    pytest.param(lambda: _polars_empty(), ("no value column",), None, id="no-value-column"),
    pytest.param(lambda: _polars_empty(value=pl.List(pl.Float64)), ("'value'", "unsupported type"), None,
                 id="list-column"),
    pytest.param(lambda: pd.DataFrame({"value": pd.Series([], dtype=float)}, index=pd.Index([], name="date")),
                 ("time_index",), None, id="pandas-index-not-time_index"),
    pytest.param(lambda: pandas_frame((pd.Timestamp("2024-01-02"),), value=[1.0]).iloc[0:0], ("naive",), None,
                 id="pandas-naive-time-index"),
    pytest.param(lambda: contract_seed().clear().drop("count"), ("'count'", "missing"), RECORDS,
                 id="records-missing-column"),
]


@pytest.mark.parametrize("seeded", [False, True], ids=["first-run", "after-a-write"])
@pytest.mark.parametrize("empty, problem, records", EMPTY_REJECTIONS)
def test_an_empty_frame_with_a_wrong_schema_is_refused(local_lake, empty, problem, records, seeded):
    """Regression: an empty frame skipped every rule (nothing to write), so a quiet day's wrong
    schema passed and the error came on the next day with rows."""
    node = FrameNode(FrameConfig(records=records))
    if seeded:
        node.run_with(contract_seed() if records else polars_frame())
    assert_rejected(node, empty(), problem)
    if not seeded:
        assert table_state(node) is None


@pytest.mark.parametrize("empty, problem", [
    pytest.param(lambda: contract_seed().clear().with_columns(extra=pl.lit(1.0)), ("'extra'", "new"), id="new-column"),
    pytest.param(lambda: contract_seed().clear().drop("count"), ("'count'", "missing"), id="missing-column"),
    pytest.param(lambda: contract_seed().clear().with_columns(pl.col("count").cast(pl.String)),
                 ("'count'", "int64", "string"), id="int-to-string"),
])
def test_an_empty_frame_is_checked_against_the_stored_schema(local_lake, empty, problem):
    node = FrameNode()
    node.run_with(contract_seed())
    assert_rejected(node, empty(), problem, SchemaMismatchError)


@pytest.mark.parametrize("empty", [
    pytest.param(lambda: contract_seed().clear(), id="polars-typed"),
    pytest.param(lambda: pl.DataFrame({"time_index": [], "unique_identifier": [], "value": [], "count": []}),
                 id="polars-untyped"),
    pytest.param(lambda: pd.DataFrame(columns=["time_index", "unique_identifier", "value", "count"])
                 .set_index(["time_index", "unique_identifier"]), id="pandas-object-columns"),
    pytest.param(lambda: pandas_frame((day(1),), uid_level("AAA"), value=[1.0], count=[1]).iloc[0:0],
                 id="pandas-nanoseconds"),
    pytest.param(lambda: pd.DataFrame(index=pd.DatetimeIndex([], name="time_index", tz="UTC")), id="pandas-no-columns"),
    pytest.param(lambda: pd.DataFrame(), id="pandas-bare"),
    pytest.param(lambda: pd.DataFrame(columns=["value", "count"]), id="pandas-columns-no-index"),  # pandas' idiom
])
@pytest.mark.parametrize("seeded", [False, True], ids=["first-run", "after-a-write"])
def test_an_empty_frame_with_a_valid_schema_is_nothing_new(local_lake, empty, seeded):
    node = FrameNode(FrameConfig(records=RECORDS))
    if seeded:
        node.run_with(contract_seed())
    before = table_state(node)
    error, written = node.run_with(empty())
    assert error is False and written.height == 0
    assert table_state(node) == before
    if seeded:  # and the next run with rows is unaffected
        node.run_with(contract_seed().with_columns(time_index=pl.lit(day(5))).head(1))
        assert _read(FrameNode(FrameConfig(records=RECORDS))).height == 3


def test_an_empty_frame_of_a_declared_dimension_still_needs_it(local_lake):
    assert_rejected(VenueNode(), polars_frame().clear(), ("venue", "missing"))


def test_a_datetime_value_column_of_only_nat_in_nanoseconds_is_stored_as_nulls(local_lake):
    """Regression: pandas' default nanosecond column holding only NaT was refused as having
    'sub-microsecond values' (the exactness check read an all-null comparison as false)."""
    seen = pd.DatetimeIndex([pd.NaT, pd.NaT]).tz_localize("UTC").as_unit("ns")  # pandas 3 infers seconds
    assert str(seen.dtype) == "datetime64[ns, UTC]"
    FrameNode().run_with(pandas_frame((day(1), day(2)), uid_level("AAA", "BBB"), value=[1.0, 2.0], seen_at=seen))
    assert _read(FrameNode())["seen_at"].to_list() == [None, None]



STORED_KINDS = {"note": ["a", "b"], "flag": [True, False], "count": [1, 2], "due": [dt.date(2024, 1, 1)] * 2,
                "seen_at": [day(1), day(1)]}


@pytest.mark.parametrize("records", [None, [RecordDefinition(column_name=name, dtype=dtype) for name, dtype in (
    ("note", "string"), ("flag", "bool"), ("count", "int64"), ("due", "date"), ("seen_at", "datetime"))]],
    ids=["stored", "declared"])
def test_a_pandas_column_with_no_value_takes_the_stored_or_declared_type(local_lake, records):
    """Regression: on a day where a text, bool, int, date or datetime column had no value, pandas made
    it float64 of NaN (``reindex(columns=...)``, ``np.nan``) or naive NaT, and the run failed: "column
    'note' was string and is now float64"; nothing contradicts the table's type, so it is stored as nulls."""
    node = FrameNode(FrameConfig(records=records))
    node.run_with(pandas_frame(TWO_DAYS, uid_level("AAA", "BBB"), **STORED_KINDS))
    quiet = pandas_frame((day(3), day(3)), uid_level("AAA", "BBB"), note=[np.nan, np.nan], flag=[np.nan, np.nan])
    quiet = quiet.reindex(columns=list(STORED_KINDS)).assign(seen_at=pd.Series([pd.NaT, pd.NaT]).to_numpy())
    # float64 of NaN, and naive NaT (datetime64[s] in pandas 3, [ns] in pandas 2)
    assert set(quiet.drop(columns="seen_at").dtypes.astype(str)) == {"float64"}
    assert str(quiet.dtypes["seen_at"]) in ("datetime64[s]", "datetime64[ns]")
    error, written = node.run_with(quiet)
    assert error is False and len(written) == 2
    stored = _read(FrameNode(FrameConfig(records=records)))
    assert stored.schema == _read(node).schema and stored.schema["seen_at"] == pl.Datetime("us", "UTC")
    assert stored.schema["note"] == pl.String and stored.schema["due"] == pl.Date
    assert stored.filter(pl.col("time_index") == day(3)).drop("time_index", "unique_identifier").null_count().row(0) \
        == (2,) * len(STORED_KINDS)
    node.run_with(quiet)  # the same quiet day again: nothing changes
    assert table_state(node)[0] == 1


def test_a_column_without_a_value_in_the_first_write_is_named_in_a_warning(local_lake, caplog):
    """A text column missing on the very first day became float64 for good, silently: the warning
    names it (no warning when records type it, nor once the table exists)."""
    def quiet_day(n: int) -> pd.DataFrame:
        return pandas_frame((day(n),), uid_level("AAA"), value=[1.0]).reindex(columns=["value", "note"])

    said = "column 'note' has no value in the table's first write, which makes it float64 for good"
    with caplog.at_level(logging.WARNING, logger="lakenodes.node.FrameNode"):
        node = FrameNode()
        node.run_with(quiet_day(1))
        node.run_with(quiet_day(2))
        FrameNode(FrameConfig(name="declared", records=[RecordDefinition(column_name="value", dtype="float64"),
                                                       RecordDefinition(column_name="note", dtype="string")]
                              )).run_with(quiet_day(1))
    assert [record.getMessage() for record in caplog.records if said in record.getMessage()] == [
        f"{node.logger.tag} {said} (the schema is a contract): if it holds another type, declare it in the "
        "configuration's records"]


def test_a_column_with_values_still_needs_the_stored_type(local_lake):
    """Values decide: a float among NaN, or a polars NaN (a value), is still a changed type."""
    node = FrameNode()
    node.run_with(polars_frame(note=["a", "b"]))
    assert_rejected(node, pandas_frame(TWO_DAYS, uid_level("AAA", "BBB"), note=[np.nan, 1.5]),
                    ("'note'", "was string and is now float64"), SchemaMismatchError)
    assert_rejected(node, polars_frame(note=[float("nan"), None]), ("'note'", "was string and is now float64"),
                    SchemaMismatchError)  # a polars NaN is a value


# -- pandas: an int column with a missing value arrives as float64 -------------------------------
PANDAS_INT_HINT = ("pandas' nullable 'Int64' dtype", "frame['count'] = frame['count'].astype('Int64')")


def _pandas_counts(counts: list) -> pd.DataFrame:
    return pandas_frame((day(3), day(4)), uid_level("AAA", "BBB"), value=[1.0, 2.0], count=counts)


@pytest.mark.parametrize("records", [None, RECORDS], ids=["stored-int", "declared-int"])
@pytest.mark.parametrize("counts, said", [
    pytest.param([1, np.nan], ("holds whole numbers and 1 missing value(s)", "polars frame, whose ints keep"),
                 id="nan"),
    pytest.param([1.0, 2.0], ("holds only whole numbers",), id="whole-floats"),
])
def test_a_pandas_int_column_turned_float_by_a_missing_value_gets_a_hint(local_lake, records, counts, said):
    node = FrameNode(FrameConfig(records=records))
    node.run_with(contract_seed())
    cause = FrameValidationError if records else SchemaMismatchError
    assert_rejected(node, _pandas_counts(counts), ("'count'", "int64", "float64", *PANDAS_INT_HINT, *said), cause)


@pytest.mark.parametrize("output", [
    pytest.param(lambda: _pandas_counts([1.5, np.nan]), id="pandas-fractions"),
    pytest.param(lambda: contract_seed().with_columns(pl.col("count").cast(pl.Float64)), id="polars-whole-floats"),
])
def test_no_int_hint_when_the_column_is_not_a_pandas_int_with_a_missing_value(local_lake, output):
    node = FrameNode()
    node.run_with(contract_seed())
    error = assert_rejected(node, output(), ("'count'", "int64", "float64"), SchemaMismatchError)
    assert "Int64" not in str(error)


def test_pandas_nullable_int_column_with_a_missing_value_is_stored_as_int(local_lake):
    node = FrameNode()
    node.run_with(contract_seed())
    node.run_with(_pandas_counts(pd.array([3, None], dtype="Int64")))
    assert _read(FrameNode())["count"].to_list() == [1, 2, 3, None]


# -- columns of Python objects and types a table cannot hold: named in the user's terms ----------
class Quote:
    """A user's own class, put in a pandas object column."""


OBJECT_COLUMN_REJECTIONS = [
    pytest.param(lambda: np.array([Quote(), Quote()], dtype=object),
                 ("'value' holds Python Quote objects (pandas dtype object)", "unsupported type"), id="own-class"),
    pytest.param(lambda: np.array([object(), object()], dtype=object),
                 ("'value' holds plain Python objects (pandas dtype object)",), id="plain-objects"),
    pytest.param(lambda: np.array([1, "a"], dtype=object),
                 ("'value' holds Python objects of mixed types int, str (pandas dtype object)", "one type",
                  "frame['value'].astype(str)"), id="int-and-str"),
    pytest.param(lambda: np.array([uuid.UUID(int=1), uuid.UUID(int=2)], dtype=object),
                 ("'value' holds Python UUID objects (pandas dtype object)", "unsupported type"), id="uuids"),
    pytest.param(lambda: np.array([b"abcdefgh", b"12345678"], dtype="S8"),
                 ("'value' holds Python bytes objects (pandas dtype object)",), id="numpy-bytes"),
    # regressions: these escaped as a bare OverflowError / TypeError, not a frame error
    pytest.param(lambda: np.array([2**70, 1], dtype=object),
                 ("'value' holds Python int objects (pandas dtype object)", "an int beyond int64"), id="int-beyond-int64"),
    pytest.param(lambda: pd.arrays.SparseArray([1.0, 2.0]),
                 ("'value' holds values of pandas dtype Sparse[float64, nan]",), id="sparse"),
    pytest.param(lambda: np.array([1 + 1j, 2j]), ("'value' holds values of pandas dtype complex128",), id="complex"),
]


@pytest.mark.parametrize("values, problem", OBJECT_COLUMN_REJECTIONS)
def test_a_pandas_column_a_table_cannot_hold_is_named_with_its_pandas_type(local_lake, values, problem):
    node = FrameNode()
    node.run_with(polars_frame())
    assert_rejected(node, pandas_frame(TWO_DAYS, uid_level("AAA", "BBB"), value=values()),
                    (*problem, "use float, int, bool, string, date or UTC datetime"))


@pytest.mark.parametrize("dtype, problem", [
    pytest.param(pl.Int128, ("'value' holds values of polars dtype Int128", "no 128-bit ints", "cast it to Int64"),
                 id="int128"),
    pytest.param(pl.Object, ("'value' holds values of polars dtype Object", "unsupported type"), id="object"),
])
def test_a_polars_column_a_table_cannot_hold_is_named_with_its_polars_type(local_lake, dtype, problem):
    values = [Quote(), Quote()] if dtype == pl.Object else [1, 2]
    assert_rejected(FrameNode(), polars_frame(value=pl.Series(values, dtype=dtype)), problem)


# -- pandas' dates are datetimes: errors say how to make the values dates, or UTC times -------------
DATE_RECORDS = [RecordDefinition(column_name="value", dtype="float64"), RecordDefinition(column_name="due", dtype="date")]


def _with_due(due) -> pd.DataFrame:
    return pandas_frame(TWO_DAYS, uid_level("AAA", "BBB"), value=[1.0, 2.0], due=due)


@pytest.mark.parametrize("due, records, problem", [
    pytest.param(pd.to_datetime(["2024-03-01", "2024-03-02"]), DATE_RECORDS,
                 ("'due'", "timezone-naive", "frame['due'].dt.tz_localize('UTC')", "frame['due'].dt.date"),
                 id="declared-date-naive-datetimes"),
    pytest.param(pd.to_datetime(["2024-03-01", "2024-03-02"], utc=True), DATE_RECORDS,
                 ("'due' is declared date but the frame holds datetime", "frame['due'].dt.date"), id="declared-date-utc-datetimes"),
    pytest.param(pd.to_datetime(["2024-03-01", "2024-03-02"]).tz_localize("America/New_York"), None,
                 ("'due'", "America/New_York", "frame['due'].dt.tz_convert('UTC')"), id="new-york-datetimes"),
])
def test_a_pandas_datetime_column_a_table_cannot_take_as_is_is_named_with_the_fix(local_lake, due, records, problem):
    """Regression: a column declared date holding pandas' naive datetimes (pandas has no date dtype) was
    told only to be 'timezone-aware UTC', which the declaration then refused too."""
    node = FrameNode(FrameConfig(name=f"due-{uuid.uuid4().hex[:8]}", records=records))
    assert_rejected(node, _with_due(due), problem)


def test_a_stored_date_column_given_datetimes_says_how_to_make_them_dates(local_lake):
    node = FrameNode(FrameConfig(name="due-stored"))
    node.run_with(_with_due([dt.date(2024, 3, 1), dt.date(2024, 3, 2)]))
    later = pandas_frame((day(3), day(4)), uid_level("AAA", "BBB"), value=[1.0, 2.0],
                         due=pd.to_datetime(["2024-03-03", "2024-03-04"], utc=True))
    assert_rejected(node, later, ("'due' was date and is now datetime", "frame['due'].dt.date"), cause=SchemaMismatchError)
