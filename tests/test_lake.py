"""The lake root: explicit Lake > use_lake > LAKENODES_URI > ./lake, S3 options, bad URIs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakenodes import DataNode, DataNodeConfiguration, Lake, current_lake, use_lake
from lakenodes.errors import LakeConfigurationError, LakenodesUserError
from lakenodes.lake.client_options import DEFAULT_TIMEOUTS

AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ALLOW_HTTP")


@pytest.fixture
def clean_env(monkeypatch):
    """No lake or AWS settings inherited from the machine running the tests."""
    for name in ("LAKENODES_URI", *AWS_VARS):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class OneRowConfig(DataNodeConfiguration):
    name: str = "one_row"


class OneRow(DataNode):
    def dependencies(self):
        return {}

    def update(self):
        if self.update_statistics.max_time_index_value is not None:
            return pl.DataFrame()
        return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], "value": [1.0]})


# -- resolution order --------------------------------------------------------------------------------
def test_default_is_dot_lake_made_absolute(clean_env, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    assert Lake().uri == str(tmp_path.resolve() / "lake")
    assert current_lake().uri == str(tmp_path.resolve() / "lake")
    assert Lake().storage_options == {}
    assert Lake().is_local


def test_local_paths_are_absolute_and_normalized(clean_env, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    assert Lake("data/../lakes/one").uri == str(tmp_path.resolve() / "lakes" / "one")
    assert Lake(tmp_path / "two").uri == str(tmp_path.resolve() / "two")
    assert Lake(f"file://{tmp_path}/three").uri == str(tmp_path.resolve() / "three")
    assert Lake(tmp_path / "four").table_uri("abc_123") == f"{tmp_path.resolve()}/four/tables/abc_123"
    assert Lake("~/somewhere").uri == str(Path("~/somewhere").expanduser().resolve())


def test_environment_variable_is_used_when_no_lake_is_active(clean_env, tmp_path: Path) -> None:
    clean_env.setenv("LAKENODES_URI", str(tmp_path / "from_env"))
    assert Lake().uri == str(tmp_path / "from_env")
    assert current_lake().uri == str(tmp_path / "from_env")
    with use_lake(tmp_path / "block") as block:  # use_lake beats the environment
        assert current_lake() == block
        assert Lake().uri == str(tmp_path / "block")
        assert Lake(tmp_path / "explicit").uri == str(tmp_path / "explicit")  # explicit beats everything
    assert current_lake().uri == str(tmp_path / "from_env")


def test_use_lake_nests_and_restores(clean_env, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    outer_lake = Lake(tmp_path / "outer")
    with use_lake(outer_lake) as outer:
        assert outer is outer_lake and current_lake() is outer_lake
        with use_lake(str(tmp_path / "inner")) as inner:
            assert current_lake() is inner and inner.uri == str(tmp_path / "inner")
            node = OneRow(OneRowConfig())
        assert current_lake() is outer_lake
        try:
            with use_lake(tmp_path / "failing"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert current_lake() is outer_lake
    assert current_lake().uri == str(tmp_path / "lake")

    node.run()  # a node keeps the lake it was built in, and run() re-activates it
    assert (tmp_path / "inner" / "tables" / node.storage_hash / "_delta_log").is_dir()
    assert not (tmp_path / "lake").exists()


# -- S3 options ------------------------------------------------------------------------------------------
def test_s3_options_come_from_the_standard_aws_environment(clean_env) -> None:
    clean_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    clean_env.setenv("AWS_ACCESS_KEY_ID", "key")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    clean_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    lake = Lake("s3://bucket/some/prefix/")
    assert lake.uri == "s3://bucket/some/prefix"
    assert not lake.is_local
    assert lake.storage_options == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "eu-west-1", "AWS_ALLOW_HTTP": "true", **DEFAULT_TIMEOUTS,
    }
    assert lake.table_uri("t_1") == "s3://bucket/some/prefix/tables/t_1"
    clean_env.setenv("AWS_REGION", "us-east-2")
    assert Lake("s3a://bucket").storage_options["AWS_REGION"] == "us-east-2"
    assert Lake("s3a://bucket").uri == "s3://bucket"


def test_s3_options_dict_overrides_the_environment(clean_env) -> None:
    clean_env.setenv("AWS_ACCESS_KEY_ID", "from-env")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    clean_env.setenv("AWS_REGION", "eu-west-1")
    lake = Lake("s3://bucket/lake", storage_options={"AWS_ACCESS_KEY_ID": "from-dict", "AWS_ALLOW_HTTP": "false"})
    assert lake.storage_options == {"AWS_ACCESS_KEY_ID": "from-dict", "AWS_SECRET_ACCESS_KEY": "secret-from-env",
                                    "AWS_REGION": "eu-west-1", "AWS_ALLOW_HTTP": "false", **DEFAULT_TIMEOUTS}
    assert Lake("/tmp/local-lake").storage_options == {}  # AWS settings never leak into local lakes
    with use_lake("s3://bucket/lake", {"AWS_REGION": "ap-south-1"}) as lake:
        assert current_lake().storage_options["AWS_REGION"] == "ap-south-1"
        assert Lake() == lake


@pytest.mark.s3
def test_an_s3_lake_configured_only_by_the_environment_works(clean_env, s3_server) -> None:
    for name, value in s3_server.env.items():
        clean_env.setenv(name, value)
    clean_env.setenv("LAKENODES_URI", f"s3://{s3_server.create_bucket()}/env-lake")
    node = OneRow(OneRowConfig(name="from_env"))
    assert node.lake.storage_options["AWS_ENDPOINT_URL"] == s3_server.endpoint_url
    node.run()
    assert node.update_statistics.max_time_index_value == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    table = DeltaTable(node.table_uri, storage_options=s3_server.storage_options)
    assert pa.table(table.to_pyarrow_table()).num_rows == 1
    assert node.run()[1].is_empty()


# -- bad URIs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("ftp://host/lake", "unsupported lake URI scheme 'ftp'"),
        ("gs://bucket/lake", "unsupported lake URI scheme 'gs'"),
        ("http://host/lake", "unsupported lake URI scheme 'http'"),
        ("", "empty"),
        ("   ", "empty"),
        ("s3://", "names no bucket"),
        ("s3:///", "names no bucket"),
        ("s3:///prefix/only", "names no bucket"),
        ("s3://bucket//prefix", "has an empty path component ('//')"),
        ("s3://bucket/a//b/", "has an empty path component ('//')"),
        # regression: written under s3://bucket/lake, then looked for under x/../lake ("no lake")
        ("s3://bucket/x/../lake", "has a '.' or '..' path component"),
        ("s3://bucket/./lake", "has a '.' or '..' path component"),
        ("s3:/bucket/lake", "has no '//' after 's3:'"),
        ("file:/tmp/lake", "has no '//' after 'file:'"),
    ],
)
def test_bad_uris_are_configuration_errors(clean_env, uri: str, fragment: str) -> None:
    with pytest.raises(LakeConfigurationError) as caught:
        Lake(uri)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, LakenodesUserError)
    with pytest.raises(LakeConfigurationError):
        with use_lake(uri):
            pass


def test_a_bad_environment_uri_is_reported(clean_env) -> None:
    clean_env.setenv("LAKENODES_URI", "ftp://host/lake")
    with pytest.raises(LakeConfigurationError, match="ftp"):
        Lake()
    node = OneRow(OneRowConfig())  # no lake= and no block: the lake is the one in effect where it is used
    for use in (lambda: node.lake, node.run, node.get_df_between_dates):
        with pytest.raises(LakeConfigurationError, match="ftp"):
            use()
