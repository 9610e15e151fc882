"""A consumer whose S3 key may read the lake but not write it ("anyone can read the tables").

Real permissions: a moto server that checks every request against IAM after its setup calls
(``INITIAL_NO_AUTH_ACTION_COUNT``), a writer key allowed ``s3:*`` and a reader key allowed only
``s3:Get*``/``s3:List*``/``s3:Head*`` (moto names actions after the API calls, ``s3:ListObjectsV2``,
``s3:HeadObject``, which the wildcards cover as AWS's own names do). Every read of lakenodes works with
the reader's key and leaves the bucket exactly as it was (the caches reads store as a side effect, the
file facts and the search index, are refused soft); a command that must write fails with one line.
A read-only local lake (a tmpfs remounted ``ro``) is covered in tests/test_storage_errors.py.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from test_moved_lake import DailyConfig, DailyPrices, prices
from typer.testing import CliRunner

from lakenodes import (
    APIDataNode,
    DataNodeMetaData,
    Lake,
    StoragePermissionError,
    TimeIndexMetaTable,
    clear_caches,
)
from lakenodes._internal.afterwards import settle
from lakenodes.cli import app
from lakenodes.search import SearchIndexNotStoredWarning
from lakenodes.testing import REGION, S3Server, start_s3_server

pytestmark = [pytest.mark.s3, pytest.mark.slow]

_SETUP_CALLS = 13  # 4 users, 4 policies, 4 access keys, 1 bucket: then every request is checked
BUCKET = "read-only-lake"
READ = ["s3:Get*", "s3:Head*"]
# A deployment's read-only policy: s3:GetObject on the objects, s3:ListBucket on the bucket. AWS checks
# HeadObject against s3:GetObject and ListObjects(V2)/HeadBucket against s3:ListBucket; moto names the
# action after the API call, so those names are allowed beside them (nothing more: no s3:Get*)
GET_OBJECT = ["s3:GetObject", "s3:HeadObject"]
LIST_BUCKET = ["s3:ListBucket", "s3:ListObjectsV2", "s3:ListObjects", "s3:HeadBucket"]


def _allow(actions: list[str], resource: str = "*") -> dict[str, object]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def _user(iam, name: str, statements: list[dict[str, object]], endpoint: str) -> dict[str, str]:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"], "AWS_REGION": REGION, "AWS_ALLOW_HTTP": "true"}


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file where the server records every request it receives (moto's recorder), refused ones too."""
    return tmp_path_factory.mktemp("moto") / "requests.jsonl"


@pytest.fixture(scope="module")
def keys(recording: Path) -> Iterator[tuple[S3Server, str, dict[str, str], dict[str, str], dict[str, str], dict[str, str]]]:
    """(server, bucket, options of the writer, of a reader of the whole lake, of a reader of its tables
    only, of a key that may read objects but not list them)."""
    server = start_s3_server(environment={"INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_CALLS),
                                          "MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(recording)})
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint_url, region_name=REGION,
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        writer = _user(iam, "writer", [_allow(["s3:*"])], server.endpoint_url)
        reader = _user(iam, "reader", [_allow(GET_OBJECT, f"arn:aws:s3:::{BUCKET}/*"),
                                       _allow(LIST_BUCKET, f"arn:aws:s3:::{BUCKET}")], server.endpoint_url)
        tables = _user(iam, "tables", [_allow(["s3:List*"], f"arn:aws:s3:::{BUCKET}"),
                                       _allow(READ, f"arn:aws:s3:::{BUCKET}/published/tables/*")], server.endpoint_url)
        getter = _user(iam, "getter", [_allow(READ, f"arn:aws:s3:::{BUCKET}/*")], server.endpoint_url)
        _client(writer).create_bucket(Bucket=BUCKET)
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):  # the checks are on
            _client(reader).put_object(Bucket=BUCKET, Key="probe", Body=b"")
        yield server, BUCKET, writer, reader, tables, getter
    finally:
        server.stop()


def _client(options: dict[str, str]):
    return boto3.client("s3", endpoint_url=options["AWS_ENDPOINT_URL"], region_name=REGION,
                        aws_access_key_id=options["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=options["AWS_SECRET_ACCESS_KEY"])


def _writes_sent(recording: Path, options: dict[str, str], since: int) -> list[str]:
    """The URLs of the requests other than reads (GET, HEAD) that the key of ``options`` sent, from
    line ``since`` of the server's recording on."""
    sent = [json.loads(line) for line in recording.read_text().splitlines()[since:]]
    return [entry["url"] for entry in sent if entry["method"] not in ("GET", "HEAD")
            and f"Credential={options['AWS_ACCESS_KEY_ID']}/" in entry["headers"].get("Authorization", "")]


def _recorded(recording: Path) -> int:
    return len(recording.read_text().splitlines()) if recording.exists() else 0


def _objects(options: dict[str, str], bucket: str) -> dict[str, str]:
    """Every object of the bucket and its ETag."""
    pages = _client(options).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])}


def test_a_reader_key_reads_everything_and_writes_nothing(keys) -> None:
    _, bucket, writer_options, reader_options, *_ = keys
    writer = Lake(f"s3://{bucket}/lake", storage_options=writer_options)
    for _ in range(2):
        prices(writer).run()
    facts = [key for key in _objects(writer_options, bucket) if key.endswith("_lakenodes/file_facts.parquet")]
    _client(writer_options).delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in facts]})
    before = _objects(writer_options, bucket)  # no file facts, no search index: a read would store both
    clear_caches()  # the reader's own process

    reader = Lake(f"s3://{bucket}/lake", storage_options=reader_options)
    node: DailyPrices = prices(reader)
    assert node.get_df_between_dates().height == 8
    assert node.get_df_between_dates(unique_identifier_list=["MSFT"]).height == 4
    assert node.get_last_observation().height == 2
    assert node.compute_update_statistics().max_time_index_value == dt.datetime(2024, 1, 4, tzinfo=dt.UTC)
    assert node.scan().collect().height == 8
    assert node.get_df_between_dates(as_of=0).height == 4
    record = TimeIndexMetaTable.get(identifier="daily_prices", lake=reader)
    assert [entry["version"] for entry in record.history()] == [1, 0]
    assert record.run_query("SELECT count(*) AS n FROM daily_prices")["results"] == [{"n": 8}]
    assert APIDataNode.build_from_identifier("daily_prices", lake=reader).get_df_between_dates().height == 8
    with pytest.warns(SearchIndexNotStoredWarning, match=r"cannot be stored \(permission denied \(s3:PutObject\)\)"):
        hits = TimeIndexMetaTable.description_search("daily prices", lake=reader)["results"]
    assert [hit["storage_hash"] for hit in hits] == [node.storage_hash]

    cli = CliRunner()
    for command in (["data-node", "list"], ["data-node", "detail", "daily_prices"],
                    ["data-node", "history", "daily_prices"], ["updates", "list"], ["updates", "runs"],
                    ["data-node", "run-query", "daily_prices", "SELECT count(*) AS n FROM daily_prices"]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = cli.invoke(app, ["--lake", reader.uri, *command], env=reader_options)
        assert result.exit_code == 0 and not result.stderr, (command, result.stdout, result.stderr)
    searched = cli.invoke(app, ["--lake", reader.uri, "search", "daily prices"], env=reader_options)
    assert searched.exit_code == 0 and node.storage_hash in searched.stdout  # (warned once per process: above)

    assert _objects(writer_options, bucket) == before  # the bucket exactly as it was

    labelled = cli.invoke(app, ["--lake", reader.uri, "data-node", "add-label", "daily_prices", "fx"],
                          env=reader_options)
    assert labelled.exit_code == 1 and labelled.stderr.splitlines() == [
        f"error: StoragePermissionError: catalog append to tables failed: permission denied (s3:PutObject): "
        f"{reader.uri}/_catalog/tables"]
    with pytest.raises(StoragePermissionError, match="permission denied"):
        record.add_label("fx")
    assert _objects(writer_options, bucket) == before


def test_a_reader_sends_one_refused_cache_write_a_process_not_one_a_table(keys, recording: Path) -> None:
    """Tables whose file facts are missing or behind (after an ``optimize``, a tail delete, another
    engine's commit): a reader's statistics would store them for cold readers, and the store refuses.
    Regression: ``data-node list`` sent two refused PUTs a table (2,000 on a lake of 1,000 tables, on
    every listing until the writers ran again); now one a process."""
    _, bucket, writer_options, reader_options, *_ = keys
    writer = Lake(f"s3://{bucket}/facts", storage_options=writer_options)
    node = prices(writer)
    node.run()
    metadata = DataNodeMetaData(identifier="other_prices", description="daily prices again")
    other = DailyPrices(DailyConfig(name="q", node_metadata=metadata), lake=writer)
    other.run()
    settle()  # the writer's saves of the file facts, left for after its runs, landed
    client = _client(writer_options)
    for table in (node, other):
        client.delete_object(Bucket=bucket, Key=f"facts/tables/{table.storage_hash}/_lakenodes/file_facts.parquet")
    clear_caches()  # the reader's own process

    since = _recorded(recording)
    listed = CliRunner().invoke(app, ["--lake", f"s3://{bucket}/facts", "data-node", "list"], env=reader_options)
    assert listed.exit_code == 0 and not listed.stderr, listed.stderr
    reader = Lake(f"s3://{bucket}/facts", storage_options=reader_options)
    for identifier in ("daily_prices", "other_prices"):
        assert APIDataNode.build_from_identifier(identifier, lake=reader).get_last_observation().height == 2
    settle()  # the saves left for after the reads
    [refused] = _writes_sent(recording, reader_options, since)
    assert refused.endswith("/_lakenodes/file_facts.parquet")


def test_a_reader_refreshing_the_search_index_is_told_how_to_search_anyway(keys) -> None:
    """Storing the index needs write access; the one line saying so also says what works instead.
    Regression: it ended at the index's path, leaving a reader to guess that a plain search works."""
    _, bucket, writer_options, reader_options, *_ = keys
    prices(Lake(f"s3://{bucket}/searched", storage_options=writer_options)).run()
    clear_caches()
    uri, cli = f"s3://{bucket}/searched", CliRunner()
    advice = ("; a search works without it (`lakenodes search Q` builds the index in memory); "
              "to store the index, refresh it as someone who may write to the lake")
    for command, operation in ((["search", "--refresh", "prices"], "rebuild"),
                               (["data-node", "refresh-search-index", "daily_prices"], "refresh")):
        result = cli.invoke(app, ["--lake", uri, *command], env=reader_options)
        assert result.exit_code == 1 and result.stderr.splitlines() == [
            f"error: StoragePermissionError: search index {operation} failed: permission denied (s3:PutObject): "
            f"{uri}/_catalog/search{advice}"], result.stderr
    searched = cli.invoke(app, ["--lake", uri, "search", "prices"], env=reader_options)
    assert searched.exit_code == 0 and "daily_prices" in searched.stdout


def test_a_key_that_may_read_the_tables_but_not_the_catalog(keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """"Anyone can read the tables", the catalog kept private: the tables read, and every command that
    needs the catalog says so in one line. Regression: ``updates runs`` printed pyarrow's raw ``OSError:
    When reading information for key '.../_catalog/runs/_lakenodes/pending/<id>.parquet' ... AWS Error
    ACCESS_DENIED during HeadObject operation: No response body.`` (a HEAD's 403 has no body to name it)."""
    _, bucket, writer_options, _, tables_options, _ = keys
    # the run stays a pending file (a fold, one run in 20 by chance, would leave the reader no pending
    # file to be refused: its refusal then names the runs table itself; seen once in CI)
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "0")
    prices(Lake(f"s3://{bucket}/published", storage_options=writer_options)).run()
    clear_caches()
    lake = Lake(f"s3://{bucket}/published", storage_options=tables_options)
    node = prices(lake)
    assert node.get_df_between_dates().height == 4 and node.get_last_observation().height == 2

    cli = CliRunner()
    for command, catalog_table in ((["updates", "runs"], "runs/_lakenodes/pending"), (["data-node", "list"], "tables"),
                                   (["updates", "list"], "tables"), (["search", "prices"], "tables")):
        result = cli.invoke(app, ["--lake", lake.uri, *command], env=tables_options)
        [line] = result.stderr.splitlines()
        assert result.exit_code == 1 and line.startswith("error: StoragePermissionError: "), (command, result.stderr)
        assert line.endswith(f"failed: permission denied (s3:GetObject): {lake.uri}/_catalog/{catalog_table}"), (command, line)


def test_a_refusal_names_the_s3_permission_the_request_needs(keys) -> None:
    """Which of the policy's permissions is missing, in the one line: listing (``s3:ListBucket``: every
    Delta read lists the table's log first), reading (``s3:GetObject``), writing (``s3:PutObject``).
    Regression: every refusal read ``permission denied: <path>``, whichever the request."""
    _, bucket, writer_options, reader_options, tables_options, getter_options = keys
    writer = Lake(f"s3://{bucket}/named", storage_options=writer_options)
    node = prices(writer)
    node.run()
    clear_caches()
    uri = f"s3://{bucket}/named"
    cli = CliRunner()
    for options, command, action, path in (
            (getter_options, ["data-node", "list"], "s3:ListBucket", "_catalog/tables"),
            (tables_options, ["data-node", "list"], "s3:GetObject", "_catalog/tables"),
            (reader_options, ["data-node", "add-label", "daily_prices", "fx"], "s3:PutObject", "_catalog/tables")):
        result = cli.invoke(app, ["--lake", uri, *command], env=options)
        assert result.exit_code == 1 and result.stderr.splitlines()[-1].endswith(
            f" failed: permission denied ({action}): {uri}/{path}"), (command, result.stderr)
    with pytest.raises(StoragePermissionError, match=rf"permission denied \(s3:ListBucket\): {uri}/tables/"):
        APIDataNode(node.storage_hash, lake=Lake(uri, storage_options=getter_options)).get_df_between_dates()


def test_a_public_bucket_is_read_without_credentials(s3_server: S3Server) -> None:
    """A bucket whose policy lets anyone read (``Principal: *``), read with ``AWS_SKIP_SIGNATURE=true``
    and no keys at all, by every lakenodes I/O path (delta-rs and pyarrow's anonymous reads)."""
    lake = s3_server.new_lake("public")
    bucket = lake.uri.split("/")[2]
    prices(lake).run()
    _client(s3_server.storage_options).put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{**_allow([*READ, "s3:List*"], f"arn:aws:s3:::{bucket}*"),
                                                "Principal": "*"}]}))
    clear_caches()
    anonymous = {"AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_SKIP_SIGNATURE": "true", "AWS_REGION": REGION,
                 "AWS_ALLOW_HTTP": "true"}
    public = Lake(lake.uri, storage_options=anonymous)

    node = prices(public)
    assert node.get_df_between_dates().height == 4 and node.compute_update_statistics().max_time_index_value
    record = TimeIndexMetaTable.get(identifier="daily_prices", lake=public)
    assert record.run_query("SELECT count(*) AS n FROM daily_prices")["results"] == [{"n": 4}]
    env = {**anonymous, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    for command in (["data-node", "list"], ["updates", "runs"]):
        result = CliRunner().invoke(app, ["--lake", public.uri, *command], env=env)
        assert result.exit_code == 0 and not result.stderr, (command, result.stdout, result.stderr)
    assert node.update_hash in result.stdout  # the run, read from its pending record
