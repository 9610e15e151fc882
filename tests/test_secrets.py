"""Where S3 credentials go: never into an error, a log line, a ``repr``, a CLI output or the lake.

An operator gives a distinctive secret key and session token (storage options, AWS_* variables,
the CLI's environment) and greps every output lakenodes makes for them.
"""

from __future__ import annotations

import datetime
import http.server
import logging
import multiprocessing
import tempfile
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import boto3
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from examples.tutorial_nodes import RandomDataNodeConfig
from lakenodes import (
    DataNode,
    Lake,
    LakeConfigurationError,
    NodeRunError,
    TimeIndexMetaTable,
    run_many,
    use_lake,
)
from lakenodes._internal.afterwards import settle
from lakenodes.cli import app
from lakenodes.testing import REGION, S3Server

SECRET = "SECRETabc123XYZ"
TOKEN = "TOKENqwe987"
KEY_ID = "AKIAKEYID42"
runner = CliRunner()
# what S3 answers a request signed with an expired session token: the token it was sent, quoted
EXPIRED = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>ExpiredToken</Code><Message>The provided token has '
           'expired.</Message><Token-0>{token}</Token-0><RequestId>R</RequestId><HostId>H</HostId></Error>')


def credentials(server: S3Server) -> dict[str, str]:
    """The server's options with the distinctive key pair and session token (moto accepts any key)."""
    return {**server.storage_options, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_SESSION_TOKEN": TOKEN}


def assert_hidden(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and TOKEN not in text, text


def s3_client(server: S3Server):
    return boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id="setup",
                        aws_secret_access_key="setup", region_name=REGION)


def bucket_keys(server: S3Server, bucket: str) -> list[str]:
    return [item["Key"] for item in s3_client(server).list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_lake_uri_holding_credentials_is_refused_without_showing_them(s3_server, caplog):
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


def test_a_password_holding_an_at_sign_is_masked_whole():
    """Regression: a password holding "@" (``minio:p@ss...@host``) was masked up to its own "@" only:
    the refusal of the lake URI or endpoint showed the rest of it."""
    password = f"p@ss-{SECRET}"
    refusals = []
    for uri, options in [(f"s3://{KEY_ID}:{password}@bucket/lake", {}),
                         ("s3://bucket/lake", {"AWS_ENDPOINT_URL": f"http://minio:{password}@127.0.0.1:9000",
                                               "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": "x" * 40,
                                               "AWS_REGION": REGION})]:
        with pytest.raises(LakeConfigurationError, match="holds credentials") as refused:
            Lake(uri, storage_options=options)
        refusals.append(str(refused.value))
    assert_hidden(*refusals)
    assert "'s3://***@bucket/lake'" in refusals[0] and "'http://***@127.0.0.1:9000'" in refusals[1]


class _ExpiredSession(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = EXPIRED.format(token=self.headers.get("x-amz-security-token", "")).encode()
        self.send_response(400)
        self.send_header("content-type", "application/xml")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = answer


@pytest.fixture
def expired_session() -> Iterator[dict[str, str]]:
    """The storage options of an S3 endpoint answering every request as AWS does once the session
    token has expired: 400 ExpiredToken, its body quoting the token it was sent (``<Token-0>``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ExpiredSession)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}", "AWS_ACCESS_KEY_ID": KEY_ID,
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN, "AWS_REGION": REGION, "AWS_ALLOW_HTTP": "true",
           "max_retries": "0"}
    server.shutdown()
    server.server_close()


class Numbers(DataNode):
    """One random number a day (DailyRandomNumber, which takes no ``lake=``)."""

    def dependencies(self):
        return {}

    def update(self):
        return pl.DataFrame({"time_index": [datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)],
                             "random_number": [0.5]})


class FromAnotherLake(Numbers):
    """Copies the numbers of a node in another lake (reached with that lake's own keys)."""

    def __init__(self, config: RandomDataNodeConfig, *, upstream: Lake, **kwargs):
        super().__init__(config, **kwargs)
        self.upstream = upstream

    def dependencies(self):
        return {"numbers": Numbers(RandomDataNodeConfig(mean=0), lake=self.upstream)}

    def update(self):
        return self.dependencies()["numbers"].get_df_between_dates()


def full_text(error: BaseException) -> str:
    """What Python prints for ``error``: its traceback, with every error it was raised from."""
    return "".join(traceback.format_exception(error))


def test_an_expired_session_token_quoted_by_s3_is_shown_nowhere(s3_server, expired_session, caplog):
    """Regression: S3 answers a request signed with an expired session token with ExpiredToken, quoting the
    token (<Token-0>). delta-rs puts that body in its error, and lakenodes showed it as it was: in the
    exception of run() and of catalog reads, the CLI's error line, its --json document and --verbose
    traceback, and in the run record a failed dependency in another lake left in this lake's catalog.
    Now the token shows as *** everywhere, and a remembered secret never shows."""
    caplog.set_level(logging.DEBUG)
    expired = Lake("s3://bucket/lake", storage_options=expired_session)
    with pytest.raises(NodeRunError) as failed:
        Numbers(RandomDataNodeConfig(mean=0), lake=expired).run()
    assert "ExpiredToken" in str(failed.value) and "<Token-0>***</Token-0>" in str(failed.value)
    assert_hidden(str(failed.value), repr(failed.value), full_text(failed.value))
    with use_lake(expired), pytest.raises(OSError) as refused:
        TimeIndexMetaTable.filter()
    assert_hidden(str(refused.value), full_text(refused.value))

    for command in (["data-node", "list"], ["updates", "list"], ["search", "random"],
                    ["run", "examples.tutorial_nodes:DailyRandomNumber", "--config", '{"mean": 0}']):
        for flags in ([], ["--json", "--verbose"]):
            result = runner.invoke(app, ["--lake", expired.uri, *flags, *command], env=expired_session)
            assert result.exit_code == 1, (result.stdout, result.stderr)
            assert "ExpiredToken" in result.stderr
            assert_hidden(result.stdout, result.stderr)

    here = s3_server.new_lake()  # a lake whose keys work, running a node that reads the expired one
    with pytest.raises(NodeRunError) as failed:
        FromAnotherLake(RandomDataNodeConfig(mean=1), lake=here, upstream=expired).run()
    assert_hidden(full_text(failed.value))
    records = DeltaTable(here.catalog_uri("runs"), storage_options=here.storage_options).to_pyarrow_table()
    assert "ExpiredToken" in str(records.column("error").to_pylist())
    assert_hidden(str(records.to_pylist()))
    result = runner.invoke(app, ["--lake", here.uri, "--json", "updates", "runs"], env=s3_server.env)
    assert result.exit_code == 0 and "ExpiredToken" in result.stdout, (result.stdout, result.stderr)
    assert_hidden(result.stdout, result.stderr, caplog.text)


class Careless(Numbers):
    """An update() whose error quotes the keys it was given."""

    def update(self):
        raise RuntimeError(f"vendor login failed with {self.lake.storage_options}")


def test_a_secret_an_error_quotes_is_recorded_and_shown_as_stars(s3_server):
    """Regression: a failing update() (or library) quoting the lake's options put the secret key and the
    session token in the exception, the CLI's outputs and the run record every reader of the lake sees.
    Every secret a lake was given now shows as ***."""
    bucket = s3_server.create_bucket()
    lake = Lake(f"s3://{bucket}/lake", storage_options=credentials(s3_server))
    node = Careless(RandomDataNodeConfig(mean=2), lake=lake)
    with pytest.raises(NodeRunError) as failed:
        node.run()
    assert "'AWS_SECRET_ACCESS_KEY': '***'" in str(failed.value)
    assert_hidden(full_text(failed.value))
    # a process pool's worker records its failed run itself, with the lake it unpickled
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool, \
            pytest.raises(NodeRunError) as failed:
        run_many([node], executor=pool)
    assert_hidden(full_text(failed.value))
    result = runner.invoke(app, ["--lake", lake.uri, "--json", "updates", "runs"], env=credentials(s3_server))
    assert result.exit_code == 0 and result.stdout.count("'AWS_SESSION_TOKEN': '***'") == 2, (result.stdout,
                                                                                               result.stderr)
    settle()
    assert_hidden(result.stdout, result.stderr, *dict(_lake_texts(s3_server, bucket)).values())


def _lake_texts(server: S3Server, bucket: str) -> Iterator[tuple[str, str]]:
    """Every object of the bucket as text: Parquet files (compressed) as their rows, the rest as bytes."""
    client = s3_client(server)
    for key in bucket_keys(server, bucket):
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key.endswith(".parquet"):
            yield key, str(pq.read_table(pa.BufferReader(data)).to_pylist())
        yield key, data.decode("latin-1")


def test_credentials_appear_nowhere_lakenodes_writes_logs_or_prints(s3_server, monkeypatch, tmp_path, caplog):
    """The operator's audit: a lake reached with a secret key and session token (from the AWS_*
    variables and from storage options), run, read, searched and maintained from Python and from every
    CLI command, with and without --json and --verbose, at DEBUG level: the secret and the token appear
    in no log line, repr, dump or output, no object of the lake (tables, catalog, commit info, run
    records, file facts, search index) and no file under HOME or the temporary folder; a rotated key
    keeps the node's hashes and tables."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    for key, value in credentials(s3_server).items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.create_bucket()
    lake = Lake(f"s3://{bucket}/lake")  # keys from the environment
    assert lake.storage_options["AWS_SESSION_TOKEN"] == TOKEN
    node = Numbers(RandomDataNodeConfig(mean=3), lake=lake, hash_namespace="audit")  # the CLI runs the tutorial's
    shown = [repr(lake), str(lake), repr(node), str(node), repr(node.config), str(node.config.model_dump()),
             node.config.model_dump_json(), repr(node.store), str(node.store.__dict__.keys())]
    shown.append(str(node.run()))
    shown += [repr(node.update_statistics), str(node.get_df_between_dates())]
    with use_lake(Lake(f"s3://{bucket}/lake", storage_options=credentials(s3_server))):
        table = TimeIndexMetaTable.get(identifier=node.config.node_metadata.identifier, namespace="audit")
        shown += [repr(table), str(table.model_dump()), table.model_dump_json(),
                  str(table.run_query(f"SELECT * FROM {table.identifier}")), str(table.history()),
                  str(TimeIndexMetaTable.description_search("random number"))]
    rotated = Lake(f"s3://{bucket}/lake", storage_options={**credentials(s3_server),
                                                           "AWS_SECRET_ACCESS_KEY": "ROTATEDsecret0", "AWS_SESSION_TOKEN": "ROTATEDtoken0"})
    again = Numbers(RandomDataNodeConfig(mean=3), lake=rotated, hash_namespace="audit")
    assert (again.update_hash, again.storage_hash) == (node.update_hash, node.storage_hash)
    assert again.get_df_between_dates().height == 1

    identifier = node.config.node_metadata.identifier
    commands = [["run", "examples.tutorial_nodes:DailyRandomNumber", "--config", '{"mean": 4}'],
                ["updates", "list"], ["updates", "runs"], ["updates", "reconcile"],
                ["updates", "clean", "--older-than", "90d", "--dry-run"], ["data-node", "list"],
                ["data-node", "detail", identifier], ["data-node", "org-unique-identifiers"],
                ["data-node", "run-query", identifier, f"SELECT * FROM {identifier}"],
                ["data-node", "history", identifier], ["data-node", "add-label", identifier, "daily"],
                ["data-node", "refresh-search-index", identifier], ["search", "random"], ["assets", "list"],
                ["data-node", "delete-after-date", identifier, "2030-01-01", "--dry-run"],
                ["optimize"], ["vacuum", "--dry-run"], ["data-node", "detail", "no_such_table"],
                ["data-node", "run-query", identifier, "DROP TABLE x"]]
    for command in commands:
        for flags in ([], ["--json", "--verbose"]):
            result = runner.invoke(app, ["--lake", lake.uri, *flags, *command])
            assert result.exit_code == (2 if "no_such_table" in command or "DROP TABLE x" in command else 0), (
                command, result.stdout, result.stderr)
            shown += [result.stdout, result.stderr]
    settle()
    assert_hidden(*shown, caplog.text)
    texts = dict(_lake_texts(s3_server, bucket))
    assert any("_catalog/search" in key for key in texts) and any("_lakenodes/" in key for key in texts)
    written = [path.read_bytes().decode("latin-1") for path in tmp_path.rglob("*") if path.is_file()]
    assert_hidden(*texts.values(), *written)
    assert not any(KEY_ID in text for text in [*texts.values(), *written])  # nor the access key id
