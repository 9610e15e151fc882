"""Storage options: every spelling delta-rs/object_store accepts reaches the same store on every I/O path.

Regression: ``Lake(storage_options={"aws_endpoint_url": ...})`` (lowercase, as object_store accepts)
wrote through delta-rs to the right endpoint while lakenodes' own pyarrow reads, which only looked at
upper-case ``AWS_*`` keys, went to the real AWS endpoint.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from pathlib import Path

import boto3
import polars as pl
import pytest
from deltalake import DeltaTable

from lakenodes import Asset, Lake, TimeIndexMetaTable, use_lake
from lakenodes.errors import LakeConfigurationError
from lakenodes.lake.client_options import DEFAULT_TIMEOUTS
from lakenodes.testing import ACCESS_KEY, REGION, SECRET_KEY, S3Server

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from examples.run_tutorial import TUTORIAL_ASSETS  # noqa: E402
from examples.tutorial_nodes import SIMULATED_PRICES_IDENTIFIER, PriceSimulConfig, SimulatedPrices  # noqa: E402

DAYS = 3
ENDPOINT = "http://127.0.0.1:9000"
CANONICAL = {"AWS_ENDPOINT_URL": ENDPOINT, "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret",
             "AWS_REGION": "eu-west-1", "AWS_ALLOW_HTTP": "true"}


def spellings(endpoint: str, key: str, secret: str, region: str) -> dict[str, dict[str, str]]:
    """The same settings in the spellings object_store's AmazonS3ConfigKey / ClientConfigKey accept."""
    return {
        "lowercase": {"aws_endpoint_url": endpoint, "aws_access_key_id": key, "aws_secret_access_key": secret,
                      "aws_region": region, "aws_allow_http": "true"},
        "short": {"endpoint": endpoint, "access_key_id": key, "secret_access_key": secret, "region": region,
                  "allow_http": "true"},
        "mixed": {"Aws_Endpoint": endpoint, "ACCESS_KEY_ID": key, "Secret_Access_Key": secret,
                  "default_region": region},
        # plus options only delta-rs (and LanceDB) act on, which must pass through to them intact
        "tuned": {"endpoint_url": endpoint, "aws_access_key_id": key, "secret_access_key": secret,
                  "AWS_REGION": region, "aws_conditional_put": "etag", "concurrency_limit": "8",
                  "max_retries": "3", "Timeout": "30s", "connect_timeout": "5s", "backoff_config.base": "2",
                  "aws_s3_addressing_style": "path", "virtual_hosted_style_request": "false"},
    }


@pytest.fixture
def no_aws_env(monkeypatch):
    """No AWS_* (or lake) variable in this process: only the storage options can say where S3 is."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name == "LAKENODES_URI":
            monkeypatch.delenv(name)
    return monkeypatch


# -- normalisation --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lowercase", "short", "mixed"])
def test_every_spelling_becomes_the_canonical_options(no_aws_env, name: str) -> None:
    spelled = spellings(ENDPOINT, "key", "secret", "eu-west-1")[name]
    lake = Lake("s3://bucket/lake", storage_options=spelled)
    assert lake.storage_options == {**CANONICAL, **DEFAULT_TIMEOUTS}
    assert Lake(lake.uri, lake.storage_options).storage_options == lake.storage_options  # idempotent
    with use_lake(lake):
        assert Lake() == lake


def test_options_delta_rs_understands_are_kept_in_the_spelling_it_reads(no_aws_env) -> None:
    options = Lake("s3://bucket/lake", storage_options={
        **CANONICAL, "aws_conditional_put": "etag", "concurrency_limit": "8", "MAX_RETRIES": "2",
        "aws_s3_locking_provider": "dynamodb", "Timeout": "30s", "backoff.base": "2", "aws_s3_express": "false",
        "AWS_S3_ADDRESSING_STYLE": "path", "token": "session", "bucket": "bucket",
    }).storage_options
    assert options == {**CANONICAL, **DEFAULT_TIMEOUTS, "AWS_CONDITIONAL_PUT": "etag", "OBJECT_STORE_CONCURRENCY_LIMIT": "8",
                       "max_retries": "2", "AWS_S3_LOCKING_PROVIDER": "dynamodb", "timeout": "30s",
                       "backoff_config.base": "2", "AWS_S3_EXPRESS": "false", "AWS_S3_ADDRESSING_STYLE": "path",
                       "AWS_SESSION_TOKEN": "session", "AWS_BUCKET": "bucket"}


def test_environment_spellings_fill_in_and_explicit_options_win(no_aws_env) -> None:
    no_aws_env.setenv("AWS_ENDPOINT", "http://from-env:9000")  # object_store's alias, read by delta-rs too
    no_aws_env.setenv("AWS_ACCESS_KEY_ID", "env-key")
    no_aws_env.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    no_aws_env.setenv("AWS_PROFILE", "dev")  # left to the AWS SDKs, which read it themselves
    assert Lake("s3://bucket/lake").storage_options == {
        "AWS_ENDPOINT_URL": "http://from-env:9000", "AWS_ACCESS_KEY_ID": "env-key",
        "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_ALLOW_HTTP": "true", **DEFAULT_TIMEOUTS}
    no_aws_env.setenv("AWS_ENDPOINT_URL", "http://other:9000")  # two env spellings disagree...
    with pytest.raises(LakeConfigurationError, match="'AWS_ENDPOINT(_URL)?' and 'AWS_ENDPOINT(_URL)?'"):
        Lake("s3://bucket/lake")
    # ...which does not matter once the endpoint is given explicitly
    assert Lake("s3://bucket/lake", {"endpoint": ENDPOINT}).storage_options["AWS_ENDPOINT_URL"] == ENDPOINT
    assert Lake("/tmp/local-lake").storage_options == {}
    # delta-rs also reads addressing switches from the environment: checked the same way
    no_aws_env.setenv("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "true")
    with pytest.raises(LakeConfigurationError, match="virtual-hosted-style"):
        Lake("s3://bucket/lake", {"endpoint": ENDPOINT})


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"aws_endpoint_urll": "x"}, "'aws_endpoint_urll' is not an S3 option"),
        ({"azure_storage_account_name": "x"}, "'azure_storage_account_name' is not an S3 option"),
        ({"role_arn": "arn:aws:iam::1:role/r"}, "'role_arn' (AWS_ROLE_ARN) is not supported"),
        ({"AWS_PROFILE": "dev"}, "'AWS_PROFILE' (AWS_PROFILE) is not supported"),
        ({"aws_iam_role_arn": "arn:aws:iam::1:role/r"}, "'aws_iam_role_arn' (AWS_IAM_ROLE_ARN) is not supported"),
        ({"sse_customer_key_base64": "a2V5"}, "'sse_customer_key_base64' (AWS_SSE_CUSTOMER_KEY_BASE64) is not"),
        ({"s3_express": "true"}, "'s3_express' (AWS_S3_EXPRESS) is not supported"),
        ({"allow_invalid_certificates": "yes"}, "'allow_invalid_certificates' (allow_invalid_certificates) is not"),
        ({"proxy_excludes": "internal"}, "'proxy_excludes' (proxy_excludes) is not supported"),
        ({"virtual_hosted_style_request": "true"}, "virtual-hosted-style"),
        ({"AWS_S3_ADDRESSING_STYLE": "virtual"}, "virtual-hosted-style"),
        ({"AWS_S3_ADDRESSING_STYLE": "sideways"}, "neither 'path' nor 'virtual'"),
        ({"aws_virtual_hosted_style_request": "maybe"}, "AWS_VIRTUAL_HOSTED_STYLE_REQUEST = 'maybe' is not a boolean"),
        ({"endpoint": "http://other:9000"}, "'aws_endpoint_url' and 'endpoint' both set AWS_ENDPOINT_URL"),
        ({"bucket_name": "another"}, "AWS_BUCKET 'another' differs from the lake URI's bucket 'bucket'"),
        ({"aws_allow_http": "false"}, "plain http but AWS_ALLOW_HTTP is 'false'"),
        ({"timeout": "soon"}, "duration 'soon'"),
        ({"init_backoff": "soon"}, "backoff_config.init_backoff duration 'soon'"),
        ({"backoff.base": "two"}, "backoff_config.base 'two' is not a number"),
        ({"max_retries": "many"}, "max_retries 'many' is not a whole number"),
        ({"region": None}, "'region' has no value"),
    ],
)
def test_options_the_reads_cannot_follow_are_refused_naming_the_key(no_aws_env, extra, fragment) -> None:
    options = {**spellings(ENDPOINT, "key", "secret", "eu-west-1")["lowercase"], **extra}
    with pytest.raises(LakeConfigurationError, match=re.escape(fragment)) as caught:
        Lake("s3://bucket/lake", storage_options=options)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"endpoint": "127.0.0.1:9000"}, "is not an http(s):// URL"),
        ({"endpoint": "https://minio.internal/bucket"}, "has a path"),
        ({"access_key_id": "key"}, "AWS_SECRET_ACCESS_KEY is missing"),
    ],
)
def test_endpoints_and_keys_pyarrow_cannot_use_are_refused(no_aws_env, options, fragment) -> None:
    with pytest.raises(LakeConfigurationError, match=re.escape(fragment)):
        Lake("s3://bucket/lake", storage_options=options)


def test_virtual_hosted_style_is_fine_against_aws_itself(no_aws_env) -> None:
    options = Lake("s3://bucket/lake", {"virtual_hosted_style_request": "true", "region": "eu-west-1"}).storage_options
    assert options == {"AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "true", "AWS_REGION": "eu-west-1", **DEFAULT_TIMEOUTS}


# -- every I/O path on a real (moto) S3 server ---------------------------------------------------------
def _bucket_objects(server: S3Server, bucket: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name=REGION)
    return [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.s3
@pytest.mark.parametrize("name", ["lowercase", "short", "mixed", "tuned"])
def test_a_lake_with_any_spelling_writes_and_reads_on_every_path(no_aws_env, s3_server: S3Server, name: str) -> None:
    bucket = s3_server.create_bucket()
    spelled = spellings(s3_server.endpoint_url, ACCESS_KEY, SECRET_KEY, REGION)[name]
    lake = Lake(f"s3://{bucket}/lake", storage_options=spelled)
    start = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with use_lake(lake):
        Asset.batch_get_or_register_custom_assets(TUTORIAL_ASSETS[:3])
        assets = Asset.filter(ticker__in=["NVDA", "AAPL", "JPM"])
        node = SimulatedPrices(PriceSimulConfig(asset_list=assets, offset_start=start - dt.timedelta(days=DAYS + 1)))
        error, written = node.run()
    assert error is False and written.height == 3 * DAYS
    assert any(key.startswith(f"lake/tables/{node.storage_hash}/") for key in _bucket_objects(s3_server, bucket))

    # an independent reader of what delta-rs wrote
    stored = pl.from_arrow(DeltaTable(node.table_uri, storage_options=s3_server.storage_options).to_pyarrow_table())
    stored = stored.sort(["time_index", "unique_identifier"])

    frame = node.get_df_between_dates()  # native pyarrow reads through the lake's filesystem
    assert frame.select(stored.columns).sort(["time_index", "unique_identifier"]).equals(stored)
    # polars' readers: the lazy scan, and a new process's first read of files (max_retries as polars takes it)
    assert node.scan().collect().select(stored.columns).sort(["time_index", "unique_identifier"]).equals(stored)
    last = node.get_last_observation()
    expected_last = stored.group_by("unique_identifier").agg(pl.col("time_index").max()).sort("unique_identifier")
    assert last.select("unique_identifier", "time_index").sort("unique_identifier").equals(expected_last)
    assert node.update_statistics.max_time_index_value == stored["time_index"].max()
    assert node.run()[1].is_empty()  # statistics from the Delta log and file facts: nothing new

    record = TimeIndexMetaTable.get(identifier=SIMULATED_PRICES_IDENTIFIER, lake=lake)
    answer = record.run_query(f"SELECT count(*) AS n FROM {SIMULATED_PRICES_IDENTIFIER}")
    assert answer["ok"], answer["error"]
    assert answer["results"] == [{"n": 3 * DAYS}]
    found = TimeIndexMetaTable.description_search("simulated close prices", lake=lake)  # LanceDB on S3
    assert [hit["identifier"] for hit in found["results"]][:1] == [SIMULATED_PRICES_IDENTIFIER]


@pytest.mark.s3
def test_durations_without_a_unit_are_written_as_delta_rs_reads_them(no_aws_env, s3_server: S3Server) -> None:
    """``"5"`` passed lakenodes' check, then delta-rs failed the run mid-way ('failed to parse "5" as
    Duration', in whichever phase touched storage first): bare seconds are now written with a unit."""
    bucket = s3_server.create_bucket()
    options = {**spellings(s3_server.endpoint_url, ACCESS_KEY, SECRET_KEY, REGION)["short"], "timeout": "5",
               "connect_timeout": "2.5", "init_backoff": "0.1s", "max_backoff": "1"}
    lake = Lake(f"s3://{bucket}/lake", storage_options=options)
    assert {key: lake.storage_options[key] for key in ("timeout", "connect_timeout", "backoff_config.init_backoff",
                                                       "backoff_config.max_backoff")} == {
        "timeout": "5s", "connect_timeout": "2500ms", "backoff_config.init_backoff": "100ms",
        "backoff_config.max_backoff": "1s"}
    start = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with use_lake(lake):
        Asset.batch_get_or_register_custom_assets(TUTORIAL_ASSETS[:1])
        assets = Asset.filter(ticker__in=["NVDA"])
        node = SimulatedPrices(PriceSimulConfig(asset_list=assets, offset_start=start - dt.timedelta(days=DAYS + 1)))
        error, written = node.run()
    assert error is False and written.height == DAYS


@pytest.mark.s3
def test_an_unknown_option_is_refused_before_anything_is_written(no_aws_env, s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    options = {**spellings(s3_server.endpoint_url, ACCESS_KEY, SECRET_KEY, REGION)["short"], "endpoint_urll": "x"}
    with pytest.raises(LakeConfigurationError, match="'endpoint_urll' is not an S3 option"):
        with use_lake(f"s3://{bucket}/lake", options):
            SimulatedPrices(PriceSimulConfig(asset_list=[])).run()
    assert _bucket_objects(s3_server, bucket) == []
