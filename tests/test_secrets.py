"""Where S3 credentials go: never into an error, a log line, a ``repr``, a CLI output or the lake.

An operator gives a distinctive secret key and session token (storage options, AWS_* variables,
the CLI's environment) and greps every output lakenodes makes for them.
"""

from __future__ import annotations

import logging

import boto3
import pytest
from typer.testing import CliRunner

from lakenodes import Lake, LakeConfigurationError
from lakenodes.cli import app
from lakenodes.testing import REGION, S3Server

SECRET = "SECRETabc123XYZ"
TOKEN = "TOKENqwe987"
KEY_ID = "AKIAKEYID42"
runner = CliRunner()


def credentials(server: S3Server) -> dict[str, str]:
    """The server's options with the distinctive key pair and session token (moto accepts any key)."""
    return {**server.storage_options, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_SESSION_TOKEN": TOKEN}


def assert_hidden(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and TOKEN not in text, text


def bucket_keys(server: S3Server, bucket: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id="setup",
                          aws_secret_access_key="setup", region_name=REGION)
    return [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_lake_uri_holding_credentials_is_refused_without_showing_them(s3_server, monkeypatch, caplog):
    """Regression: ``--lake s3://AKIA:secret@bucket/lake`` was taken as the bucket 'AKIA:secret@bucket':
    ``repr(Lake)``, the DEBUG log and every error (``no bucket 'AKIA:SECRET...@b'``, the --json document)
    showed the secret. Now it is refused before anything is reached, masked as ``***``."""
    caplog.set_level(logging.DEBUG)
    bucket = s3_server.create_bucket()
    for uri in (f"s3://{KEY_ID}:{SECRET}@{bucket}/lake", f"s3://{KEY_ID}:wJa/{SECRET}@{bucket}/lake",
                f"s3a://{TOKEN}@{bucket}/lake"):
        with pytest.raises(LakeConfigurationError) as refused:
            Lake(uri, storage_options=credentials(s3_server))
        assert f"://***@{bucket}/lake' holds credentials" in str(refused.value)
        assert_hidden(str(refused.value), repr(refused.value))
        for env in ({"LAKENODES_URI": None}, {"LAKENODES_URI": uri}):
            for flags in ([], ["--json", "--verbose"]):
                lake_option = ["--lake", uri] if env["LAKENODES_URI"] is None else []
                for command in (["data-node", "list"], ["run", "examples.tutorial_nodes:DailyRandomNumber",
                                                        "--config", '{"mean": 0}']):
                    result = runner.invoke(app, [*lake_option, *flags, *command],
                                           env={**env, **credentials(s3_server)})
                    assert result.exit_code == 2, (result.stdout, result.stderr)
                    assert "holds credentials" in result.stderr
                    assert_hidden(result.stdout, result.stderr)
    assert_hidden(caplog.text)
    assert bucket_keys(s3_server, bucket) == []
    # a prefix holding "@" names no user
    assert Lake(f"s3://{bucket}/team@x/lake", storage_options=credentials(s3_server)).uri.endswith("/team@x/lake")


def test_an_endpoint_holding_credentials_is_refused_without_showing_them(s3_server, caplog):
    """Regression: AWS_ENDPOINT_URL=http://user:secret@host:port was accepted (S3 ignores a URL's user:
    pyarrow's reads then failed on the host name 'user:secret@host'), and one with a path or another
    scheme was refused quoting the secret. Now each is refused, masked as ``***``, on every path in."""
    caplog.set_level(logging.DEBUG)
    bucket = s3_server.create_bucket()
    host = s3_server.endpoint_url.split("://", 1)[1]
    for endpoint in (f"http://{KEY_ID}:{SECRET}@{host}", f"http://minio:wJa/{SECRET}@{host}",
                     f"http://{KEY_ID}:{SECRET}@{host}/path", f"ftp://{TOKEN}@{host}"):
        options = {**credentials(s3_server), "AWS_ENDPOINT_URL": endpoint}
        for spelling in ("AWS_ENDPOINT_URL", "endpoint"):
            given = {**{key: value for key, value in options.items() if key != "AWS_ENDPOINT_URL"}, spelling: endpoint}
            with pytest.raises(LakeConfigurationError) as refused:
                Lake(f"s3://{bucket}/lake", storage_options=given)
            assert f"AWS_ENDPOINT_URL '{endpoint.split('://')[0]}://***@{host}" in str(refused.value)
            assert "holds credentials" in str(refused.value)
            assert_hidden(str(refused.value), repr(refused.value))
        for flags in ([], ["--json", "--verbose"]):
            for command in (["data-node", "list"], ["data-node", "detail", "anything"]):
                result = runner.invoke(app, ["--lake", f"s3://{bucket}/lake", *flags, *command], env=options)
                assert result.exit_code == 2, (result.stdout, result.stderr)
                assert "holds credentials" in result.stderr
                assert_hidden(result.stdout, result.stderr)
    assert_hidden(caplog.text)
    assert bucket_keys(s3_server, bucket) == []
