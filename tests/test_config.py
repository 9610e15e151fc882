"""Configuration models (DESIGN §3 "Configuration and hashing"): validation of what a node is built from."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import polars as pl
import pytest
from pydantic import BaseModel, Field, ValidationError, create_model
from typing_extensions import TypeAliasType

from examples.tutorial_nodes import PriceSimulConfig, RandomDataNodeConfig, VolatilityConfig
from lakenodes import (
    ConfigurationError,
    DataFrequency,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    RecordDefinition,
)
from lakenodes.core.config import field_markers

UTC = dt.UTC
BOTH = {"update_only": True, "runtime_only": True}


def validation_locations(error: ValidationError) -> list[tuple]:
    return [tuple(item["loc"]) for item in error.errors()]


# -- unknown fields and wrong types name the field ----------------------------------------------
@pytest.mark.parametrize("build, location", [
    pytest.param(lambda: RandomDataNodeConfig(mean=0.0, meen=1.0), ("meen",), id="extra-field"),
    pytest.param(lambda: DataNodeConfiguration(window=3), ("window",), id="extra-on-base"),
    pytest.param(lambda: RecordDefinition(column_name="x", unit="usd"), ("unit",), id="extra-on-record"),
    pytest.param(lambda: DataNodeMetaData(identifier="x", owner="me"), ("owner",), id="extra-on-metadata"),
    pytest.param(lambda: RandomDataNodeConfig(mean="abc"), ("mean",), id="wrong-float"),
    pytest.param(lambda: RandomDataNodeConfig(), ("mean",), id="missing-required"),
    pytest.param(lambda: RandomDataNodeConfig(mean=0.0, std={"center": "wide", "skew": True}), ("std", "center"),
                 id="nested-wrong-type"),
    pytest.param(lambda: RandomDataNodeConfig(mean=0.0, std={"center": -1.0, "skew": True}),
                 ("std", "center"), id="nested-constraint"),
    pytest.param(lambda: RandomDataNodeConfig(mean=0.0, records=[{"column_name": 1}]), ("records", 0, "column_name"),
                 id="record-wrong-type"),
    pytest.param(lambda: RandomDataNodeConfig(mean=0.0, records=[{"column_name": "x", "dtype": "complex"}]),
                 ("records", 0, "dtype"), id="record-unknown-dtype"),
    pytest.param(lambda: PriceSimulConfig(asset_list=[{"ticker": "NVDA"}]), ("asset_list", 0, "unique_identifier"),
                 id="asset-missing-uid"),
    pytest.param(lambda: PriceSimulConfig(asset_list=[{"unique_identifier": ""}]), ("asset_list", 0, "unique_identifier"),
                 id="asset-empty-uid"),
    pytest.param(lambda: PriceSimulConfig(asset_list="NVDA"), ("asset_list",), id="asset-list-not-a-list"),
    pytest.param(lambda: DataNodeConfiguration(offset_start="yesterday"), ("offset_start",), id="offset-not-a-date"),
])
def test_invalid_configuration_raises_validation_error_naming_the_field(build, location):
    with pytest.raises(ValidationError) as caught:
        build()
    assert location in validation_locations(caught.value)
    assert str(location[-1]) in str(caught.value)


def test_nested_models_are_built_and_validated_from_plain_data():
    config = RandomDataNodeConfig(mean=0.5, std={"center": 0.25, "skew": False})
    assert config.std == VolatilityConfig(center=0.25, skew=False)
    with pytest.raises(ValidationError, match="center"):
        VolatilityConfig(center=0, skew=True)


# -- offset_start --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [dt.datetime(2024, 1, 1), "2024-01-01T00:00:00", "2024-01-01"])
def test_naive_offset_start_is_rejected(value):
    with pytest.raises(ValidationError) as caught:
        DataNodeConfiguration(offset_start=value)
    assert ("offset_start",) in validation_locations(caught.value)
    assert "timezone-aware" in str(caught.value)


def test_naive_offset_start_is_rejected_in_subclasses_that_redeclare_it():
    with pytest.raises(ValidationError, match="offset_start"):
        PriceSimulConfig(asset_list=[], offset_start=dt.datetime(2024, 1, 1))


@pytest.mark.parametrize("value", [
    dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=9))),
    "2024-01-01T00:00:00Z",
    "2024-01-01T01:00:00+01:00",
])
def test_aware_offset_start_is_stored_in_utc(value):
    offset_start = DataNodeConfiguration(offset_start=value).offset_start
    assert offset_start == dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert offset_start.utcoffset() == dt.timedelta(0)


# -- metadata and frequency ---------------------------------------------------------------------
@pytest.mark.parametrize("frequency", list(DataFrequency))
def test_frequency_accepts_enum_members_and_plain_strings(frequency):
    from_enum = DataNodeMetaData(data_frequency_id=frequency)
    from_string = DataNodeMetaData(data_frequency_id=frequency.value)
    assert from_enum.data_frequency_id == from_string.data_frequency_id == frequency.value
    assert str(frequency) == frequency.value
    assert DataFrequency(frequency.value) is frequency


def test_seed_frequencies_are_members():
    assert DataFrequency.one_d.value == "1d"
    assert {"1m", "5m", "1d", "1w", "1mo", "1q", "1y"} <= {member.value for member in DataFrequency}


@pytest.mark.parametrize("frequency", ["2d", "daily", "1D ", "", 1])
def test_unknown_frequency_is_rejected(frequency):
    with pytest.raises(ValidationError) as caught:
        DataNodeMetaData(data_frequency_id=frequency)
    assert ("data_frequency_id",) in validation_locations(caught.value)
    assert "1d" in str(caught.value)  # the message lists the valid values


@pytest.mark.parametrize("identifier", ["", "   ", "x" * 256, "tab\there"])
def test_bad_identifier_is_rejected(identifier):
    with pytest.raises(ValidationError) as caught:
        DataNodeMetaData(identifier=identifier)
    assert ("identifier",) in validation_locations(caught.value)


def test_tutorial_metadata_keeps_the_frequency_value():
    metadata = RandomDataNodeConfig(mean=0.0).node_metadata
    assert metadata.data_frequency_id == "1d"
    assert metadata.identifier.startswith("example_random_number_")


# -- records ------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling, canonical", [
    ("float64", "float64"), ("float", "float64"), ("double", "float64"), ("int", "int64"), ("int32", "int64"),
    ("bool", "bool"), ("str", "string"), ("object", "string"), ("date", "date"),
    ("datetime64[ns, UTC]", "datetime"), ("timestamp", "datetime"),
])
def test_record_dtype_spellings_are_canonical(spelling, canonical):
    assert RecordDefinition(column_name="x", dtype=spelling).dtype == canonical


def test_record_definition_is_frozen():
    record = RecordDefinition(column_name="close")
    with pytest.raises(ValidationError):
        record.column_name = "open"  # type: ignore[misc]


# -- field markers at class definition ------------------------------------------------------------
class Inner(BaseModel):
    value: int = Field(1, json_schema_extra=BOTH)


@pytest.mark.parametrize("annotation", [Inner, list[Inner], dict[str, Inner] | None, tuple[Inner, ...]],
                         ids=["model", "list", "dict", "tuple"])
def test_both_markers_inside_a_nested_model_fail_at_class_definition(annotation):
    with pytest.raises(ValueError, match=r"Inner\.value is marked both update_only and runtime_only"):
        create_model("Broken", __base__=DataNodeConfiguration, nested=(annotation, None))


def test_both_markers_behind_a_forward_reference_fail_when_it_resolves():
    class Later(DataNodeConfiguration):
        leg: LaterLeg | None = None  # noqa: F821 - defined below on purpose

    class LaterLeg(BaseModel):
        value: int = Field(1, json_schema_extra=BOTH)

    with pytest.raises(ValueError, match=r"LaterLeg\.value"):
        Later.model_rebuild()


def test_marker_error_is_a_configuration_error_naming_the_field():
    with pytest.raises(ConfigurationError, match=r"Broken\.window"):
        class Broken(DataNodeConfiguration):
            window: int = Field(1, json_schema_extra=BOTH)


def test_a_node_needs_a_configuration_instance():
    class Plain(DataNode):
        def dependencies(self) -> dict:
            return {}

    with pytest.raises(ConfigurationError, match="DataNodeConfiguration"):
        Plain({"mean": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="hash_namespace"):
        Plain(DataNodeConfiguration(), hash_namespace=3)  # type: ignore[arg-type]


# -- markers are inherited: a re-declared field keeps its base class's marker --------------------
UPDATE_ONLY = {"update_only": True}
RUNTIME_ONLY = {"runtime_only": True}


def test_a_plain_redeclaration_keeps_the_base_class_markers():
    class Redeclared(DataNodeConfiguration):
        offset_start: dt.datetime | None = dt.datetime(2020, 1, 1, tzinfo=UTC)
        node_metadata: DataNodeMetaData = DataNodeMetaData(identifier="fx_rates_daily")

    class Deeper(Redeclared):
        node_metadata: DataNodeMetaData = Field(default_factory=DataNodeMetaData, title="metadata")

    for model in (Redeclared, Deeper):
        assert field_markers(model, "offset_start") == (True, False)
        assert field_markers(model, "node_metadata") == (False, True)
        assert field_markers(model, "records") == (False, False)


def test_redeclaring_with_the_same_marker_is_fine():
    class Same(DataNodeConfiguration):
        node_metadata: DataNodeMetaData | None = Field(None, json_schema_extra=RUNTIME_ONLY)

    assert field_markers(Same, "node_metadata") == (False, True)


@pytest.mark.parametrize("field, annotation, marker, base_marker", [
    pytest.param("node_metadata", DataNodeMetaData | None, UPDATE_ONLY, "runtime_only", id="runtime-to-update"),
    pytest.param("offset_start", dt.datetime | None, RUNTIME_ONLY, "update_only", id="update-to-runtime"),
])
def test_a_conflicting_redeclaration_fails_at_class_creation(field, annotation, marker, base_marker):
    with pytest.raises(ConfigurationError, match=rf"Conflicting\.{field} .*{base_marker} by DataNodeConfiguration"):
        create_model("Conflicting", __base__=DataNodeConfiguration,
                     **{field: (annotation, Field(None, json_schema_extra=marker))})


def test_a_conflict_with_a_grandparent_or_a_sibling_base_fails_too():
    class Middle(DataNodeConfiguration):
        node_metadata: DataNodeMetaData | None = None

    with pytest.raises(ConfigurationError, match=r"Grandchild\.node_metadata"):
        class Grandchild(Middle):
            node_metadata: DataNodeMetaData | None = Field(None, json_schema_extra=UPDATE_ONLY)

    class Batched(DataNodeConfiguration):
        batch: int = Field(1, json_schema_extra=UPDATE_ONLY)

    class Described(DataNodeConfiguration):
        batch: int = Field(1, json_schema_extra=RUNTIME_ONLY)

    with pytest.raises(ConfigurationError, match=r"Both\.batch is marked update_only by Batched and runtime_only by Described"):
        class Both(Batched, Described):
            pass


def test_a_conflict_inside_a_nested_model_fails_when_a_configuration_uses_it():
    class Leg(BaseModel):
        shard: int = Field(0, json_schema_extra=UPDATE_ONLY)

    class NoisyLeg(Leg):
        shard: int = Field(0, json_schema_extra=RUNTIME_ONLY)

    with pytest.raises(ConfigurationError, match=r"NoisyLeg\.shard is marked update_only by Leg"):
        create_model("UsesLeg", __base__=DataNodeConfiguration, leg=(NoisyLeg, NoisyLeg()))


# -- records given as the class's default are checked as records given explicitly ------------------
@pytest.mark.parametrize("declared, problem", [
    pytest.param([RecordDefinition(column_name="close"), RecordDefinition(column_name="close", dtype="int64")],
                 r"records declares column\(s\) \['close'\] more than once", id="declared-twice"),
    pytest.param([RecordDefinition(column_name="time_index", dtype="datetime"), RecordDefinition(column_name="close")],
                 r"records declares index column\(s\) \['time_index'\]", id="time-index"),
    pytest.param([RecordDefinition(column_name="unique_identifier", dtype="string")],
                 r"records declares index column\(s\) \['unique_identifier'\]", id="unique-identifier"),
    pytest.param([], "records is empty", id="empty"),
])
def test_records_declared_as_the_class_default_are_checked_as_given_ones(declared, problem):
    """Regression: the seeds declare records as the configuration class's default
    (``records: list[RecordDefinition] = Field(default_factory=lambda: [...])``), which pydantic does not
    validate: a column declared twice kept one of its dtypes silently (the other was never enforced), and
    an index column declared as a record made every run fail with "declared record column(s)
    ['time_index'] are missing from the frame" and every read before the first run a bare KeyError."""
    class AsDefault(DataNodeConfiguration):
        records: list[RecordDefinition] = declared

    class AsFactory(DataNodeConfiguration):
        records: list[RecordDefinition] = Field(default_factory=lambda: list(declared))

    for model in (AsDefault, AsFactory):
        with pytest.raises(ValidationError, match=problem):
            model()


# -- offset_start given as the class's default is checked as a given one -----------------------------
def test_a_naive_offset_start_default_is_refused_when_the_configuration_is_built(local_lake):
    """Seed 000 redeclares ``offset_start`` with a default (``Field(default=datetime(2024, 1, 1,
    tzinfo=pytz.utc), json_schema_extra={"update_only": True})``); pydantic validates no default, so one
    written without its ``tzinfo`` built the configuration (``offset_start`` naive) and the run then
    failed in its statistics phase blaming ``<Node>.OFFSET_START``, a class attribute the user never
    set. The configuration now refuses it as it refuses the same value given explicitly."""
    from examples.tutorial_nodes import SimulatedPrices

    class NaiveDefault(PriceSimulConfig):
        offset_start: dt.datetime | None = Field(default=dt.datetime(2024, 1, 1),
                                                 json_schema_extra={"update_only": True})

    class NaiveFactory(PriceSimulConfig):
        offset_start: dt.datetime | None = Field(default_factory=lambda: dt.datetime(2024, 1, 1))

    for model in (NaiveDefault, NaiveFactory):
        with pytest.raises(ValidationError, match="offset_start must be timezone-aware"):
            SimulatedPrices(config=model(asset_list=[]))
        assert model(asset_list=[], offset_start="2024-01-01T00:00:00Z").offset_start == dt.datetime(2024, 1, 1,
                                                                                                       tzinfo=UTC)

    class ZonedDefault(PriceSimulConfig):
        offset_start: dt.datetime | None = dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=9)))

    offset_start = ZonedDefault(asset_list=[]).offset_start
    assert offset_start == dt.datetime(2024, 1, 1, tzinfo=UTC) and offset_start.utcoffset() == dt.timedelta(0)


# -- a marker inside a type alias (`type Batch = Annotated[..., Field(json_schema_extra=...)]`) -----------
def _alias(kind: str, marker: dict):
    annotated = Annotated[list[str], Field(json_schema_extra=marker)]
    if kind == "TypeAliasType":
        return TypeAliasType("Batch", annotated)
    namespace = {"Annotated": Annotated, "Field": Field, "marker": marker}
    exec("type Batch = Annotated[list[str], Field(json_schema_extra=marker)]", namespace)  # Python 3.12's spelling
    return namespace["Batch"]


ALIAS_KINDS = [pytest.param("TypeAliasType", id="typing_extensions"),
               pytest.param("type", id="type-statement", marks=pytest.mark.skipif(
                   sys.version_info < (3, 12), reason="the `type` statement is Python 3.12+"))]


@pytest.mark.parametrize("kind", ALIAS_KINDS)
def test_a_marker_inside_a_type_alias_marks_the_field(kind, local_lake):
    """Regression: pydantic keeps a ``Field(...)`` given inside a type alias off the field, so the
    ``update_only`` marker of ``type Batch = Annotated[list[str], Field(json_schema_extra={"update_only": True})]``
    was silently lost: each batch's updater hashed its assets into the storage hash and wrote a table of its
    own, where the seeds' two updaters share one."""
    class BatchConfig(DataNodeConfiguration):
        batch: _alias(kind, UPDATE_ONLY)  # type: ignore[valid-type]
        note: _alias(kind, RUNTIME_ONLY) = []  # type: ignore[valid-type]

    class Batched(DataNode):
        def dependencies(self):
            return {}

        def update(self):
            day = dt.datetime(2026, 1, 2, tzinfo=UTC)
            return pl.DataFrame({"time_index": [day] * len(self.config.batch), "unique_identifier": self.config.batch,
                                 "close": [1.0] * len(self.config.batch)})

    assert field_markers(BatchConfig, "batch") == (True, False)
    assert field_markers(BatchConfig, "note") == (False, True)
    first, second = Batched(BatchConfig(batch=["A"])), Batched(BatchConfig(batch=["B"], note=["x"]))
    assert first.update_hash != second.update_hash and first.storage_hash == second.storage_hash
    assert Batched(BatchConfig(batch=["B"])).update_hash == second.update_hash
    for node in (first, second):
        node.run()
    stored = Batched(BatchConfig(batch=["A"])).get_df_between_dates()
    assert sorted(stored["unique_identifier"].to_list()) == ["A", "B"]
