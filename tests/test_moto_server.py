"""The test suite's S3 server keeps S3's promise that Delta writers rely on: of the writers putting
the same key with ``If-None-Match: *`` at once, exactly one succeeds.

``test_the_servers_conditional_writes_run_one_at_a_time`` checks the guard itself;
``test_of_writers_racing_for_a_key_exactly_one_wins`` the server (the race shows under load only).

Regression (a CI failure of test_concurrent_appenders_and_restaters_on_s3: an updater's catalog
record gone after 12 processes wrote one lake): moto checks the condition, then stores the object,
and its threaded server let two writers between those steps; both believed they committed the
same Delta log version, the second commit overwriting the first. Plain moto let 3 of 100 keys
have two winners here (16 writers each); ``lakenodes._moto_server`` makes the two steps one."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lakenodes._moto_server import CONDITIONAL_WRITERS, make_writes_atomic
from lakenodes.testing import S3Server

WRITERS = 16
KEYS = 40
BODY_BYTES = 1 << 18  # moto hashes the body between its check and its write (hashlib lets other threads run)


def test_the_servers_conditional_writes_run_one_at_a_time() -> None:
    """The guard wraps handlers moto has (a renamed one fails here, not as a rare lost commit), and
    no two writes run at once."""
    from moto.s3.responses import S3Response

    assert all(callable(getattr(S3Response, name, None)) for name in CONDITIONAL_WRITERS)
    running, most = [0], [0]
    counting = threading.Lock()

    def handler(self, *args):
        with counting:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        with counting:
            running[0] -= 1
        return args

    response_class = type("Response", (), dict.fromkeys(CONDITIONAL_WRITERS, handler))
    make_writes_atomic(response_class)
    handlers = [getattr(response_class(), name) for name in CONDITIONAL_WRITERS]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda n: handlers[n % 2](n), range(16))) == [(n,) for n in range(16)]
    assert most == [1]


@pytest.mark.slow
@pytest.mark.s3
def test_of_writers_racing_for_a_key_exactly_one_wins(s3_server: S3Server) -> None:
    import boto3
    import botocore.config
    import botocore.exceptions

    bucket = s3_server.create_bucket()
    options = s3_server.storage_options
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name=options["AWS_REGION"],
                          aws_access_key_id=options["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=options["AWS_SECRET_ACCESS_KEY"],
                          config=botocore.config.Config(max_pool_connections=WRITERS, retries={"max_attempts": 1}))

    def put(key: str, writer: int) -> bool:
        try:
            client.put_object(Bucket=bucket, Key=key, Body=f"{writer}".encode() * BODY_BYTES, IfNoneMatch="*")
        except botocore.exceptions.ClientError as error:
            assert error.response["Error"]["Code"] == "PreconditionFailed", error
            return False
        return True

    winners = {}
    with ThreadPoolExecutor(WRITERS) as pool:
        for number in range(KEYS):
            key = f"_delta_log/{number:020d}.json"
            winners[key] = sum(pool.map(lambda writer, key=key: put(key, writer), range(WRITERS)))
    assert [key for key, count in winners.items() if count != 1] == []
