"""Bad input, one table of cases: bad ``update()`` outputs and bad arguments to public functions.

Every case must fail with a clear error naming the problem (asserted on the message) and leave the
lake exactly as it was: version and content of both data tables, of ``_catalog/tables`` and of
``_catalog/assets`` are compared before and after (``assert_rejected``, shared by every case).

Two tables are written once for the module: ``plain`` (no declared records: the stored schema is
the contract) and ``declared`` (``records`` declares ``close: float64``). A bad-output case runs an
``Emitter`` updater of one of them whose ``update()`` returns the case's frame — day 3 rows, new,
valid except for the one defect.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, ClassVar

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from pydantic import Field, ValidationError

from lakenodes import (
    APIDataNode,
    Asset,
    ConfigurationError,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    FrameValidationError,
    IdentifierConflictError,
    Lake,
    LakeConfigurationError,
    LakenodesUserError,
    NodeRunError,
    NotFoundError,
    RecordDefinition,
    SchemaMismatchError,
    TimeIndexMetaTable,
    hash_namespace,
    repoint_identifier,
    run_many,
    use_lake,
)

UTC = dt.timezone.utc
UIDS = ["AAA", "BBB"]
CLOSE = [RecordDefinition(column_name="close", dtype="float64")]


def day(n: int, tz: Any = UTC) -> dt.datetime:
    return dt.datetime(2024, 1, n, tzinfo=tz)


# -- the nodes ----------------------------------------------------------------------------------------
OUTPUTS: dict[str, Callable[[], Any]] = {}  # case id -> what update() returns


class EmitterConfig(DataNodeConfiguration):
    case: str = Field("good", json_schema_extra={"update_only": True})
    records: list[RecordDefinition] | None = None
    node_metadata: DataNodeMetaData | None = Field(None, json_schema_extra={"runtime_only": True})


class Emitter(DataNode):
    """Returns whatever the case registered in OUTPUTS."""

    def dependencies(self):
        return {}

    def get_asset_list(self):
        return list(UIDS)

    def update(self):
        return OUTPUTS[self.config.case]()


STORAGES = {"plain": (None, "bad_input_plain"), "declared": (CLOSE, "bad_input_declared")}


def emitter(case: str, storage: str = "plain", identifier: str | None = None) -> Emitter:
    records, default_identifier = STORAGES[storage]
    metadata = DataNodeMetaData(identifier=identifier or default_identifier, data_frequency_id="1d")
    return Emitter(EmitterConfig(case=case, records=records, node_metadata=metadata))


# -- frames: day-3 rows, valid unless a case breaks them ------------------------------------------------
def rows(n: int = 3, **overrides: Any) -> dict[str, Any]:
    data = {"time_index": [day(n)] * len(UIDS), "unique_identifier": list(UIDS), "close": [1.0, 2.0]}
    return {**data, **overrides}


def polars(n: int = 3, schema: dict | None = None, **overrides: Any) -> pl.DataFrame:
    return pl.DataFrame(rows(n, **overrides), schema_overrides=schema)


def pandas_frame(times: Any = None, uids: Any = None, names=("time_index", "unique_identifier"), **columns) -> pd.DataFrame:
    times = pd.DatetimeIndex([day(3)] * len(UIDS)) if times is None else times
    index = pd.MultiIndex.from_arrays([times, list(UIDS) if uids is None else uids], names=list(names))
    return pd.DataFrame(columns or {"close": [1.0, 2.0]}, index=index)


def huge_with_one_duplicate() -> pl.DataFrame:
    """500,000 rows, 1,000 assets x 500 minutes, whose very last row repeats the first one.

    Validation holds the frame plus a hash table of its index (~16x the frame here), so this stays
    near 100 MB; the test suite must not allocate more than ~200 MB.
    """
    assets, minutes = 1_000, 500
    times = pl.datetime_range(day(3), day(3) + dt.timedelta(minutes=minutes - 1), "1m", time_zone="UTC", eager=True)
    frame = pl.DataFrame({"time_index": times}).join(
        pl.DataFrame({"unique_identifier": [f"U{i:04d}" for i in range(assets)]}), how="cross"
    ).with_columns(close=pl.lit(1.0))
    return pl.concat([frame, frame.head(1)])


# -- the cases ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Case:
    """``action(ctx)`` must raise ``error`` matching ``match`` — or, with ``envelope=True``, return a
    refused envelope whose ``error.kind`` is ``error`` and whose message matches ``match``."""

    id: str
    action: Callable[[Context], Any]
    error: type[BaseException] | str
    match: str
    envelope: bool = False


def output(case_id: str, make: Callable[[], Any], cause: type[BaseException], match: str, storage: str = "plain") -> Case:
    """A bad ``update()`` output: the run fails in validation with ``cause`` matching ``match``."""
    OUTPUTS[case_id] = make

    def run(ctx: Context) -> Any:
        try:
            return emitter(case_id, storage).run()
        except NodeRunError as error:
            assert error.phase == "validation" and isinstance(error.cause, cause), (error.phase, error.cause)
            raise

    return Case(case_id, run, NodeRunError, rf"(?s)failed during validation: {cause.__name__}: .*{match}")


def call(case_id: str, action: Callable[[Context], Any], error: type[BaseException], match: str) -> Case:
    return Case(case_id, action, error, match)


def query(case_id: str, sql: str, kind: str, match: str, **kwargs: Any) -> Case:
    return Case(case_id, lambda ctx: ctx.table.run_query(sql, **kwargs), kind, match, envelope=True)


OUTPUTS["valid_rows"] = lambda: polars(3)  # a good update(): a case refusing a run's argument must write nothing


class DeclaredConfig(DataNodeConfiguration):  # re-declares records, as the seeds' configurations do
    records: list[RecordDefinition] = CLOSE


class NaiveOffsetConfig(DataNodeConfiguration):
    pass


def both_markers() -> None:
    class Broken(DataNodeConfiguration):
        window: int = Field(1, json_schema_extra={"update_only": True, "runtime_only": True})


class StringDimensions(Emitter):
    IDENTITY_DIMENSIONS: ClassVar = "portfolio"


class NoSuperInit(Emitter):
    def __init__(self, config):  # the seeds' shape without its super().__init__ call
        self.extra = config


class OneStringAssets(Emitter):
    def get_asset_list(self):
        return "AAA"  # scoped the statistics to the assets 'A', 'A', 'A'


class ListDependencies(Emitter):
    def dependencies(self):
        return [emitter("good")]


def cause_of(run: Callable[[], Any]) -> Any:
    """Run, re-raising the cause of a NodeRunError (asserting it failed before writing anything)."""
    try:
        return run()
    except NodeRunError as error:
        assert error.phase == "registration", error
        raise error.cause from error


F, S = FrameValidationError, SchemaMismatchError
CASES: list[Case] = [
    # update() returns something that is not a frame
    output("none", lambda: None, F, "returned None"),
    output("dict", lambda: rows(), F, "returned dict"),
    output("series", lambda: pl.Series("close", [1.0]), F, "polars Series"),
    output("list_of_rows", lambda: [(day(3), "AAA", 1.0)], F, "returned list"),
    # time_index: naive, other time zones, NaT/null, wrong types
    output("naive_time", lambda: polars(time_index=[day(3, None)] * 2), F, "timezone-naive"),
    output("paris_time", lambda: polars(schema={"time_index": pl.Datetime("us", "Europe/Paris")}), F,
           "time zone 'Europe/Paris'"),
    output("pandas_naive", lambda: pandas_frame(pd.DatetimeIndex([day(3, None)] * 2)), F, "timezone-naive"),
    output("pandas_new_york", lambda: pandas_frame(pd.DatetimeIndex([day(3)] * 2).tz_convert("America/New_York")), F,
           "time zone 'America/New_York'"),
    output("pandas_nat", lambda: pandas_frame(pd.DatetimeIndex([day(3), pd.NaT])), F, "1 null/NaT"),
    output("polars_null_time", lambda: polars(time_index=[day(3), None]), F, "1 null/NaT"),
    output("time_as_strings", lambda: polars(time_index=["2024-01-03", "2024-01-03"]), F,
           "'time_index' must be a timezone-aware UTC datetime, got (large_)?string"),
    output("time_as_dates", lambda: polars(time_index=[dt.date(2024, 1, 3)] * 2), F, "got date32"),
    output("sub_microsecond", lambda: pandas_frame(pd.DatetimeIndex([day(3)] * 2).as_unit("ns")
                                                   + pd.to_timedelta([1, 1], "ns")), F, "sub-microsecond"),
    output("no_time_index", lambda: polars().rename({"time_index": "when"}), F, "time_index"),
    # the index: duplicates, missing or bad identities
    output("duplicate_rows", lambda: polars(unique_identifier=["AAA", "AAA"]), F,
           r"duplicate index \(time_index=2024-01-03T00:00:00\+00:00, unique_identifier='AAA'\)"),
    output("no_unique_identifier", lambda: polars().drop("unique_identifier").head(1), S, "index changed"),
    output("null_uid", lambda: polars(unique_identifier=["AAA", None]), F, "'unique_identifier' has 1 null"),
    output("empty_uid", lambda: polars(unique_identifier=["AAA", ""]), F, "must not be empty"),
    output("blank_uid", lambda: polars(unique_identifier=["AAA", "   "]), F, "must not be empty or blank"),
    output("uid_300_chars", lambda: polars(unique_identifier=["AAA", "x" * 300]), F,
           "percent-encodes to 300 bytes"),
    output("uid_dot_dot", lambda: polars(unique_identifier=["AAA", "../etc/passwd"]), F, "path segments"),
    output("uid_absolute_path", lambda: polars(unique_identifier=["AAA", "/etc"]), F, "leading '/'"),
    output("uid_control_char", lambda: polars(unique_identifier=["AAA", "a\nb"]), F, "control characters"),
    output("uid_hive_default", lambda: polars(unique_identifier=["AAA", "__HIVE_DEFAULT_PARTITION__"]), F,
           "value '__HIVE_DEFAULT_PARTITION__': reserved: folder-name readers .*read it back as null"),
    output("uid_null_word", lambda: polars(unique_identifier=["AAA", "null"]), F, "value 'null': reserved: .*read it back as null"),
    output("uid_folder_name_too_long", lambda: polars(unique_identifier=["AAA", "é" * 40]), F,
           "'éééé.*partition folder name 'unique_identifier=%C3%A9.*' would be 258 bytes; the limit is 255"),
    output("uid_integers", lambda: polars(unique_identifier=[1, 2]), F, "'unique_identifier' must hold strings"),
    output("pandas_unnamed_index", lambda: pandas_frame(names=(None, None)), F, "must be named"),
    output("pandas_index_order", lambda: pandas_frame(names=("unique_identifier", "time_index")), F,
           r"first index level must be named 'time_index', got 'unique_identifier': put it first, "
           r"frame.reorder_levels\(\['time_index', 'unique_identifier'\]\)"),
    output("pandas_index_without_time", lambda: pandas_frame(names=("date", "unique_identifier")), F,
           "first index level must be named 'time_index', got 'date'$"),
    # column names
    output("column_64_chars", lambda: polars().rename({"close": "c" * 64}), F, "64 characters; the limit is 63"),
    output("column_uppercase", lambda: polars().rename({"close": "Close"}), F, "'Close' must be lowercase"),
    output("column_reserved", lambda: polars().rename({"close": "select"}), F, "'select' is reserved"),
    output("column_dunder", lambda: polars().rename({"close": "__close"}), F, "'__close' is reserved"),
    output("column_space", lambda: polars().rename({"close": "close price"}), F, "only a-z, 0-9 and '_'"),
    # regression: said only "must be lowercase", and the lowercased 'close price' was refused next
    output("column_uppercase_and_space", lambda: polars().rename({"close": "Close Price"}), F,
           "'Close Price' must start with a letter or '_' and hold only a-z, 0-9 and '_'"),
    output("column_duplicated", lambda: pandas_frame().pipe(lambda f: pd.concat([f, f], axis=1)), F,
           "'close' appears more than once"),
    output("column_not_string", lambda: pandas_frame().rename(columns={"close": 7}), F, "column names must be strings"),
    output("column_is_index_name", lambda: pandas_frame(unique_identifier=["x", "y"]), F,
           "same name as an index level"),
    output("no_value_column", lambda: polars().drop("close"), F, "no value column"),
    # value dtypes
    output("mixed_object_column", lambda: pandas_frame(close=pd.Series([1.0, "high"], dtype=object).to_numpy()), F,
           r"column 'close' holds Python objects of mixed types float, str \(pandas dtype object\): a column holds "
           r"one type; convert its values to one \(frame\['close'\].astype\(str\), pd.to_numeric"),
    output("time_index_as_a_pandas_column", lambda: pandas_frame().reset_index(), F,
           r"got index names \[None\]; 'time_index' is a column: make it the index, frame.set_index\('time_index'\)"),
    output("list_column", lambda: polars(close=[[1.0], [2.0]]), F,
           r"'close' holds values of polars dtype List\(Float64\): unsupported type large_list"),
    output("struct_column", lambda: polars(close=[{"a": 1.0}, {"a": 2.0}]), F, "unsupported type struct"),
    output("naive_datetime_value", lambda: polars().with_columns(seen=pl.lit(dt.datetime(2024, 1, 3))), F,
           "'seen' must be timezone-aware UTC"),
    output("time_after_9999", lambda: polars().with_columns(time_index=pl.Series([0, 253_402_300_800 * 10**6]).cast(
        pl.Datetime("us", "UTC"))), F, "'time_index' value 10000-01-01T00:00:00Z is outside"),
    output("time_before_year_1", lambda: polars().with_columns(time_index=pl.Series([-62_135_596_800 * 10**6 - 1, 0])
                                                               .cast(pl.Datetime("us", "UTC"))), F,
           "'time_index' value 0000-12-31T23:59:59.999999Z is outside"),
    output("uint64_overflow", lambda: pl.DataFrame(rows(close=[2**64 - 1, 1]), schema_overrides={"close": pl.UInt64}),
           F, "beyond int64"),
    # schema drift against the stored table (the schema is a contract)
    output("drift_new_column", lambda: polars().with_columns(volume=pl.lit(1.0)), S, "new 'volume' \\(table: absent"),
    output("drift_missing_column", lambda: polars().with_columns(volume=pl.lit(1.0)).drop("close"), S,
           "missing 'close' \\(table: float64, frame: absent\\)"),
    output("drift_dtype", lambda: polars(close=["1.0", "2.0"]), S, "'close' was float64 and is now string"),
    # declared records (the configuration is the contract)
    output("undeclared_column", lambda: polars().with_columns(volume=pl.lit(1.0)), F,
           r"\['volume'\] are not declared", storage="declared"),
    output("declared_missing", lambda: polars().rename({"close": "price"}), F, r"\['price'\] are not declared",
           storage="declared"),
    output("declared_dtype", lambda: polars(close=[True, False]), F, "'close' is declared float64 but the frame holds bool",
           storage="declared"),
    # a huge frame: validated whole before anything is written
    output("huge_frame_one_duplicate", huge_with_one_duplicate, F, "duplicate index .*unique_identifier='U0000'"),
    # configurations and constructors
    call("config_not_a_model", lambda ctx: Emitter({"case": "good"}), ConfigurationError,
         "needs a DataNodeConfiguration instance, got dict"),
    # regressions: a DataNodeMetaData as config ran and wrote a table with no identifier; test_node="no" was True
    call("config_is_node_metadata", lambda ctx: Emitter(DataNodeMetaData(identifier="bad_input_meta")).run(),
         ConfigurationError, r"Emitter got a DataNodeMetaData as its config: it belongs in the configuration's "
         r"node_metadata field, e.g. MyConfig\(node_metadata=...\), and the node takes MyConfig\(...\)"),
    call("test_node_a_string", lambda ctx: Emitter(EmitterConfig(case="valid_rows"), test_node="no").run(),
         ConfigurationError, "test_node must be True or False, got 'no'"),
    call("platform_storage_table", lambda ctx: Emitter(EmitterConfig(case="good"), storage_table=object()),
         ConfigurationError, r"got storage_table=: .*Main Sequence's platform table: drop it"),
    call("init_without_super", lambda ctx: NoSuperInit(EmitterConfig(case="good")).run(), ConfigurationError,
         r"NoSuperInit.__init__ must call super\(\).__init__\(config, \*\*kwargs\) before the node is used"),
    call("platform_table_import", lambda ctx: exec("from lakenodes import PlatformTimeIndexMetaTable"), ImportError,
         "PlatformTimeIndexMetaTable has no counterpart in lakenodes"),
    call("config_wrong_type", lambda ctx: EmitterConfig(case=["good"]), ValidationError, "case\n.*valid string"),
    call("config_unknown_field", lambda ctx: EmitterConfig(windo=3), ValidationError, "windo\n.*Extra inputs"),
    call("offset_start_naive", lambda ctx: NaiveOffsetConfig(offset_start=dt.datetime(2024, 1, 1)), ValidationError,
         "offset_start must be timezone-aware"),
    call("offset_start_wrong_format", lambda ctx: NaiveOffsetConfig(offset_start="next monday"), ValidationError,
         "offset_start\n.*valid datetime"),
    call("record_unknown_dtype", lambda ctx: RecordDefinition(column_name="x", dtype="complex128"), ValidationError,
         "unknown dtype 'complex128'"),
    call("record_dtype_unknown_type", lambda ctx: RecordDefinition(column_name="x", dtype=complex), ValidationError,
         "unknown dtype 'complex': use one of float64, int64, bool, string, date, datetime"),  # was "valid string"
    call("metadata_bad_frequency", lambda ctx: DataNodeMetaData(data_frequency_id="2d"), ValidationError,
         "unknown data_frequency_id '2d'"),
    call("metadata_blank_identifier", lambda ctx: DataNodeMetaData(identifier="  "), ValidationError,
         "must be 1-255 printable characters"),
    call("both_hash_markers", lambda ctx: both_markers(), ConfigurationError,
         "Broken.window is marked both update_only and runtime_only"),
    call("identity_dimensions_string", lambda ctx: StringDimensions(EmitterConfig()), ConfigurationError,
         "IDENTITY_DIMENSIONS must be a tuple"),
    call("dependencies_not_dict", lambda ctx: ListDependencies(EmitterConfig(case="list_deps")).run(), NodeRunError,
         "failed during dependencies: ConfigurationError: ListDependencies.dependencies\\(\\) must return a dict .*got a list"),
    # run_many given one node, a configuration or a class: was a raw TypeError / AttributeError ('lake')
    call("run_many_one_node", lambda ctx: run_many(ctx.node), ConfigurationError,
         r"run_many takes a list of DataNodes, got an Emitter: run_many\(\[node\]\), or node.run\(\)"),
    call("run_many_a_config", lambda ctx: run_many([EmitterConfig(case="good")]), ConfigurationError,
         r"run_many: nodes\[0\] is an EmitterConfig, not a DataNode \(build the node from it: MyNode\(config\)\)"),
    call("run_many_a_class", lambda ctx: run_many([ctx.node, Emitter]), ConfigurationError,
         r"run_many: nodes\[1\] is the class Emitter \(not an instance of it\), not a DataNode"),
    call("run_many_update_tree_not_bool", lambda ctx: run_many([ctx.node], update_tree="no"), ConfigurationError,
         r"run_many\(update_tree=...\) must be True or False, got 'no'"),
    # regressions: AttributeError 'str' object has no attribute 'submit' (or, for the class, '_shutdown_lock')
    call("run_executor_a_string", lambda ctx: emitter("valid_rows").run(executor="process"), ConfigurationError,
         r"executor must be a concurrent.futures.Executor \(one with submit\(\)\), got a str 'process': e.g. "
         r"ProcessPoolExecutor\(mp_context=multiprocessing.get_context\('spawn'\)\), or None"),
    call("run_many_executor_a_class", lambda ctx: run_many([emitter("valid_rows")], executor=ProcessPoolExecutor),
         ConfigurationError, r"executor must be .*, got the class ProcessPoolExecutor \(not an instance of it\): e.g."),
    call("repoint_namespace_a_number", lambda ctx: repoint_identifier("bad_input_plain", ctx.node, namespace=5),
         ConfigurationError, "hash namespace must be a string, got int 5"),  # was AttributeError 'strip'
    call("identifier_taken", lambda ctx: cause_of(emitter("good", "declared", identifier="bad_input_plain").run),
         IdentifierConflictError, "identifier 'bad_input_plain' is already used by table emitter_"),
    # hash_namespace
    call("hash_namespace_not_string", lambda ctx: hash_namespace(123).__enter__(), TypeError,
         "hash_namespace expects a string, got int"),
    call("node_hash_namespace_not_string", lambda ctx: Emitter(EmitterConfig(), hash_namespace=5), ConfigurationError,
         "hash_namespace must be a string, got int"),
    # lake URIs
    call("lake_uri_empty", lambda ctx: Lake("  "), LakeConfigurationError, "the lake URI is empty"),
    call("lake_uri_scheme", lambda ctx: Lake("gs://bucket/lake"), LakeConfigurationError,
         "unsupported lake URI scheme 'gs'"),
    call("lake_uri_no_bucket", lambda ctx: Lake("s3://"), LakeConfigurationError, "names no bucket"),
    # regressions: str() of anything was taken as a folder (Lake(5) was ./5, Lake(lake) "./Lake('/data/lake')"),
    # a str storage_options raised dict()'s ValueError, and lake= given a path raised AttributeError 'catalog_uri'
    call("lake_uri_a_number", lambda ctx: Lake(5), LakeConfigurationError,
         r"the lake URI must be a folder path \(str or pathlib.Path\) or an s3:// URI, got int 5$"),
    call("lake_of_a_lake", lambda ctx: Lake(ctx.lake), LakeConfigurationError,
         r"got Lake Lake\('.*'\): use that Lake as it is"),
    call("use_lake_a_number", lambda ctx: use_lake(5).__enter__(), LakeConfigurationError, "got int 5"),
    call("lake_storage_options_string", lambda ctx: Lake(ctx.lake.uri, storage_options="AWS_REGION=eu-west-1"),
         LakeConfigurationError, r"storage_options must be a dict of option names to values, .*got str 'AWS_REGION"),
    call("node_lake_a_number", lambda ctx: Emitter(EmitterConfig(), lake=5), LakeConfigurationError,
         "lake= must be a Lake, a folder path or an s3:// URI, got int 5"),
    call("api_node_lake_a_number", lambda ctx: APIDataNode.build_from_identifier("bad_input_plain", lake=5.0),
         LakeConfigurationError, "lake= must be a Lake, a folder path or an s3:// URI, got float 5.0"),
    # reads: dates, columns, range maps, frame kinds
    call("read_date_wrong_format", lambda ctx: ctx.node.get_df_between_dates("31/01/2024"), LakenodesUserError,
         "start_date='31/01/2024' is not an ISO-8601 date"),
    call("read_date_wrong_type", lambda ctx: ctx.node.get_df_between_dates(end_date=20240131), LakenodesUserError,
         "end_date must be a datetime, date or ISO-8601 string, got int"),
    call("read_unknown_column", lambda ctx: ctx.node.get_df_between_dates(columns=["volume"]), LakenodesUserError,
         r"unknown column\(s\) \['volume'\]"),
    call("range_map_bad_operand", lambda ctx: ctx.node.get_ranged_data_per_asset(
        {"AAA": {"start_date": day(1), "start_date_operand": "=>"}}), LakenodesUserError,
        "start_date_operand must be one of"),
    call("range_map_not_mapping", lambda ctx: ctx.node.get_df_between_dates(unique_identifier_range_map=["AAA"]),
         LakenodesUserError, "unique_identifier_range_map must map unique_identifier"),
    call("range_descriptor_a_string", lambda ctx: ctx.node.get_ranged_data_per_asset("AAA"), LakenodesUserError,
         r"range_descriptor must map unique_identifier -> \{'start_date': ..., 'start_date_operand': '>='\}, got str 'AAA'"),
    call("range_map_a_dimension_map", lambda ctx: ctx.node.get_df_between_dates(unique_identifier_range_map=ctx.node
         .update_statistics.get_dimension_range_map_great_or_equal()), LakenodesUserError,
         r"got list \[.*\]; a list of \{'coordinate': ...\} entries is a dimension_range_map"),
    call("range_map_misspelt_key", lambda ctx: ctx.node.get_df_between_dates(
        unique_identifier_range_map={"AAA": {"start": day(1)}}), LakenodesUserError,
        r"unknown range key\(s\) 'start'; a range takes 'start_date', 'start_date_operand', 'end_date'"),
    call("range_map_misspelt_end", lambda ctx: ctx.node.get_ranged_data_per_asset(
        {"AAA": {"start_date": day(1), "end": day(2)}}), LakenodesUserError, r"unknown range key\(s\) 'end'"),
    call("dimension_range_map_misspelt_key", lambda ctx: ctx.node.get_df_between_dates(
        dimension_range_map=[{"coordinate": {"unique_identifier": "AAA"}, "start": day(1)}]), LakenodesUserError,
        r"unknown range key\(s\) 'start'; a range takes 'coordinate', 'start_date'"),
    call("dimension_range_map_no_coordinate", lambda ctx: ctx.node.get_df_between_dates(
        dimension_range_map=[{"start_date": day(1)}]), LakenodesUserError, "needs a 'coordinate' mapping"),
    call("frame_kind", lambda ctx: ctx.node.get_df_between_dates(frame="excel"), LakenodesUserError,
         "frame must be 'polars', 'pandas' or 'arrow', got 'excel'"),
    # regressions: a near miss (capitalised, the module or class) or a LazyFrame did not say what to pass
    call("frame_kind_capitalised", lambda ctx: ctx.node.get_df_between_dates(frame="Polars"), LakenodesUserError,
         "frame must be 'polars', 'pandas' or 'arrow', got 'Polars': pass the name 'polars'$"),
    call("frame_kind_a_class", lambda ctx: ctx.node.get_ranged_data_per_asset({"AAA": {}}, frame=pd.DataFrame),
         LakenodesUserError, r"got <class 'pandas(\.core\.frame)?\.DataFrame'>: pass the name 'pandas'$"),
    call("frame_kind_lazy", lambda ctx: ctx.node.get_df_between_dates(frame=pl.LazyFrame), LakenodesUserError,
         r"a polars LazyFrame of a read comes from node.scan\(...\), which takes the same filters"),
    call("last_observation_frame_kind", lambda ctx: ctx.node.get_last_observation(frame="csv"), LakenodesUserError,
         "frame must be 'polars', 'pandas' or 'arrow', got 'csv'"),
    call("dimension_map_unknown_dimension", lambda ctx: ctx.node.compute_update_statistics()
         .get_dimension_range_map_great_or_equal(identity_dimensions=["portfolio"]), LakenodesUserError,
         r"unknown identity dimension\(s\) \['portfolio'\]"),
    # catalog lookups
    call("lookup_unknown_field", lambda ctx: TimeIndexMetaTable.filter(colour="red"), LakenodesUserError,
         "unknown field 'colour'"),
    call("lookup_unknown_operator", lambda ctx: TimeIndexMetaTable.filter(identifier__regex="bad_.*"),
         LakenodesUserError, "unknown lookup 'identifier__regex'"),
    call("lookup_in_not_list", lambda ctx: TimeIndexMetaTable.filter(identifier__in="bad_input_plain"),
         LakenodesUserError, "__in expects a list"),
    # regressions: a list matched nothing silently (no label is a list); a number raised "'in <string>' requires string"
    call("lookup_contains_a_list", lambda ctx: TimeIndexMetaTable.filter(labels__contains=["daily"]), LakenodesUserError,
         r"labels__contains takes one value, got list \['daily'\]: e.g. labels__contains='daily' \(for any of several "
         r"exact values: labels__in=\[...\]\)"),
    call("asset_lookup_startswith_a_tuple", lambda ctx: Asset.filter(unique_identifier__startswith=("A", "B")),
         LakenodesUserError, r"unique_identifier__startswith takes one value, got tuple"),
    call("lookup_missing_table", lambda ctx: TimeIndexMetaTable.get(identifier="no_such_table"), NotFoundError,
         "no table matches"),
    call("lookup_ambiguous", lambda ctx: TimeIndexMetaTable.get(identifier__startswith="bad_input_"),
         LakenodesUserError, "2 tables match"),
    # regression: "the table was deleted" of a table that never existed
    call("api_node_unknown_storage_hash", lambda ctx: APIDataNode("no_such_hash").update_statistics, NotFoundError,
         r"storage_hash='no_such_hash'\): no such table in .* \(never written there, or deleted\)"),
    call("api_node_unknown_identifier", lambda ctx: APIDataNode.build_from_identifier("no_such_table"), NotFoundError,
         "no table is published as 'no_such_table'"),
    # regressions: APIDataNode(identifier) said only "no such table"; a number or None raised a raw TypeError or
    # AttributeError ('encode') from deep in the catalog
    call("api_node_given_an_identifier", lambda ctx: APIDataNode("bad_input_plain").get_df_between_dates(),
         NotFoundError, r"'bad_input_plain' is an identifier: APIDataNode.build_from_identifier\('bad_input_plain'\)"),
    call("api_node_storage_hash_number", lambda ctx: APIDataNode(5), ConfigurationError,
         r"APIDataNode takes a storage hash string, got int 5 \(to open a table by its identifier: "
         r"APIDataNode.build_from_identifier"),
    call("api_node_identifier_none", lambda ctx: APIDataNode.build_from_identifier(None), ConfigurationError,
         "an identifier is a string, got NoneType None"),
    call("api_node_namespace_number", lambda ctx: APIDataNode.build_from_identifier("bad_input_plain", namespace=1),
         ConfigurationError, "namespace must be a string, got int 1"),
    # regressions: a query that is no string was called empty
    call("search_query_a_list", lambda ctx: TimeIndexMetaTable.column_search(["close", "price"]), LakenodesUserError,
         r"the search query must be a string, got list \['close', 'price'\]: join the words, ' '.join\(words\)"),
    call("search_query_a_number", lambda ctx: TimeIndexMetaTable.description_search(5), LakenodesUserError,
         "the search query must be a string, got int 5$"),
    call("search_limit_a_string", lambda ctx: TimeIndexMetaTable.description_search("close", limit="5"),
         LakenodesUserError, "limit must be an integer >= 0, got '5'"),  # was TypeError: '<' not supported
    call("search_query_vector_text", lambda ctx: TimeIndexMetaTable.description_search("close", q_embedding="0.1,0.2"),
         LakenodesUserError, r"q_embedding must be \d+ finite numbers .*, got str '0.1,0.2'"),  # was numpy's ValueError
    # SQL: refused in the envelope, never executed
    query("sql_drop", "DROP TABLE bad_input_plain", "forbidden_statement", "DROP"),
    query("sql_insert", "INSERT INTO bad_input_plain VALUES (1)", "forbidden_statement", "INSERT"),
    query("sql_copy", "COPY bad_input_plain TO '/tmp/stolen.csv'", "forbidden_statement", "COPY"),
    query("sql_two_statements", "SELECT 1; SELECT 2", "forbidden_statement", "multiple statements are not allowed"),
    query("sql_unknown_syntax", "SELEC * FROM bad_input_plain", "forbidden_statement", "SELECT or WITH"),
    query("sql_other_table", "SELECT * FROM bad_input_declared", "forbidden_table",
          "unknown or forbidden table 'bad_input_declared'; only .*bad_input_plain may be queried"),
    query("sql_max_rows", "SELECT * FROM bad_input_plain", "invalid_argument", "max_rows", max_rows=-1),
    # tail deletes
    call("delete_date_wrong_format", lambda ctx: ctx.table.delete_after_date("next tuesday"), LakenodesUserError,
         "after_date='next tuesday' is not an ISO-8601"),
    call("delete_date_missing", lambda ctx: ctx.table.delete_after_date(None), LakenodesUserError,
         "after_date is required"),
    call("delete_dry_run_a_string", lambda ctx: ctx.table.delete_after_date("2024-01-02", dry_run="no"),
         LakenodesUserError, "dry_run must be True or False, got 'no'"),  # was a dry run: nothing deleted, no error
    call("delete_unknown_dimension", lambda ctx: ctx.table.delete_after_date(
        "2024-01-01", dimension_filters={"portfolio": ["p1"]}), LakenodesUserError,
        "'portfolio' is not an identity dimension"),
    call("delete_empty_filter", lambda ctx: ctx.table.delete_after_date(
        "2024-01-01", dimension_filters={"unique_identifier": []}), LakenodesUserError, "non-empty"),
    call("delete_unknown_coordinate", lambda ctx: ctx.table.delete_after_date(
        "2024-01-01", index_coordinates=[{"portfolio": "p1"}]), LakenodesUserError,
        "'portfolio' is not an identity dimension"),
    # regressions: [] deleted every identity's rows, an empty generator raised RecursionError
    call("delete_no_coordinates", lambda ctx: ctx.table.delete_after_date("2024-01-01", index_coordinates=[]),
         LakenodesUserError, "index_coordinates is empty: give the coordinates to delete, or None"),
    call("delete_no_coordinates_generated", lambda ctx: ctx.table.delete_after_date(
        "2024-01-01", index_coordinates=(c for c in [])), LakenodesUserError, "index_coordinates is empty"),
    call("delete_coordinate_not_mapping", lambda ctx: ctx.table.delete_after_date(
        "2024-01-01", index_coordinates=[("AAA",)]), LakenodesUserError,
        r"each index coordinate maps dimensions to values, e.g. \{'unique_identifier': 'AAPL'\}, got \('AAA',\)"),
    # regressions: an identity value that is no string raised Arrow's "Expected bytes, got a 'int' object" or
    # "Function 'equal' has no kernel", and a tail delete's dimension_filters given a list AttributeError 'items'
    call("read_filter_int_identity", lambda ctx: ctx.node.get_df_between_dates(
        dimension_filters={"unique_identifier": [1]}), LakenodesUserError,
        r"dimension_filters\['unique_identifier'\] holds int 1: it selects an identity dimension, whose values are "
        r"strings, e.g. '1'"),
    call("scan_filter_int_identity", lambda ctx: ctx.node.scan(dimension_filters={"unique_identifier": [1]}),
         LakenodesUserError, r"dimension_filters\['unique_identifier'\] holds int 1"),
    call("read_coordinate_list_value", lambda ctx: ctx.node.get_ranged_data_per_asset(
        [{"coordinate": {"unique_identifier": ["AAA"]}, "start_date": day(1)}]), LakenodesUserError,
        r"dimension_range_map coordinate 'unique_identifier' holds list \['AAA'\]: it selects an identity dimension"),
    call("delete_filter_int_identity", lambda ctx: ctx.table.delete_after_date(
        "2024-01-01", dimension_filters={"unique_identifier": [1, "AAA"]}), LakenodesUserError,
        r"dimension_filters\['unique_identifier'\] holds int 1"),
    call("delete_filters_a_list", lambda ctx: ctx.table.delete_after_date("2024-01-01", dimension_filters=["AAA"]),
         LakenodesUserError, r"dimension_filters must map a dimension to a list of values, .*got list \['AAA'\]"),
    call("delete_coordinate_int_value", lambda ctx: ctx.table.delete_after_date(
        "2024-01-01", index_coordinates=[{"unique_identifier": "AAA"}, {"unique_identifier": 2}]), LakenodesUserError,
        "index coordinate 'unique_identifier' holds int 2"),
    # regressions: history(limit="5") raised TypeError ('>' not supported), -1 OverflowError, 1.5 was read as 1
    call("history_limit_a_string", lambda ctx: ctx.table.history(limit="5"), LakenodesUserError,
         "limit must be a whole number >= 0 or None, got str '5'"),
    call("history_limit_negative", lambda ctx: ctx.table.history(-1), LakenodesUserError, "got int -1"),
    call("history_limit_a_fraction", lambda ctx: ctx.table.history(1.5), LakenodesUserError, "got float 1.5"),
    # labels: a label that is no string made every later read of the catalog fail
    call("label_none", lambda ctx: ctx.table.add_label(None), LakenodesUserError,
         "label must be a string, got NoneType None"),
    call("label_number", lambda ctx: ctx.table.add_label(123), LakenodesUserError, "label must be a string, got int 123"),
    call("label_blank", lambda ctx: ctx.table.add_label("  "), LakenodesUserError, "label must not be empty"),
    # assets
    call("asset_empty_uid", lambda ctx: Asset(unique_identifier=""), ValidationError, "must not be empty"),
    call("asset_uid_300_chars", lambda ctx: Asset(unique_identifier="x" * 300), ValidationError, "limit is 255"),
    call("asset_spec_without_uid", lambda ctx: Asset.batch_get_or_register_custom_assets(
        [{"unique_identifier": "CCC"}, {"snapshot": {"ticker": "X"}}]), LakenodesUserError,
        "needs a 'unique_identifier'"),
    # regressions: None raised "'NoneType' object is not iterable"; a bare identifier did not say the shape wanted
    call("asset_batch_none", lambda ctx: Asset.batch_get_or_register_custom_assets(None), LakenodesUserError,
         "assets must be a list of asset dicts, got a NoneType None"),
    call("asset_batch_identifiers", lambda ctx: Asset.batch_get_or_register_custom_assets(["CCC"]), LakenodesUserError,
         r"each asset needs a 'unique_identifier', got 'CCC': \{'unique_identifier': 'CCC'\}"),
    call("asset_snapshot_not_mapping", lambda ctx: Asset.batch_get_or_register_custom_assets(
        [{"unique_identifier": "CCC", "snapshot": "ticker=C"}]), LakenodesUserError, "'snapshot' must be a mapping"),
    call("asset_path_uid", lambda ctx: Asset.batch_get_or_register_custom_assets(
        [{"unique_identifier": "CCC"}, {"unique_identifier": "a/../b"}]), ValidationError, "path segments"),
    call("asset_hive_default_uid", lambda ctx: Asset(unique_identifier="__HIVE_DEFAULT_PARTITION__"), ValidationError,
         "'__HIVE_DEFAULT_PARTITION__': reserved: .*read it back as null"),
    call("asset_uid_folder_name_too_long", lambda ctx: Asset.batch_get_or_register_custom_assets(
        [{"unique_identifier": "CCC"}, {"unique_identifier": "x" * 238}]), ValidationError, "256 bytes; the limit is 255"),
    call("asset_lookup_unknown_field", lambda ctx: Asset.filter(colour="red"), LakenodesUserError,
         "unknown field 'colour'"),
    call("asset_missing", lambda ctx: Asset.get(ticker="NOPE"), NotFoundError, "no asset matches"),
    # regressions found by trying what users write
    output("pandas_uid_as_a_column", lambda: pd.DataFrame(
        {"unique_identifier": UIDS, "close": [1.0, 2.0]}, index=pd.DatetimeIndex([day(3)] * 2, name="time_index")),
        F, r"'unique_identifier' is a column of the pandas frame.*set_index\('unique_identifier', append=True\)"),
    output("polars_int128", lambda: polars().with_columns(big=pl.Series([1, 2], dtype=pl.Int128)), F,
           r"column 'big' holds values of polars dtype Int128: Arrow has no 128-bit ints: cast it to Int64"),
    call("namespace_only_whitespace", lambda ctx: emitter_in_namespace("  "), ConfigurationError,
         "hash namespace '  ' is only whitespace"),
    call("namespace_block_only_whitespace", lambda ctx: enter_namespace("\t"), ConfigurationError,
         "only whitespace"),
    call("record_uppercase_name", lambda ctx: RecordDefinition(column_name="Close"), ValidationError,
         "column name 'Close' must be lowercase"),
    call("record_reserved_name", lambda ctx: RecordDefinition(column_name="__x"), ValidationError, "is reserved"),
    call("records_one_record", lambda ctx: EmitterConfig(records=RecordDefinition(column_name="close")), ValidationError,
         r"records must be a list of RecordDefinition, got one RecordDefinition: wrap it, records=\[RecordDefinition"),
    call("records_one_record_subclass_default", lambda ctx: DeclaredConfig(records=CLOSE[0]), ValidationError,
         "records must be a list of RecordDefinition, got one RecordDefinition"),
    call("records_empty", lambda ctx: EmitterConfig(records=[]), ValidationError, "records is empty"),
    call("records_declared_twice", lambda ctx: EmitterConfig(records=[*CLOSE, RecordDefinition(
        column_name="close", dtype="int64")]), ValidationError, r"column\(s\) \['close'\] more than once"),
    call("records_declare_an_index", lambda ctx: EmitterConfig(records=[*CLOSE, RecordDefinition(
        column_name="time_index", dtype="datetime64[ns, UTC]")]), ValidationError, "index column"),
    call("read_from_nat", lambda ctx: ctx.node.get_df_between_dates(start_date=pd.NaT), LakenodesUserError,
         "start_date is NaT"),
    # regressions: a date or ISO text as_of was refused without saying what to give instead
    call("as_of_a_date", lambda ctx: ctx.node.get_df_between_dates(as_of=dt.date(2024, 1, 2)), LakenodesUserError,
         r"as_of must be a table version \(int\) or a datetime, not datetime.date\(2024, 1, 2\): give a moment, e.g. "
         r"datetime\(2024, 1, 2, 23, 59, 59, tzinfo=timezone.utc\) for the table at the end of that day"),
    call("as_of_iso_text", lambda ctx: ctx.node.get_last_observation(as_of="2024-01-02"), LakenodesUserError,
         r"not '2024-01-02': a version is an int \(as_of=3\), a moment a datetime, e.g. datetime.fromisoformat"),
    call("read_flag_not_bool", lambda ctx: ctx.node.get_df_between_dates(great_or_equal="no"), LakenodesUserError,
         "great_or_equal must be True or False, got 'no'"),  # "no" is truthy: it read as True
    call("scan_flag_not_bool", lambda ctx: ctx.node.scan(less_or_equal=0), LakenodesUserError,
         "less_or_equal must be True or False, got 0"),
    # a list of assets given as one string, one Asset or a table: read as its characters, fields or column names
    call("asset_list_one_string", lambda ctx: OneStringAssets(EmitterConfig()).update_statistics, LakenodesUserError,
         r"OneStringAssets.get_asset_list\(\) must be a list, got 'AAA'; wrap a single value as \['AAA'\]"),
    call("asset_list_one_string_run", lambda ctx: OneStringAssets(EmitterConfig()).run(), NodeRunError,
         r"OneStringAssets.get_asset_list\(\) must be a list, got 'AAA'"),
    call("read_one_asset_as_list", lambda ctx: ctx.node.get_df_between_dates(
        unique_identifier_list=Asset(unique_identifier="AAA")), LakenodesUserError,
        r"unique_identifier_list must be a list, got Asset\(unique_identifier='AAA'.*; wrap a single value as \[Asset"),
    call("read_uids_from_a_frame", lambda ctx: ctx.node.get_df_between_dates(  # read no rows: its column names
        unique_identifier_list=pd.DataFrame({"unique_identifier": UIDS})), LakenodesUserError,
        r"unique_identifier_list must be a list, got a DataFrame \(a table\): pass one of its columns"),
    call("last_observation_one_asset", lambda ctx: ctx.node.get_last_observation(Asset(unique_identifier="AAA")),
         LakenodesUserError, "asset_list must be a list, got Asset"),
    # regressions: a number of days raised "unsupported operand type(s) for -: 'datetime.datetime' and 'int'"
    call("statistics_delta_a_number", lambda ctx: ctx.node.update_statistics.get_update_range_map_great_or_equal(
        extra_time_delta=5), LakenodesUserError,
        r"extra_time_delta must be a datetime.timedelta, got int 5: e.g. datetime.timedelta\(days=5\)"),
    call("statistics_dimension_delta_a_string", lambda ctx: ctx.node.update_statistics
         .get_dimension_range_map_great_or_equal(extra_time_delta="1d"), LakenodesUserError,
         "extra_time_delta must be a datetime.timedelta, got str '1d'"),
    call("statistics_uid_none", lambda ctx: ctx.node.update_statistics.get_last_update_index_2d(None),
         LakenodesUserError, "uid: expected a unique_identifier string or an Asset, got NoneType None"),
    call("statistics_asset_int", lambda ctx: ctx.node.update_statistics.get_asset_earliest_multiindex_update(7),
         LakenodesUserError, "asset: expected a unique_identifier string or an Asset, got int 7"),
]


def emitter_in_namespace(namespace: str) -> Emitter:
    return Emitter(EmitterConfig(case="good"), hash_namespace=namespace)


def enter_namespace(namespace: str) -> None:
    with hash_namespace(namespace):
        pass


# -- the shared assertion ----------------------------------------------------------------------------
@dataclasses.dataclass
class Context:
    lake: Lake
    node: Emitter
    table: TimeIndexMetaTable


def snapshot(ctx: Context) -> dict[str, Any]:
    """Version and content of every table a rejected input must not touch (fresh readers, no caches)."""
    uris = {name: ctx.lake.table_uri(emitter("good", name).storage_hash) for name in STORAGES}
    uris |= {f"_catalog/{name}": ctx.lake.catalog_uri(name) for name in ("tables", "assets")}
    state = {}
    for name, uri in uris.items():
        try:
            table = DeltaTable(uri)
        except TableNotFoundError:
            state[name] = None
            continue
        data = pa.table(table.to_pyarrow_table())
        state[name] = (table.version(), data.sort_by([(c, "ascending") for c in data.column_names]).to_pylist())
    return state


def assert_rejected(case: Case, ctx: Context) -> None:
    before = snapshot(ctx)
    if case.envelope:
        result = case.action(ctx)
        assert result["ok"] is False and result["results"] == [], result
        assert result["error"]["kind"] == case.error, result["error"]
        assert re.search(case.match, result["error"]["message"]), result["error"]
    else:
        with pytest.raises(case.error, match=case.match):
            case.action(ctx)
    assert snapshot(ctx) == before, f"{case.id} changed stored data"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> Context:
    lake = Lake(tmp_path_factory.mktemp("bad_input") / "lake")
    OUTPUTS["good"] = lambda: pl.concat([polars(1), polars(2)])
    with use_lake(lake):
        for storage in STORAGES:
            emitter("good", storage).run()
        Asset.batch_get_or_register_custom_assets([{"unique_identifier": uid} for uid in UIDS])
        yield Context(lake, emitter("good"), TimeIndexMetaTable.get(identifier="bad_input_plain"))


def test_cases_are_many_and_distinct():
    assert len(CASES) >= 40 and len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_rejected_clearly_and_changes_nothing(case: Case, ctx: Context):
    with use_lake(ctx.lake):
        assert_rejected(case, ctx)


def test_good_input_still_works_after_every_rejection(ctx: Context):
    """The control: the same nodes, given a valid frame, write (so the cases failed for their defect)."""
    OUTPUTS["day_3"] = lambda: polars(3)
    with use_lake(ctx.lake):
        _, written = emitter("day_3").run()
        assert written.height == 2
        assert emitter("good").get_df_between_dates().height == 6


def test_large_frame_is_written_whole(tmp_path):
    """A large valid frame (200,000 rows, 20 assets) is one commit, read back exactly."""
    assets, days = 20, 10_000
    OUTPUTS["large"] = lambda: pl.DataFrame({
        "time_index": pl.datetime_range(day(1), day(1) + dt.timedelta(days=days - 1), "1d", time_zone="UTC",
                                        eager=True).to_list() * assets,
        "unique_identifier": [f"L{a:02d}" for a in range(assets) for _ in range(days)],
        "close": pl.arange(0, assets * days, eager=True).cast(pl.Float64),
    })
    with use_lake(Lake(tmp_path / "lake")):
        node = emitter("large", identifier="large_frame")
        _, written = node.run()
        stored = pl.from_arrow(DeltaTable(node.table_uri).to_pyarrow_table())
    assert written.height == stored.height == assets * days
    assert stored.select(pl.struct("time_index", "unique_identifier").n_unique()).item() == assets * days
    assert stored["close"].sum() == sum(range(assets * days))


def test_an_empty_identity_list_reads_no_rows(ctx: Context):
    """Regression: ``unique_identifier_list=[]`` raised ArrowTypeError (string vs null)."""
    with use_lake(ctx.lake):
        assert ctx.node.get_df_between_dates(unique_identifier_list=[]).height == 0
        assert ctx.node.scan(unique_identifier_list=[]).collect().height == 0
        assert ctx.node.get_df_between_dates(dimension_filters={"unique_identifier": []}).height == 0
        assert ctx.node.get_df_between_dates(unique_identifier_list=["AAA"]).height > 0


def test_a_column_asked_for_twice_is_read_once(ctx: Context):
    """Regression: ``columns=["close", "close"]`` raised polars' DuplicateError."""
    with use_lake(ctx.lake):
        once = ctx.node.get_df_between_dates(columns=["close"])
        assert ctx.node.get_df_between_dates(columns=["close", "close"]).equals(once) and "close" in once.columns


def test_an_identity_list_and_a_unique_identifier_filter_both_apply(ctx: Context):
    """Regression: the list replaced the filter, so ``unique_identifier_list=["AAA"]`` with
    ``dimension_filters={"unique_identifier": ["BBB"]}`` returned every AAA row instead of none."""
    with use_lake(ctx.lake):
        stored = set(ctx.node.get_df_between_dates()["unique_identifier"].unique().to_list())
        assert len(stored) >= 2
        first, second = sorted(stored)[:2]
        for read in (ctx.node.get_df_between_dates, lambda **kw: ctx.node.scan(**kw).collect()):
            assert read(unique_identifier_list=[first], dimension_filters={"unique_identifier": [second]}).height == 0
            both = read(unique_identifier_list=[first, second], dimension_filters={"unique_identifier": [second]})
            assert set(both["unique_identifier"].to_list()) == {second}


def test_a_lake_given_as_a_path_is_that_lake(ctx: Context):
    """Regression: ``lake=`` given a folder (str or pathlib.Path), as ``use_lake`` takes it, raised
    AttributeError ('str' object has no attribute 'catalog_uri'), or was kept as a string by a node."""
    folder = pathlib.Path(ctx.lake.uri)
    for given in (folder, str(folder)):
        assert Emitter(EmitterConfig(), lake=given).lake == ctx.lake
        api = APIDataNode.build_from_identifier("bad_input_plain", lake=given)
        assert api.lake == ctx.lake and api.get_df_between_dates().equals(ctx.node.get_df_between_dates())
        assert [table.identifier for table in TimeIndexMetaTable.filter(lake=given, identifier="bad_input_plain")] == [
            "bad_input_plain"]
        assert sorted(asset.unique_identifier for asset in Asset.filter(lake=given)) == UIDS
        assert Lake(given) == ctx.lake


def test_a_contains_lookup_given_a_number_looks_for_its_text(tmp_path):
    """Regression: ``unique_identifier__contains=1`` raised TypeError ("'in <string>' requires string as left operand")."""
    with use_lake(Lake(tmp_path / "lake")):
        Asset.batch_get_or_register_custom_assets([{"unique_identifier": "A1"}, {"unique_identifier": "B2"}])
        assert [asset.unique_identifier for asset in Asset.filter(unique_identifier__contains=1)] == ["A1"]
        assert TimeIndexMetaTable.filter(identifier__contains=5) == []


def test_a_record_dtype_given_as_a_type_is_its_name():
    """Regression: ``dtype=float`` (or ``numpy.int64``, ``polars.Float64``) was pydantic's "Input should be a
    valid string"; a type now stands for its name, so the declaration (and the table's hash) is the same."""
    import numpy as np

    assert [RecordDefinition(column_name="x", dtype=t).dtype for t in (float, np.int64, pl.Float64, pl.String, bool)] == [
        "float64", "int64", "float64", "string", "bool"]
    typed = Emitter(EmitterConfig(records=[RecordDefinition(column_name="close", dtype=float)]))
    assert typed.storage_hash == Emitter(EmitterConfig(records=CLOSE)).storage_hash
