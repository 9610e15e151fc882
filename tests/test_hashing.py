"""Hashing (DESIGN §3 "Configuration and hashing"): what changes ``storage_hash`` / ``update_hash``.

``storage_hash`` = class name + config minus update_only/runtime_only fields + namespace;
``update_hash`` = class name + config minus runtime_only fields + namespace. The class name is the
class's own ``HASH_NAME`` or its ``__qualname__``, never its module (tests/test_identity.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest
from pydantic import BaseModel, Field

from examples.tutorial_nodes import (
    DailyRandomNumber,
    PriceSimulConfig,
    RandomDataNodeConfig,
    SimulatedPrices,
    VolatilityConfig,
)
from lakenodes import (
    APIDataNode,
    Asset,
    ConfigurationError,
    DataFrequency,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    RecordDefinition,
    hash_namespace,
    run_many,
)
from lakenodes.core.hashing import canonical_value, current_hash_namespace

UTC = dt.UTC
HASH_FORMAT = re.compile(r"^[a-z0-9_]+_[0-9a-f]{32}$")
UPDATE_ONLY = {"update_only": True}
RUNTIME_ONLY = {"runtime_only": True}


class Leg(BaseModel):
    """A nested (non-DataNodeConfiguration) model with both kinds of marker."""

    weight: float = 1.0
    shard: int = Field(0, json_schema_extra=UPDATE_ONLY)
    note: str = Field("", json_schema_extra=RUNTIME_ONLY)


class MarkedConfig(DataNodeConfiguration):
    window: int = 20
    batch: int = Field(100, json_schema_extra=UPDATE_ONLY)
    comment: str = Field("", json_schema_extra=RUNTIME_ONLY)
    leg: Leg = Leg()
    legs: list[Leg] = Field(default_factory=lambda: [Leg(), Leg(weight=2.0)])
    legs_by_name: dict[str, Leg] = Field(default_factory=dict)
    as_of: dt.datetime | None = None
    asset: Asset | None = None
    assets: list[Asset] = Field(default_factory=list)
    LIMIT: ClassVar[int] = 5


class Node(DataNode):
    def dependencies(self) -> dict:
        return {}

    def update(self) -> Any:
        return pl.DataFrame()


class OtherNode(Node):
    pass


def hashes(config: BaseModel, node_class: type[DataNode] = Node, **kwargs: Any) -> tuple[str, str]:
    node = node_class(config, **kwargs)
    return node.storage_hash, node.update_hash


def assert_effect(a: BaseModel, b: BaseModel, *, storage_changes: bool, update_changes: bool,
                  node_class: type[DataNode] = Node) -> None:
    (storage_a, update_a), (storage_b, update_b) = hashes(a, node_class), hashes(b, node_class)
    assert (storage_a != storage_b) == storage_changes, "storage_hash"
    assert (update_a != update_b) == update_changes, "update_hash"


# -- field markers ------------------------------------------------------------------------------
@pytest.mark.parametrize("change, storage_changes, update_changes", [
    pytest.param({"window": 21}, True, True, id="plain-field"),
    pytest.param({"batch": 7}, False, True, id="update-only"),
    pytest.param({"comment": "hello"}, False, False, id="runtime-only"),
    pytest.param({"offset_start": dt.datetime(2020, 1, 1, tzinfo=UTC)}, False, True, id="offset-start"),
    pytest.param({"node_metadata": DataNodeMetaData(identifier="x", description="d", labels=["a"])}, False, False,
                 id="node-metadata"),
    pytest.param({"leg": Leg(weight=3.0)}, True, True, id="nested-plain"),
    pytest.param({"leg": Leg(shard=3)}, False, True, id="nested-update-only"),
    pytest.param({"leg": Leg(note="n")}, False, False, id="nested-runtime-only"),
    pytest.param({"legs": [Leg(shard=1), Leg(weight=2.0, shard=2)]}, False, True, id="list-update-only"),
    pytest.param({"legs": [Leg(note="a"), Leg(weight=2.0, note="b")]}, False, False, id="list-runtime-only"),
    pytest.param({"legs": [Leg(weight=2.0), Leg()]}, True, True, id="list-order-of-models-matters"),
    pytest.param({"legs_by_name": {"a": Leg(note="n")}}, True, True, id="dict-of-models-plain"),
    pytest.param({"records": [RecordDefinition(column_name="close")]}, True, True, id="records"),
])
def test_field_markers_decide_which_hash_changes(change, storage_changes, update_changes):
    assert_effect(MarkedConfig(), MarkedConfig(**change), storage_changes=storage_changes,
                  update_changes=update_changes)


def test_markers_inside_a_dict_of_models():
    base = MarkedConfig(legs_by_name={"a": Leg()})
    assert_effect(base, MarkedConfig(legs_by_name={"a": Leg(note="n")}), storage_changes=False, update_changes=False)
    assert_effect(base, MarkedConfig(legs_by_name={"a": Leg(shard=9)}), storage_changes=False, update_changes=True)


def test_record_label_and_description_are_runtime_only():
    plain = MarkedConfig(records=[RecordDefinition(column_name="close", dtype="float64")])
    described = MarkedConfig(records=[RecordDefinition(column_name="close", dtype="float64", label="Close",
                                                       description="Daily close")])
    retyped = MarkedConfig(records=[RecordDefinition(column_name="close", dtype="int64")])
    assert_effect(plain, described, storage_changes=False, update_changes=False)
    assert_effect(plain, retyped, storage_changes=True, update_changes=True)


def test_equivalent_dtype_spellings_hash_alike():
    spelled = [MarkedConfig(records=[RecordDefinition(column_name="close", dtype=dtype)])
               for dtype in ("float64", "float", "double", "FLOAT64")]
    assert len({hashes(config) for config in spelled}) == 1


def test_classvar_is_never_hashed(monkeypatch):
    before = hashes(MarkedConfig())
    monkeypatch.setattr(MarkedConfig, "LIMIT", 99)
    assert "LIMIT" not in MarkedConfig.model_fields
    assert hashes(MarkedConfig()) == before

    class Stricter(MarkedConfig):
        LIMIT: ClassVar[int] = 1

    assert hashes(Stricter()) == before


# -- values -------------------------------------------------------------------------------------
def test_assets_hash_by_unique_identifier_only():
    plain = MarkedConfig(asset=Asset(unique_identifier="AAPL"))
    enriched = MarkedConfig(asset=Asset(unique_identifier="AAPL", ticker="AAPL", name="Apple", figi="BBG000B9XRY4"))
    other = MarkedConfig(asset=Asset(unique_identifier="MSFT"))
    assert hashes(plain) == hashes(enriched)
    assert_effect(plain, other, storage_changes=True, update_changes=True)


def test_asset_lists_are_order_insensitive_sorted_identifiers():
    a, b, c = (Asset(unique_identifier=uid, ticker=uid.lower()) for uid in ("AAPL", "MSFT", "BRK/B"))
    assert canonical_value(MarkedConfig(assets=[b, c, a]), "storage")["assets"] == ["AAPL", "BRK/B", "MSFT"]
    assert hashes(MarkedConfig(assets=[a, b, c])) == hashes(MarkedConfig(assets=[c, a, b]))
    assert hashes(MarkedConfig(assets=[a, b])) == hashes(MarkedConfig(assets=[{"unique_identifier": "MSFT"},
                                                                              {"unique_identifier": "AAPL"}]))
    assert hashes(MarkedConfig(assets=[a, b])) != hashes(MarkedConfig(assets=[a, c]))
    assert hashes(MarkedConfig(assets=[a])) != hashes(MarkedConfig(assets=[]))


def test_datetimes_hash_as_the_same_instant_in_any_time_zone():
    utc = dt.datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    tokyo = utc.astimezone(dt.timezone(dt.timedelta(hours=9)))
    new_york = utc.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert hashes(MarkedConfig(as_of=utc)) == hashes(MarkedConfig(as_of=tokyo)) == hashes(MarkedConfig(as_of=new_york))
    assert hashes(MarkedConfig(as_of=utc)) != hashes(MarkedConfig(as_of=utc + dt.timedelta(microseconds=1)))
    assert hashes(MarkedConfig(offset_start=utc)) == hashes(MarkedConfig(offset_start=tokyo))


class WrapperConfig(DataNodeConfiguration):
    source: DataNode | APIDataNode
    scale: float = 1.0


def test_a_datanode_in_a_config_hashes_as_its_update_hash():
    source = Node(MarkedConfig())
    same_source = Node(MarkedConfig(comment="runtime only"))
    other_batch = Node(MarkedConfig(batch=1))  # same storage, another updater
    assert canonical_value(WrapperConfig(source=source), "storage")["source"] == source.update_hash
    (storage, update) = hashes(WrapperConfig(source=source))
    assert (storage, update) == hashes(WrapperConfig(source=same_source))
    assert storage != hashes(WrapperConfig(source=other_batch))[0]
    assert storage != hashes(WrapperConfig(source=Node(MarkedConfig(), hash_namespace="ns")))[0]
    api = APIDataNode(source.storage_hash)
    assert hashes(WrapperConfig(source=api)) == hashes(WrapperConfig(source=APIDataNode(source.storage_hash)))
    assert hashes(WrapperConfig(source=api)) != (storage, update)


def test_class_name_is_part_of_both_hashes_but_not_its_module():
    config = MarkedConfig()
    assert hashes(config, Node) != hashes(config, OtherNode)
    twins = [type("Twin", (Node,), {"__module__": module}) for module in ("pkg_a.nodes", "pkg_b.nodes", "__main__")]
    assert len({hashes(config, twin) for twin in twins}) == 1
    assert hashes(config, twins[0])[0].startswith("twin_")


def test_hash_format_and_length():
    storage, update = hashes(MarkedConfig())
    assert HASH_FORMAT.match(storage) and HASH_FORMAT.match(update)
    assert storage.startswith("node_") and update.startswith("node_")
    long_a = type("VeryLongNodeName" * 8 + "A", (Node,), {})
    long_b = type("VeryLongNodeName" * 8 + "B", (Node,), {})
    for value in (*hashes(MarkedConfig(), long_a), *hashes(MarkedConfig(), long_b)):
        assert len(value) <= 63 and HASH_FORMAT.match(value), value
        assert value.startswith("verylongnodename")
    assert hashes(MarkedConfig(), long_a)[0] != hashes(MarkedConfig(), long_b)[0]


# -- stable everywhere (never Python's hash()) --------------------------------------------------
class PinnedLeg(BaseModel):
    center: float = 1.5
    note: str = Field("ignored", json_schema_extra=RUNTIME_ONLY)


class PinnedConfig(DataNodeConfiguration):
    window: int = 20
    ratio: float = 0.1
    name: str = "é/ü = 1%"
    flag: bool = True
    missing: int | None = None
    frequency: DataFrequency = DataFrequency.one_d
    as_of: dt.datetime = dt.datetime(2024, 1, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    leg: PinnedLeg = PinnedLeg()
    weights: dict[str, float] = Field(default_factory=lambda: {"b": 2.0, "a": 1.0})
    tags: frozenset[str] = frozenset({"zeta", "alpha", "mid"})
    assets: list[Asset] = Field(default_factory=lambda: [Asset(unique_identifier=u) for u in ("MSFT", "AAPL")])
    batch: int = Field(7, json_schema_extra=UPDATE_ONLY)
    records: list[RecordDefinition] | None = Field(
        default_factory=lambda: [RecordDefinition(column_name="close", label="Close", description="d")])


class PinnedNode(Node):
    __module__ = "pinned.nodes"
    __qualname__ = "PinnedNode"


def pinned_hashes() -> dict[str, str]:
    """The hashes of one fixed configuration (also computed in a subprocess by the test below)."""
    plain, namespaced = PinnedNode(PinnedConfig()), PinnedNode(PinnedConfig(), hash_namespace="ns")
    return {"storage": plain.storage_hash, "update": plain.update_hash,
            "storage_ns": namespaced.storage_hash, "update_ns": namespaced.update_hash}


# Changing these means every existing table gets a new name: only ever on purpose.
# Changed on purpose when the class stopped being identified by its import path (module.qualname,
# which differed between a script's ``__main__`` and an import) and became its qualname or HASH_NAME.
PINNED = {
    "storage": "pinnednode_e881c7ff303d35b31cdb59cf71ff5366",
    "update": "pinnednode_1e9adfb8ac2bb882c59ea1e56225ed39",
    "storage_ns": "pinnednode_aef186c9236fb0ffa850c9b97782fd39",
    "update_ns": "pinnednode_76f3155f1e9dcebe452df4243b7f5198",
}
# The same configuration under the import-path rule: tables in lakes written before the change.
# ``HASH_NAME = "<module>.<qualname>"`` keeps exactly these names (docs/identity.md, "Upgrading").
LEGACY_PINNED = {
    "storage": "pinnednode_f3e359a5332d71bc5432ab4304d92af8",
    "update": "pinnednode_6c1416e2bc4cac08b919eefec547ab8e",
    "storage_ns": "pinnednode_fe874d79627acd63f64d1d7b4d1f2f52",
    "update_ns": "pinnednode_f68efcde43232d5efddeecb4d4331c4d",
}


class LegacyPinnedNode(Node):
    HASH_NAME: ClassVar[str] = "pinned.nodes.PinnedNode"


def test_hash_name_set_to_the_old_import_path_keeps_tables_of_older_lakes():
    plain, namespaced = LegacyPinnedNode(PinnedConfig()), LegacyPinnedNode(PinnedConfig(), hash_namespace="ns")
    assert {"storage": plain.storage_hash, "update": plain.update_hash, "storage_ns": namespaced.storage_hash,
            "update_ns": namespaced.update_hash} == LEGACY_PINNED


def test_canonical_form_is_pinned():
    assert pinned_hashes() == PINNED


def test_hashes_are_identical_in_other_processes_with_other_hash_seeds():
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import test_hashing; "
        "print(json.dumps(test_hashing.pinned_hashes()))"
    )
    here = Path(__file__).parent
    children = [
        subprocess.Popen([sys.executable, "-c", code, str(here)], cwd=here.parent, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "PYTHONHASHSEED": seed})
        for seed in ("0", "4242")
    ]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == pinned_hashes() == PINNED


# -- namespaces ---------------------------------------------------------------------------------
def namespace_of(**kwargs: Any) -> tuple[str, tuple[str, str]]:
    node = Node(MarkedConfig(), **kwargs)
    return node.hash_namespace, (node.storage_hash, node.update_hash)


def test_namespace_changes_both_hashes_and_every_way_of_setting_it_agrees():
    production = hashes(MarkedConfig())
    with hash_namespace("ns"):
        assert current_hash_namespace() == "ns"
        from_context = namespace_of()
    assert from_context == namespace_of(hash_namespace="ns")
    assert from_context[0] == "ns"
    storage, update = from_context[1]
    assert storage != production[0] and update != production[1]
    assert storage.startswith("node_") and HASH_FORMAT.match(storage)
    assert namespace_of(test_node=True) == ("test", namespace_of(hash_namespace="test")[1])
    assert namespace_of(hash_namespace="other")[1] != from_context[1]


def test_empty_namespace_is_production():
    production = ("", hashes(MarkedConfig()))
    assert namespace_of() == production
    assert namespace_of(hash_namespace="") == production
    with hash_namespace(""):
        assert namespace_of() == production
    with hash_namespace("ctx"):
        assert namespace_of(hash_namespace="") == production  # explicit beats the context


def test_namespace_precedence_explicit_then_test_node_then_context():
    with hash_namespace("ctx"):
        assert namespace_of()[0] == "ctx"
        assert namespace_of(test_node=True)[0] == "test"
        assert namespace_of(hash_namespace="explicit", test_node=True)[0] == "explicit"
        assert namespace_of(hash_namespace="explicit")[0] == "explicit"


@pytest.mark.parametrize("namespace", ["ci ", " ci", "ci\n", "\tci"])
def test_a_namespace_with_surrounding_whitespace_is_refused_every_way_it_is_set(namespace):
    """Regression: ``-n "ci "`` (a stray space in a scheduler's command) was not the namespace typed."""
    message = f"^hash namespace {re.escape(repr(namespace))} starts or ends with whitespace: pass 'ci'$"
    with pytest.raises(ConfigurationError, match=message):
        Node(MarkedConfig(), hash_namespace=namespace)
    with pytest.raises(ConfigurationError, match=message), hash_namespace(namespace):
        pass
    assert current_hash_namespace() == ""


def test_namespace_context_nests_and_restores():
    with hash_namespace("outer"):
        with hash_namespace("inner"):
            assert current_hash_namespace() == "inner"
        assert current_hash_namespace() == "outer"
    assert current_hash_namespace() == ""
    with pytest.raises(TypeError, match="string"):
        with hash_namespace(1):  # type: ignore[arg-type]
            pass


class LeafConfig(DataNodeConfiguration):
    level: float = 1.0


class Leaf(DataNode):
    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        if self.update_statistics.max_time_index_value is not None:
            return pl.DataFrame()
        return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 2, tzinfo=UTC)], "level": [self.config.level]})


class LazyRoot(DataNode):
    """Builds its dependency only when asked, i.e. inside ``run()``."""

    seen: list[tuple[str, str]]

    def dependencies(self) -> dict:
        return {"leaf": Leaf(LeafConfig())}

    def update(self) -> pl.DataFrame:
        leaf = self.dependencies()["leaf"]
        self.seen = [(leaf.hash_namespace, leaf.storage_hash)]
        return leaf.get_df_between_dates().rename({"level": "doubled"}).with_columns(pl.col("doubled") * 2)


@pytest.mark.parametrize("kwargs, namespace", [
    pytest.param({"hash_namespace": "ns"}, "ns", id="constructor"),
    pytest.param({"test_node": True}, "test", id="test-node"),
])
def test_namespace_propagates_to_dependencies_built_inside_run(local_lake, kwargs, namespace):
    root = LazyRoot(LeafConfig(), **kwargs)
    assert current_hash_namespace() == ""
    error, written = root.run()
    assert error is False and written["doubled"].to_list() == [2.0]
    assert current_hash_namespace() == ""
    namespaced_leaf = Leaf(LeafConfig(), hash_namespace=namespace)
    assert root.seen == [(namespace, namespaced_leaf.storage_hash)]
    assert namespaced_leaf.store.exists()
    assert not Leaf(LeafConfig()).store.exists(), "the production table must stay untouched"
    assert not LazyRoot(LeafConfig()).store.exists()


def test_namespace_from_context_also_reaches_lazy_dependencies(local_lake):
    with hash_namespace("ctx"):
        root = LazyRoot(LeafConfig())
    root.run()
    assert root.seen[0][0] == "ctx"
    assert not Leaf(LeafConfig()).store.exists()


@pytest.mark.parametrize("executor", [None, "threads"])
def test_a_production_node_run_inside_a_namespace_block_keeps_its_lazy_dependencies_in_production(local_lake,
                                                                                                 executor):
    """A production root (built outside every block) run inside ``with hash_namespace("ci")``: it wrote
    its production table, while the dependency its ``dependencies()`` builds got namespace ``ci``, ran
    there, and the root read the ``ci`` table. A run now builds them in the root's own namespace,
    production's too, as it does for a namespaced root."""
    from concurrent.futures import ThreadPoolExecutor

    root = LazyRoot(LeafConfig())
    with hash_namespace("ci"):
        if executor is None:
            root.run()
        else:
            with ThreadPoolExecutor(2) as pool:
                run_many([root], executor=pool)
    assert root.seen[0][0] == "" and root.seen[0][1] == Leaf(LeafConfig()).storage_hash
    assert Leaf(LeafConfig()).store.exists()
    assert not Leaf(LeafConfig(), hash_namespace="ci").store.exists(), "the ci table must stay untouched"


# -- the tutorial configurations ----------------------------------------------------------------
def test_tutorial_random_number_std_is_update_only():
    calm = DailyRandomNumber(RandomDataNodeConfig(mean=0.0, std=VolatilityConfig(center=1, skew=True)))
    wild = DailyRandomNumber(RandomDataNodeConfig(mean=0.0, std=VolatilityConfig(center=2.5, skew=False)))
    shifted = DailyRandomNumber(RandomDataNodeConfig(mean=1.0, std=VolatilityConfig(center=1, skew=True)))
    assert calm.storage_hash == wild.storage_hash
    assert calm.update_hash != wild.update_hash
    assert calm.storage_hash != shifted.storage_hash
    relabelled = DailyRandomNumber(RandomDataNodeConfig(
        mean=0.0, std=VolatilityConfig(center=1, skew=True),
        node_metadata=DataNodeMetaData(identifier="another_id", data_frequency_id="1w"),
    ))
    assert (relabelled.storage_hash, relabelled.update_hash) == (calm.storage_hash, calm.update_hash)


def test_tutorial_simulated_prices_batches_share_one_table():
    def prices(*uids: str) -> SimulatedPrices:
        return SimulatedPrices(PriceSimulConfig(asset_list=[Asset(unique_identifier=uid) for uid in uids]))

    first, second, reordered = prices("NVDA", "APPL"), prices("MSFT", "GOOG"), prices("APPL", "NVDA")
    assert first.storage_hash == second.storage_hash
    assert first.update_hash != second.update_hash
    assert (first.storage_hash, first.update_hash) == (reordered.storage_hash, reordered.update_hash)
    with hash_namespace("pytest"):
        isolated = prices("NVDA", "APPL")
    assert isolated.storage_hash != first.storage_hash and isolated.update_hash != first.update_hash


# -- values that compare equal hash alike; different models never share a table -------------------
class MeanReversion(BaseModel):
    window: int


class Momentum(BaseModel):
    window: int


class FastMomentum(Momentum):
    pass


class StrategyConfig(DataNodeConfiguration):
    strategy: MeanReversion | Momentum
    plain: Momentum = Momentum(window=5)
    anything: dict[str, Any] = Field(default_factory=dict)


def test_models_of_a_union_or_a_subclass_hash_apart_and_a_declared_model_as_before():
    """Regression: two strategies of a union with equal fields shared one table and one updater."""
    by_class = {cls: hashes(StrategyConfig(strategy=cls(window=20))) for cls in (MeanReversion, Momentum)}
    assert by_class[MeanReversion][0] != by_class[Momentum][0] and by_class[MeanReversion][1] != by_class[Momentum][1]
    assert hashes(StrategyConfig(strategy=Momentum(window=20), plain=FastMomentum(window=5)))[0] != by_class[Momentum][0]
    assert hashes(StrategyConfig(strategy=Momentum(window=20), anything={"m": Momentum(window=1)}))[0] != \
        hashes(StrategyConfig(strategy=Momentum(window=20), anything={"m": MeanReversion(window=1)}))[0]
    # a model of the one class its field declares hashes as it always did (no class in its payload)
    assert canonical_value(MarkedConfig(), "storage")["leg"] == {"weight": 1.0}


def test_numpy_scalars_and_negative_zero_hash_as_the_values_they_equal():
    import numpy as np

    class Params(DataNodeConfiguration):
        params: dict[str, Any] = Field(default_factory=dict)

    assert hashes(Params(params={"n": np.int64(5), "on": np.bool_(True), "x": np.float32(0.5)})) == \
        hashes(Params(params={"n": 5, "on": True, "x": 0.5}))
    assert hashes(Params(params={"x": -0.0})) == hashes(Params(params={"x": 0.0}))
    # an array hashes as its list (it failed: "ValueError: can only convert an array of size 1 ...")
    assert hashes(Params(params={"w": np.array([[0.5, 0.25]]), "k": np.array(3)})) == \
        hashes(Params(params={"w": [[0.5, 0.25]], "k": 3}))
    assert hashes(Params(params={"w": np.array([0.5, 0.25])})) != hashes(Params(params={"w": np.array([0.5, 0.5])}))


def test_an_unhashable_configuration_value_is_a_configuration_error_naming_its_place():
    from lakenodes import ConfigurationError

    class Params(DataNodeConfiguration):
        params: dict[str, Any] = Field(default_factory=dict)

    with pytest.raises(ConfigurationError, match=r"at params\['threshold'\]\[1\]: a value of type bytearray"):
        Node(Params(params={"threshold": [1, bytearray(b"x")]}))


def test_numpy_float64_hashes_as_the_float_it_equals():
    """Regression: np.float64 (a float subclass) failed with ValueError on NumPy 2's repr."""
    import numpy as np

    class Params(DataNodeConfiguration):
        params: dict[str, Any] = Field(default_factory=dict)

    assert hashes(Params(params={"t": np.float64(0.3), "n": np.float64("nan")})) == \
        hashes(Params(params={"t": 0.3, "n": float("nan")}))


# -- a namespace given to a node covers the dependencies its __init__ builds (as in Main Sequence) --
class Upstream(DataNode):
    def dependencies(self):
        return {}

    def update(self):
        return None


class BuildsItsDependency(DataNode):
    """A node as users write it: builds its dependency in ``__init__`` and passes only ``config`` on
    (its ``__init__`` takes no ``hash_namespace=`` or ``test_node=``)."""

    def __init__(self, config: MarkedConfig):
        self.upstream = Upstream(MarkedConfig())
        super().__init__(config)

    def dependencies(self):
        return {"upstream": self.upstream}

    def update(self):
        return None


class ForwardsKeywords(BuildsItsDependency):
    def __init__(self, config: MarkedConfig, **kwargs: Any):
        self.upstream = Upstream(MarkedConfig())
        DataNode.__init__(self, config, **kwargs)


@pytest.mark.parametrize("node_class", [BuildsItsDependency, ForwardsKeywords])
def test_a_namespace_given_to_a_node_covers_the_dependencies_its_init_builds(node_class):
    """Regression: ``Node(config, hash_namespace="ci")`` (or ``test_node=True``) isolated that node
    only: the dependency its ``__init__`` built wrote the production table from a test run, and an
    ``__init__`` without those keywords could not take them. Main Sequence runs the subclass's
    ``__init__`` inside the namespace."""
    production = Upstream(MarkedConfig())
    for kwargs, namespace in [({"hash_namespace": "ci"}, "ci"), ({"test_node": True}, "test")]:
        node = node_class(MarkedConfig(), **kwargs)
        assert node.hash_namespace == node.upstream.hash_namespace == namespace
        assert node.upstream.storage_hash != production.storage_hash
        assert node.upstream.storage_hash == Upstream(MarkedConfig(), hash_namespace=namespace).storage_hash
    assert current_hash_namespace() == ""  # nothing left active
    with hash_namespace("outer"):  # an explicit '' is production for the node, as before
        assert node_class(MarkedConfig(), hash_namespace="").hash_namespace == ""
        assert node_class(MarkedConfig()).upstream.hash_namespace == "outer"
    with pytest.raises(ConfigurationError, match="hash_namespace must be a string, got int"):
        node_class(MarkedConfig(), hash_namespace=5)
    with pytest.raises(ConfigurationError, match="only whitespace"):
        node_class(MarkedConfig(), hash_namespace="  ")
