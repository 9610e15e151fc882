"""Node identity (DESIGN §3 "Configuration and hashing", §7 "Node identity"; docs/identity.md).

- A field keeps the marker its base class gives it, however a subclass re-declares it.
- A class is identified by its own ``HASH_NAME`` or its ``__qualname__``, never its module, so the
  same class hashes alike when run as a script, imported, or loaded by ``lakenodes run file.py:Class``.
- The readable prefix of a hash is restricted to ``[a-z0-9_]``: a class name cannot move its table
  out of ``<lake>/tables/``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest
from pydantic import BaseModel, Field

from lakenodes import (
    ConfigurationError,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    RecordDefinition,
)
from lakenodes.core.hashing import hash_prefix

UTC = dt.UTC
HASH_FORMAT = r"^[a-z][a-z0-9_]*_[0-9a-f]{32}$"


# -- the README's configuration: markers survive a plain re-declaration ---------------------------
class RatesConfig(DataNodeConfiguration):
    """As in the README: ``node_metadata`` re-declared with a plain default."""

    currency: str = "EUR"
    records: list[RecordDefinition] = [RecordDefinition(column_name="rate", dtype="float64")]
    node_metadata: DataNodeMetaData = DataNodeMetaData(identifier="fx_rates_daily", data_frequency_id="1d")


class ShiftedRatesConfig(RatesConfig):
    """``offset_start`` re-declared with a plain default, two levels below the base class."""

    offset_start: dt.datetime | None = dt.datetime(2020, 1, 1, tzinfo=UTC)


class DailyRates(DataNode):
    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        if self.update_statistics.max_time_index_value is not None:
            return pl.DataFrame()
        return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 2, tzinfo=UTC)], "rate": [1.08]})


def hashes(config: BaseModel, node_class: type[DataNode] = DailyRates) -> tuple[str, str]:
    node = node_class(config)
    return node.storage_hash, node.update_hash


@pytest.mark.parametrize("metadata", [
    DataNodeMetaData(identifier="fx_rates_daily_v2", data_frequency_id="1d"),
    DataNodeMetaData(identifier="fx_rates_daily", description="ECB fixing", labels=["fx"]),
], ids=["identifier", "description-and-labels"])
def test_readme_rates_config_metadata_stays_runtime_only(metadata):
    assert hashes(RatesConfig(node_metadata=metadata)) == hashes(RatesConfig())
    assert hashes(RatesConfig(currency="USD"))[0] != hashes(RatesConfig())[0]


def test_redeclared_offset_start_stays_update_only():
    base, later = ShiftedRatesConfig(), ShiftedRatesConfig(offset_start=dt.datetime(2023, 6, 1, tzinfo=UTC))
    assert hashes(base)[0] == hashes(later)[0], "storage_hash"
    assert hashes(base)[1] != hashes(later)[1], "update_hash"
    metadata = DataNodeMetaData(identifier="renamed")
    assert hashes(ShiftedRatesConfig(node_metadata=metadata)) == hashes(base)


class Leg(BaseModel):
    weight: float = 1.0
    shard: int = Field(0, json_schema_extra={"update_only": True})


class PlainLeg(Leg):
    shard: int = 3  # a nested (non-configuration) model keeps its base's marker too


class LegConfig(DataNodeConfiguration):
    leg: PlainLeg = PlainLeg()


def test_markers_are_inherited_by_nested_models_too():
    assert hashes(LegConfig())[0] == hashes(LegConfig(leg=PlainLeg(shard=9)))[0]
    assert hashes(LegConfig())[1] != hashes(LegConfig(leg=PlainLeg(shard=9)))[1]
    assert hashes(LegConfig())[0] != hashes(LegConfig(leg=PlainLeg(weight=2.0)))[0]


def test_a_subclass_may_add_a_marker_to_a_plain_field():
    class BatchedRates(RatesConfig):
        currency: str = Field("EUR", json_schema_extra={"update_only": True})

    assert hashes(BatchedRates())[0] == hashes(BatchedRates(currency="USD"))[0]
    assert hashes(BatchedRates())[1] != hashes(BatchedRates(currency="USD"))[1]


# -- the class name, not its module, identifies a node -------------------------------------------
NODES_MODULE = '''
    import json

    import polars as pl

    from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData, RecordDefinition


    class RatesConfig(DataNodeConfiguration):
        currency: str = "EUR"
        records: list[RecordDefinition] = [RecordDefinition(column_name="rate", dtype="float64")]
        node_metadata: DataNodeMetaData = DataNodeMetaData(identifier="fx_rates_daily", data_frequency_id="1d")


    class {name}(DataNode):
        {hash_name}
        def __init__(self, config: RatesConfig, **kwargs):
            super().__init__(config, **kwargs)

        def dependencies(self):
            return {{}}

        def update(self):
            return pl.DataFrame()


    def report():
        node = {name}(RatesConfig())
        print(json.dumps({{"storage_hash": node.storage_hash, "update_hash": node.update_hash}}))


    if __name__ == "__main__":
        report()
'''


def write_module(path: Path, name: str = "DailyRates", hash_name: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "__init__.py").touch()
    code = NODES_MODULE.format(name=name, hash_name=f"HASH_NAME = {hash_name!r}" if hash_name else "")
    path.write_text(textwrap.dedent(code))
    return path


def launch(args: list[str], cwd: Path, lake: Path) -> dict[str, Any]:
    """Run a Python subprocess and return the hashes it prints (the last JSON document on stdout)."""
    env = {**os.environ, "LAKENODES_URI": str(lake)}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout[done.stdout.index("{"):])
    return {key: document[key] for key in ("storage_hash", "update_hash")}


def test_same_class_same_hashes_as_script_import_and_lakenodes_run(tmp_path):
    """Under the import-path rule these were ``__main__.DailyRates``, ``fxnodes.DailyRates`` and
    ``pkg.fxnodes.DailyRates``: three tables for one node."""
    module = write_module(tmp_path / "pkg" / "fxnodes.py")
    lake = tmp_path / "lake"
    as_script = launch([str(module)], module.parent, lake)
    imported = launch(["-c", "import fxnodes; fxnodes.report()"], module.parent, lake)
    by_cli = launch(["-m", "lakenodes", "run", f"{module}:DailyRates", "--config", "{}", "--json"], tmp_path, lake)
    assert as_script == imported == by_cli
    assert as_script == dict(zip(("storage_hash", "update_hash"), hashes(RatesConfig()), strict=True))


def test_hash_name_keeps_the_hashes_of_a_renamed_class_in_another_module(tmp_path):
    original = write_module(tmp_path / "old_home" / "rates.py")
    moved = write_module(tmp_path / "new_home" / "fx" / "nodes.py", name="EcbRates", hash_name="DailyRates")
    lake = tmp_path / "lake"
    before = launch(["-m", "lakenodes", "run", f"{original}:DailyRates", "--json"], tmp_path, lake)
    after = launch(["-m", "lakenodes", "run", f"{moved}:EcbRates", "--json"], tmp_path, lake)
    assert before == after
    assert before["storage_hash"].startswith("dailyrates_")


def test_hash_name_is_read_from_the_class_itself_not_inherited():
    class Pinned(DailyRates):
        HASH_NAME: ClassVar[str] = "DailyRates"

    class Derived(Pinned):
        pass

    assert hashes(RatesConfig(), Pinned) == hashes(RatesConfig(), DailyRates)
    assert hashes(RatesConfig(), Derived) != hashes(RatesConfig(), Pinned)
    assert hashes(RatesConfig(), Derived)[0].startswith("derived_")


@pytest.mark.parametrize("value", ["", "   ", 3, ["DailyRates"]])
def test_a_bad_hash_name_is_refused_naming_the_class(value):
    bad = type("BadName", (DailyRates,), {"HASH_NAME": value})
    with pytest.raises(ConfigurationError, match=r"BadName\.HASH_NAME must be a non-empty string"):
        bad(RatesConfig())


# -- the prefix is a safe folder name -----------------------------------------------------------
@pytest.mark.parametrize("name, prefix", [
    ("DailyRates", "dailyrates"),
    ("Outer.Inner", "inner"),
    ("make.<locals>.Node", "node"),
    ("../../escaped", "escaped"),
    ("..\\..\\evil", "evil"),
    ("a/b c=d%e", "a_b_c_d_e"),
    ("Prix€Ünïcode", "prix_unicode"),
    ("_Private__Name_", "private__name"),
    ("42nd", "node_42nd"),
    ("日本", "node"),
    ("", "node"),
    ("...", "node"),
    ("X" * 80, "x" * 30),
])
def test_hash_prefix_is_a_safe_folder_name(name, prefix):
    assert hash_prefix(name) == prefix


@pytest.mark.parametrize("name", ["../../escaped", "/abs/path", "..", "C:\\temp\\x", " ", "_delta_log"])
def test_odd_class_names_hash_to_safe_names(name):
    node_class = type(name, (DailyRates,), {})
    for value in hashes(RatesConfig(), node_class):
        assert re.match(HASH_FORMAT, value) and len(value) <= 63, value


def test_a_class_named_with_path_characters_writes_only_inside_the_lake(local_lake, tmp_path):
    escaped = type("../../escaped", (DailyRates,), {})
    node = escaped(RatesConfig())
    tables = Path(local_lake.uri) / "tables"
    assert Path(node.table_uri).resolve().parent == tables.resolve()
    error, written = node.run()
    assert error is False and written.height == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["lake"], "nothing may be written beside the lake"
    assert sorted(path.name for path in tables.iterdir()) == [node.storage_hash]
    assert escaped(RatesConfig()).get_df_between_dates()["rate"].to_list() == [1.08]


# -- docs/identity.md ---------------------------------------------------------------------------
def test_the_identity_doc_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).resolve().parents[1] / "docs" / "identity.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)\n```", text, re.S | re.M)
    assert blocks, "docs/identity.md has no python example"
    for block in blocks:
        exec(compile(block, "docs/identity.md", "exec"), {"__name__": "identity_doc"})
    assert list(tmp_path.iterdir()) == [], "building nodes must not touch storage"


def test_a_node_whose_identifier_an_import_path_hash_holds_is_told_to_set_hash_name(local_lake):
    """A lake an earlier lakenodes wrote (hashes of ``module.DailyRates``) holds the published
    identifier; today's DailyRates hashes by its name alone, so its run conflicts with its own old
    table. The refusal names the old table and the HASH_NAME that keeps writing it, not
    repoint_identifier (which would publish an empty new table), and writes nothing."""
    from lakenodes import IdentifierConflictError, NodeRunError
    from lakenodes.core.hashing import class_path

    old_path = class_path(DailyRates)
    legacy = type("DailyRates", (DailyRates,), {"HASH_NAME": old_path})  # the earlier version's hashes
    old = legacy(RatesConfig(), lake=local_lake)
    old.run()

    upgraded = DailyRates(RatesConfig(), lake=local_lake)
    with pytest.raises(NodeRunError) as caught:
        upgraded.run()
    assert isinstance(caught.value.cause, IdentifierConflictError)
    message = str(caught.value.cause)
    assert old.storage_hash in message and f"HASH_NAME: ClassVar[str] = {old_path!r}" in message
    assert "repoint_identifier" not in message
    assert not upgraded.store.exists()

    pinned = type("DailyRates", (DailyRates,), {"HASH_NAME": old_path})(RatesConfig(), lake=local_lake)
    assert pinned.storage_hash == old.storage_hash
    assert pinned.update_statistics.max_time_index_value == dt.datetime(2024, 1, 2, tzinfo=UTC)


def test_a_conflict_with_another_table_still_names_repoint_identifier(local_lake):
    from lakenodes import NodeRunError

    DailyRates(RatesConfig(currency="USD"), lake=local_lake).run()
    with pytest.raises(NodeRunError, match=r"repoint_identifier\('fx_rates_daily', node\)"):
        DailyRates(RatesConfig(), lake=local_lake).run()


def test_a_node_creating_its_table_beside_its_import_path_table_warns_naming_hash_name(local_lake, caplog):
    """Without an identifier nothing conflicts: the upgraded node starts a new table (as
    docs/identity.md says), and its run says which old table it leaves and how to keep it."""
    from lakenodes.core.hashing import class_path

    config = RatesConfig(node_metadata=DataNodeMetaData(data_frequency_id="1d"))
    old_path = class_path(DailyRates)
    old = type("DailyRates", (DailyRates,), {"HASH_NAME": old_path})(config, lake=local_lake)
    old.run()
    caplog.clear()
    with caplog.at_level("WARNING", logger="lakenodes"):
        DailyRates(config, lake=local_lake).run()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and old.storage_hash in warnings[0], warnings
    assert f"HASH_NAME: ClassVar[str] = {old_path!r}" in warnings[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="lakenodes"):
        DailyRates(config.model_copy(update={"currency": "USD"}), lake=local_lake).run()  # no old table: quiet
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
