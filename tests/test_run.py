"""run(): dependency order, each node once, cycles, update_tree, return value, failures, logs."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakenodes import (
    ConfigurationError,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    DependencyCycleError,
    FrameValidationError,
    IdentifierConflictError,
    Lake,
    NodeRunError,
    RecordDefinition,
    RowsStoredError,
    TimeIndexMetaTable,
    repoint_identifier,
)
from lakenodes.catalog.catalog import resolve_identifier, table_record
from lakenodes.runtime import run as run_module

UTC = dt.UTC
COMPUTED = object()  # Step.output default: compute the next day's row


def day(n: int) -> dt.datetime:
    return dt.datetime(2024, 1, n, tzinfo=UTC)


class StepConfig(DataNodeConfiguration):
    name: str


class Step(DataNode):
    """Appends its name to a shared journal, then writes one row per run (day 1, day 2, ...)
    until ``days`` rows are stored; ``failure`` (when set) is raised by update()."""

    def __init__(self, name: str, journal: list[str], deps: dict | None = None, days: int = 1,
                 metadata: DataNodeMetaData | None = None, records: list[RecordDefinition] | None = None, **kwargs):
        self.journal = journal
        self.deps = dict(deps or {})
        self.days = days
        self.failure: Exception | None = None
        self.output = COMPUTED
        super().__init__(StepConfig(name=name, node_metadata=metadata, records=records), **kwargs)

    def dependencies(self):
        return self.deps

    def update(self):
        self.journal.append(self.config.name)
        if self.failure is not None:
            raise self.failure
        if self.output is not COMPUTED:
            return self.output
        last = self.update_statistics.max_time_index_value
        done = 0 if last is None else last.day
        if done >= self.days:
            return pl.DataFrame()
        return pl.DataFrame({"time_index": [day(done + 1)], "value": [float(done + 1)]})


def delta(node: DataNode) -> DeltaTable | None:
    try:
        return DeltaTable(node.table_uri, storage_options=node.lake.storage_options or None)
    except Exception:  # noqa: BLE001 - not created
        return None


def snapshot(node: DataNode) -> tuple[int, list[tuple]]:
    table = delta(node)
    data = pl.from_arrow(pa.table(table.to_pyarrow_table())).sort(pl.all())
    return table.version(), data.rows()


# -- order -----------------------------------------------------------------------------------------
def test_dependencies_run_first_in_topological_order(any_lake: Lake) -> None:
    journal: list[str] = []
    a = Step("a", journal)
    b = Step("b", journal, {"a": a})
    c = Step("c", journal, {"a": a})
    d = Step("d", journal, {"c": c, "b": b})
    error, written = d.run()

    assert error is False
    assert sorted(journal) == ["a", "b", "c", "d"]
    assert journal[0] == "a" and journal[-1] == "d"
    assert written.rows() == [(day(1), 1.0)]  # what the root persisted
    for node in (a, b, c, d):
        assert node.get_df_between_dates().height == 1


def test_diamond_runs_the_shared_node_once(local_lake: Lake) -> None:
    journal: list[str] = []
    left = Step("left", journal, {"base": Step("base", journal)})
    right = Step("right", journal, {"base": Step("base", journal)})  # another instance, same update_hash
    assert left.deps["base"] is not right.deps["base"]
    top = Step("top", journal, {"left": left, "right": right})
    top.run()

    assert journal.count("base") == 1
    assert journal[0] == "base"
    assert sorted(journal[1:3]) == ["left", "right"] and journal[3] == "top"


def test_a_cycle_is_refused_naming_it_and_nothing_runs(local_lake: Lake) -> None:
    journal: list[str] = []
    first = Step("first", journal)
    second = Step("second", journal, {"first": first})
    first.deps["second"] = second
    root = Step("root", journal, {"first": first})

    with pytest.raises(DependencyCycleError) as caught:
        root.run()
    message = str(caught.value)
    assert f"{first.update_hash} -> {second.update_hash} -> {first.update_hash}" in message
    assert root.update_hash not in message
    assert journal == []
    assert delta(root) is None and delta(first) is None

    itself = Step("itself", journal)
    itself.deps["me"] = itself
    with pytest.raises(DependencyCycleError, match=f"{itself.update_hash} -> {itself.update_hash}"):
        itself.run()


def test_update_tree_false_runs_only_the_node(any_lake: Lake) -> None:
    journal: list[str] = []
    dependency = Step("dependency", journal)
    node = Step("alone", journal, {"dependency": dependency})
    error, written = node.run(update_tree=False)

    assert (error, journal) == (False, ["alone"])
    assert written.height == 1
    assert delta(dependency) is None


def test_each_node_runs_once_per_run_call(local_lake: Lake) -> None:
    journal: list[str] = []
    base = Step("base", journal, days=3)
    top = Step("top", journal, {"base": base}, days=3)
    for _ in range(3):
        top.run()
    assert journal == ["base", "top"] * 3
    assert base.get_df_between_dates()["value"].to_list() == [1.0, 2.0, 3.0]


# -- return value ------------------------------------------------------------------------------------
def test_run_returns_what_it_persisted_and_an_empty_frame_when_nothing_is_new(any_lake: Lake) -> None:
    node = Step("pandas_out", [])
    node.output = pd.DataFrame(
        {"close": [1.5, 2.5]},
        index=pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex([day(2), day(1)], tz="UTC"), ["BRK/B", "A B"]], names=["time_index", "unique_identifier"]
        ),
    )
    error, written = node.run()
    assert error is False
    assert isinstance(written, pl.DataFrame)
    assert written.columns == ["time_index", "unique_identifier", "close"]
    assert sorted(written.rows()) == sorted(node.get_df_between_dates().rows())

    node.output = pl.DataFrame()
    error, written = node.run()
    assert error is False
    assert isinstance(written, pl.DataFrame) and written.is_empty()


@pytest.mark.parametrize("rows", [3, run_module.BACKGROUND_CONVERSION_ROWS], ids=["small", "converted while written"])
def test_run_returns_every_row_it_persisted_however_large(local_lake: Lake, rows: int) -> None:
    node = Step("many", [])
    node.output = pl.DataFrame({"time_index": pl.datetime_range(day(1), day(1) + dt.timedelta(minutes=rows - 1), "1m",
                                                                eager=True, time_zone="UTC"),
                                "value": pl.int_range(rows, eager=True).cast(pl.Float64)})
    error, written = node.run()
    assert error is False and written.height == rows
    assert written.sort("time_index").equals(node.get_df_between_dates().sort("time_index"))


# -- failures ------------------------------------------------------------------------------------------
def test_update_failure_names_node_phase_and_cause_and_leaves_the_table(any_lake: Lake) -> None:
    node = Step("fragile", [], days=5)
    node.run()
    before = snapshot(node)
    node.failure = ValueError("upstream feed is down")

    with pytest.raises(NodeRunError) as caught:
        node.run()
    error = caught.value
    assert (error.phase, error.cause) == ("update", node.failure)
    assert error.node == repr(node)
    message = str(error)
    assert node.update_hash in message and "Step" in message
    assert "during update" in message and "ValueError: upstream feed is down" in message
    assert snapshot(node) == before


@pytest.mark.parametrize(
    ("output", "phase", "cause"),
    [
        (None, "validation", FrameValidationError),
        (pl.DataFrame({"time_index": [day(2)], "value": [2.0], "extra": [1.0]}), "validation", FrameValidationError),
    ],
    ids=["none", "schema-change"],
)
def test_rejected_output_leaves_the_table(local_lake: Lake, output, phase, cause) -> None:
    node = Step("strict", [])
    node.run()
    before = snapshot(node)
    node.output = output
    with pytest.raises(NodeRunError) as caught:
        node.run()
    assert caught.value.phase == phase and isinstance(caught.value.cause, cause)
    assert snapshot(node) == before


def test_a_failing_dependency_stops_the_tree(local_lake: Lake) -> None:
    journal: list[str] = []
    broken = Step("broken", journal)
    broken.failure = RuntimeError("no data")
    top = Step("top", journal, {"broken": broken})
    with pytest.raises(NodeRunError) as caught:
        top.run()
    assert caught.value.node == repr(broken)
    assert journal == ["broken"]
    assert delta(top) is None


def test_a_failing_dependencies_method_is_a_node_run_error(local_lake: Lake) -> None:
    class Unwired(Step):
        def dependencies(self):
            raise KeyError("prices_config")

    node = Unwired("unwired", [])
    with pytest.raises(NodeRunError) as caught:
        node.run()
    assert caught.value.phase == "dependencies"
    assert "KeyError" in str(caught.value) and "prices_config" in str(caught.value)


# -- namespaces and logs -----------------------------------------------------------------------------
def test_dependencies_built_during_the_run_inherit_the_namespace(local_lake: Lake) -> None:
    built: list[DataNode] = []

    class Lazy(Step):
        def dependencies(self):
            if not built:
                built.append(Step("lazy_child", self.journal))
            return {"child": built[0]}

    node = Lazy("lazy_parent", [], hash_namespace="ns_run")
    node.run()
    assert built[0].hash_namespace == "ns_run"
    assert built[0].storage_hash != Step("lazy_child", []).storage_hash
    assert built[0].get_df_between_dates().height == 1


def test_run_logs_window_assets_and_rows(local_lake: Lake, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lakenodes")
    node = Step("logged", [])
    node.output = pl.DataFrame({
        "time_index": [day(1), day(2), day(1), day(2), day(2)],
        "unique_identifier": ["A", "A", "B", "B", "C"],
        "value": [1.0, 2.0, 3.0, 4.0, 5.0],
    })
    node.run()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("lakenodes.node.")]
    wrote = [m for m in messages if m.startswith(f"{node.logger.tag} wrote")]
    assert len(wrote) == 1
    assert "wrote 5 rows" in wrote[0]
    assert "for 3 unique_identifier" in wrote[0]
    assert "2024-01-01 00:00:00+00:00 .. 2024-01-02 00:00:00+00:00" in wrote[0]

    caplog.clear()
    node.output = pl.DataFrame()
    node.run()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("lakenodes.node.")]
    assert any("no new rows" in m and "2024-01-02" in m for m in messages)


def test_node_run_error_message_has_no_terminal_colour_codes():
    from lakenodes.errors import NodeRunError

    error = NodeRunError("Node(x)", "write", RuntimeError("\x1b[31mGeneric error\x1b[0m: boom"))
    assert str(error) == "Node(x) failed during write: RuntimeError: Generic error: boom"


def test_an_empty_asset_list_warns_naming_the_cause(local_lake: Lake, caplog: pytest.LogCaptureFixture) -> None:
    class NoAssets(Step):
        def get_asset_list(self):
            return []

    caplog.set_level(logging.INFO, logger="lakenodes")
    node = NoAssets("no_assets", [])
    node.output = pl.DataFrame()
    node.run()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "lakenodes.node.NoAssets"]
    assert len(warnings) == 1
    assert "get_asset_list() returned no assets" in warnings[0].getMessage()
    assert "register assets first" in warnings[0].getMessage()

    caplog.clear()
    Step("all_assets", []).run()  # None means "all": nothing to warn about
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- identifiers and published metadata -------------------------------------------------------------------
def test_a_repointed_identifier_lets_its_previous_owner_keep_writing(
    any_lake: Lake, caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: after repoint_identifier the previous owner's next run failed with IdentifierConflictError."""
    old = Step("vendor_a", [], days=3, metadata=DataNodeMetaData(identifier="quotes_daily"))
    old.run()
    new = Step("vendor_b", [], days=3)
    new.run()
    repoint_identifier("quotes_daily", new.storage_hash)

    caplog.set_level(logging.WARNING, logger="lakenodes")
    error, written = old.run()
    assert error is False and written.height == 1  # it keeps writing its own table
    assert old.get_df_between_dates().height == 2
    [warning] = [r.getMessage() for r in caplog.records if r.name == "lakenodes.node.Step"]
    assert "'quotes_daily' now points to table " + new.storage_hash in warning
    assert old.storage_hash in warning and "no longer published under that name" in warning
    assert resolve_identifier(any_lake, "quotes_daily") == new.storage_hash
    assert TimeIndexMetaTable.get(identifier="quotes_daily").storage_hash == new.storage_hash  # one owner
    assert table_record(any_lake, old.storage_hash).identifier is None

    # never having held it is still a conflict, and writes nothing
    intruder = Step("vendor_c", [], metadata=DataNodeMetaData(identifier="quotes_daily"))
    with pytest.raises(NodeRunError) as caught:
        intruder.run()
    assert caught.value.phase == "registration" and isinstance(caught.value.cause, IdentifierConflictError)
    assert delta(intruder) is None

    # repointed back, the old owner holds its name again, without a warning
    repoint_identifier("quotes_daily", old.storage_hash)
    caplog.clear()
    old.run()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert TimeIndexMetaTable.get(identifier="quotes_daily").storage_hash == old.storage_hash


class Described(Step):
    """Publishes metadata computed in code rather than taken from its configuration."""

    def get_table_metadata(self) -> DataNodeMetaData:
        return DataNodeMetaData(identifier=f"described_{self.config.name}", description="computed in code",
                                labels=["computed"], data_frequency_id="1d")

    def get_column_metadata(self) -> list[RecordDefinition]:
        return [RecordDefinition(column_name="value", dtype="float64", label="Computed value",
                                 description="declared by get_column_metadata")]


def test_table_and_column_metadata_default_to_the_configuration(local_lake: Lake) -> None:
    metadata = DataNodeMetaData(identifier="from_config", description="configured")
    records = [RecordDefinition(column_name="value", label="Value")]
    node = Step("plain", [], metadata=metadata, records=records)
    assert node.get_table_metadata() == metadata
    assert node.get_column_metadata() == records
    bare = Step("bare", [])
    assert bare.get_table_metadata() is None and bare.get_column_metadata() is None


def test_overridden_metadata_is_what_the_catalog_records_and_the_run_claims(local_lake: Lake) -> None:
    node = Described("x", [], metadata=DataNodeMetaData(identifier="config_identifier", description="ignored"))
    node.run()

    table = TimeIndexMetaTable.get(identifier="described_x")
    assert table.storage_hash == node.storage_hash
    assert (table.description, table.labels, table.data_frequency_id) == ("computed in code", ["computed"], "1d")
    value = next(column for column in table.columns if column.column_name == "value")
    assert (value.label, value.description) == ("Computed value", "declared by get_column_metadata")
    assert resolve_identifier(local_lake, "described_x") == node.storage_hash
    assert resolve_identifier(local_lake, "config_identifier") is None  # the configuration's is not claimed



class PlatformShapedMetadata(Step):
    """Metadata overrides as ported from the platform's SDK: a plain dict for the table, dicts
    or ``msc.ColumnMetaData(...)`` objects for the columns."""

    table_metadata: object = None
    column_metadata: object = None

    def get_table_metadata(self):
        return self.table_metadata

    def get_column_metadata(self):
        if self.column_metadata == "msc.ColumnMetaData":
            import lakenodes as msc
            return [msc.ColumnMetaData(column_name="value", dtype="float64", label="Value")]
        return self.column_metadata


@pytest.mark.parametrize("table_metadata, column_metadata, problem", [
    pytest.param(None, [{"column_name": "value", "dtype": "float64", "label": "Value"}],
                 r"PlatformShapedMetadata.get_column_metadata\(\) must return a list of RecordDefinition",
                 id="columns-as-dicts"),
    pytest.param(None, "msc.ColumnMetaData", r"ColumnMetaData has no counterpart in lakenodes: use RecordDefinition",
                 id="platform-column-metadata"),
    pytest.param(None, RecordDefinition(column_name="value"), r"must return a list of RecordDefinition .*, got RecordDefinition",
                 id="one-record-not-a-list"),
    pytest.param({"identifier": "shaped", "description": "d"}, None,
                 r"PlatformShapedMetadata.get_table_metadata\(\) must return a DataNodeMetaData", id="table-as-dict"),
])
def test_metadata_overrides_of_the_wrong_shape_are_refused_before_any_row_is_written(
        local_lake: Lake, table_metadata, column_metadata, problem) -> None:
    """The catalog phase read ``record.column_name`` of what ``get_column_metadata()`` returned, after the
    commit: a port returning dicts (or the platform's ``msc.ColumnMetaData``) stored its rows and then failed
    every run with "RowsStoredError ... AttributeError: 'dict' object has no attribute 'column_name'", the
    table never recorded in the catalog. Both overrides are now checked in the registration phase, naming
    the method and what to return, and nothing is written."""
    node = PlatformShapedMetadata("shaped", [])
    node.table_metadata, node.column_metadata = table_metadata, column_metadata
    with pytest.raises(NodeRunError, match=problem) as caught:
        node.run()
    assert caught.value.phase == "registration" and not isinstance(caught.value, RowsStoredError)
    assert delta(node) is None
    assert TimeIndexMetaTable.filter() == []


# -- run() arguments and logging ------------------------------------------------------------------------------
@pytest.mark.parametrize("arguments", [{"debug_mode": "yes"}, {"debug_mode": 1}, {"force_update": None},
                                       {"update_tree": "no"}])
def test_run_flags_must_be_booleans(local_lake: Lake, arguments: dict) -> None:
    journal: list[str] = []
    with pytest.raises(ConfigurationError, match=f"run\\({next(iter(arguments))}=...\\) must be True or False"):
        Step("flags", journal).run(**arguments)
    assert journal == []


def test_force_update_changes_nothing(local_lake: Lake) -> None:
    assert "force_update" in DataNode.run.__doc__ and "changes nothing" in DataNode.run.__doc__
    journal: list[str] = []
    node = Step("forced", journal, days=2)
    results = [node.run(force_update=flag)[1].height for flag in (True, False, True)]
    assert results == [1, 1, 0] and journal == ["forced"] * 3



def test_hooks_hear_table_ready_once_the_table_exists_and_before_its_rows_commit(any_lake: Lake) -> None:
    """table_ready comes once the table exists and before the run's rows commit, once per run (the
    catalog registers the table meanwhile); a first write creates the table holding its rows, in
    one commit: no such moment, no call, and the catalog records the table once it landed."""
    from lakenodes.runtime.hooks import RunHooks
    from lakenodes.runtime.recorder import default_hooks
    from lakenodes.runtime.run import run_single

    class TableWatcher(RunHooks):
        def __init__(self) -> None:
            self.seen: list[tuple[int, int]] = []

        def table_ready(self, node: DataNode) -> None:
            table = DeltaTable(node.store.uri, storage_options=any_lake.storage_options or None)
            self.seen.append((table.version(), len(table.file_uris())))

    node = Step("ready", [], days=2)
    watcher = TableWatcher()
    run_single(node, (*default_hooks(), watcher))
    assert watcher.seen == [] and node.store.table().version() == 0  # created holding its rows
    assert table_record(any_lake, node.storage_hash).columns  # recorded once it existed, with its columns
    run_single(node, (*default_hooks(), watcher))
    assert watcher.seen == [(0, 1)]  # the next run: before its own commit (version 1)
    assert node.store.table().version() == 1


def test_a_frame_read_from_a_dependency_is_accepted_as_update_output(any_lake: Lake) -> None:
    """Regression: reads hand out a polars subclass (pandas-name hints), which validation refused as
    "update() returned _PolarsWithHint"; a pass-through node returns it as it is, or a slice of it."""
    source = Step("source", [], days=3)

    class Mirror(DataNode):
        def dependencies(self):
            return {"source": source}

        def update(self):
            read = source.get_df_between_dates()
            assert type(read).__name__ != "DataFrame"  # the subclass this regression is about
            return read.tail(2)

    source.run()
    source.run()  # two of its three days stored; the mirror's run stores the third first
    mirror = Mirror(StepConfig(name="mirror"))
    mirror.run()
    assert mirror.get_df_between_dates()["time_index"].to_list() == [day(2), day(3)]
