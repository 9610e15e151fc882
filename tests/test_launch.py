"""Which configuration class a node takes, and how `--config` text becomes it (lakenodes.launch)."""

from __future__ import annotations  # every annotation below is a string: the lookup must resolve them

import pytest

from lakenodes import DataNode, DataNodeConfiguration, LakenodesUserError
from lakenodes.runtime.launch import (
    MAX_CONFIG_DEPTH,
    build_config,
    config_class_of,
    json_depth,
    parse_config_json,
    read_config_text,
)


class RatesConfig(DataNodeConfiguration):
    currency: str = "EUR"


class OtherConfig(DataNodeConfiguration):
    other: int = 1


class Undeclared(DataNode):
    def dependencies(self):
        return {}


class Annotated(Undeclared):
    config: RatesConfig


class InheritsAnnotation(Annotated):
    pass


class OptionalAnnotation(Undeclared):
    config: RatesConfig | None


class ByConfig(Annotated):
    Config = OtherConfig


class ByConstant(Undeclared):
    CONFIG_CLASS = OtherConfig


class OwnInit(Annotated):
    def __init__(self, config: OtherConfig, **kwargs):
        super().__init__(config, **kwargs)


class InitWithoutAnnotation(Annotated):
    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)


class ConfigMixin:
    def __init__(self, config: OtherConfig, **kwargs):
        super().__init__(config, **kwargs)


class MixedIn(ConfigMixin, Undeclared):
    pass


class ExplicitBase(Undeclared):
    config: DataNodeConfiguration


class BadConfigAttribute(Undeclared):
    Config = dict


class UnresolvableAnnotation(Undeclared):
    config: NoSuchConfig  # noqa: F821


@pytest.mark.parametrize(("node_class", "expected"), [
    (Annotated, RatesConfig),
    (InheritsAnnotation, RatesConfig),
    (OptionalAnnotation, RatesConfig),
    (ByConfig, OtherConfig),  # the explicit attribute wins over an inherited annotation
    (ByConstant, OtherConfig),
    (OwnInit, OtherConfig),  # __init__'s annotation wins over the class annotation
    (InitWithoutAnnotation, RatesConfig),
    (MixedIn, OtherConfig),
    (ExplicitBase, DataNodeConfiguration),
])
def test_config_class_lookup_order(node_class, expected):
    assert config_class_of(node_class) is expected


@pytest.mark.parametrize(("node_class", "fragment"), [
    (Undeclared, "annotate `config: MyConfig` on the class"),  # DataNode.__init__'s base class is no answer
    (BadConfigAttribute, "BadConfigAttribute.Config must be a DataNodeConfiguration class"),
    (UnresolvableAnnotation, "cannot resolve the annotation `config: NoSuchConfig`"),
])
def test_config_class_lookup_refusals(node_class, fragment):
    with pytest.raises(LakenodesUserError) as error:
        config_class_of(node_class)
    assert fragment in str(error.value)


def test_empty_json_builds_the_defaults():
    assert build_config(Annotated, "{}") == RatesConfig()
    assert build_config(Annotated, '{"currency": "USD"}') == RatesConfig(currency="USD")
    with pytest.raises(LakenodesUserError, match="not a valid RatesConfig: colour"):
        build_config(Annotated, '{"colour": 1}')


def test_json_depth_is_iterative():
    assert [json_depth(value) for value in (1, {}, [], {"a": [1, {"b": []}]}, [[], {}])] == [0, 1, 1, 4, 2]
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == 100_001


@pytest.mark.parametrize(("text", "fragment"), [
    ("[" * MAX_CONFIG_DEPTH + "]" * MAX_CONFIG_DEPTH, "must be a JSON object"),
    ('{"a": ' + "[" * MAX_CONFIG_DEPTH + "]" * MAX_CONFIG_DEPTH + "}", "nested too deeply"),
    ('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),
    ('{"a": ' + "1" * 4301 + "}", "integer with more than 4300 digits"),
    ('{"a": 1', "not valid JSON"),
])
def test_parse_config_json_refusals(text, fragment):
    with pytest.raises(LakenodesUserError) as error:
        parse_config_json(text)
    assert fragment in str(error.value)


def test_parse_config_json_accepts_the_depth_limit():
    text = '{"a": ' + "[" * (MAX_CONFIG_DEPTH - 1) + "]" * (MAX_CONFIG_DEPTH - 1) + "}"
    assert json_depth(parse_config_json(text)) == MAX_CONFIG_DEPTH


def test_read_config_text_is_bounded(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"currency": "USD"}')
    assert read_config_text(f"@{path}") == '{"currency": "USD"}'
    assert read_config_text('{"a": 1}') == '{"a": 1}'
    for text in ("@/dev/zero", "x" * (1024 * 1024 + 1)):
        with pytest.raises(LakenodesUserError, match="larger than 1 MiB"):
            read_config_text(text)
