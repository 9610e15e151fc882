"""Storage timeouts: a store that accepts connections and never answers fails a run in seconds.

Regression: with object_store's own defaults (30 s per request, retried for up to 3 minutes) a
``DataNode.run()`` against such an endpoint failed only after minutes (363 s reported): every storage
operation took ~181 s, and a failing run makes two or three of them (here: the identifier claim's write
and read, then recording the failed run). lakenodes now gives every S3 lake ``DEFAULT_TIMEOUTS``
(connect 5 s, request 10 s, retries within 10 s) unless the storage options or the environment set them:
~10 s per operation, ~30 s for the run.

The silent endpoint is a real TCP server on 127.0.0.1 (a thread of this test process) that accepts
connections and holds them open without reading a byte; the node runs in a child process, bounded by
``subprocess.run(timeout=...)`` so a regression shows up as a failed test, not a hung suite.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from faultproxy import FaultProxy

from lakenodes import Lake, use_lake
from lakenodes.errors import LakeConfigurationError
from lakenodes.lake.client_options import DEFAULT_TIMEOUTS, pyarrow_s3_options
from lakenodes.search import lance_storage_options

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from examples.tutorial_nodes import DailyRandomNumber, RandomDataNodeConfig  # noqa: E402

# what a failing node run prints in the child: its exit status says whether it failed
CHILD = textwrap.dedent("""
    import json, sys, time
    from examples.tutorial_nodes import DailyRandomNumber, RandomDataNodeConfig
    from lakenodes import Lake, NodeRunError, use_lake

    options = json.loads(sys.argv[1]) or None
    started = time.monotonic()
    try:
        with use_lake(Lake("s3://bucket/lake", storage_options=options)):
            DailyRandomNumber(RandomDataNodeConfig(mean=0.0)).run()
    except NodeRunError as error:
        print(f"{time.monotonic() - started:.1f}s", *str(error).split())  # on one line, as the CLI shows it
        sys.exit(1)
    print("the run succeeded against a store that never answers")
""")


class SilentEndpoint:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers (nor closes it)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-endpoint", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self._held.append(connection)

    def __enter__(self) -> SilentEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        for connection in self._held:
            connection.close()
        self._thread.join(5)


@pytest.fixture
def silent_endpoint() -> Iterator[SilentEndpoint]:
    with SilentEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("AWS_") or name == "LAKENODES_URI":
            monkeypatch.delenv(name)
    return monkeypatch


def run_against(endpoint: SilentEndpoint, options: dict[str, str], deadline: float,
                logged: list[str] | None = None) -> tuple[float, str]:
    """Run a node on ``s3://bucket/lake`` at ``endpoint`` in a child process; (seconds, its one-line
    error). ``logged`` receives the child's stderr lines."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": endpoint.url, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "key",
                "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1"})
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(options)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=deadline)
    elapsed = time.monotonic() - started
    assert child.returncode == 1, (child.stdout, child.stderr[-2000:])
    if logged is not None:
        logged.extend(child.stderr.splitlines())
    lines = child.stdout.strip().splitlines()
    assert len(lines) == 1, child.stdout
    return elapsed, lines[0]


def assert_names_the_timeout(message: str, endpoint: SilentEndpoint) -> None:
    assert "failed during registration" in message
    assert endpoint.url in message
    assert "timed out" in message
    assert "\x1b[" not in message  # no terminal colours from delta-rs


# -- a node run against a silent store ---------------------------------------------------------------
def test_a_run_against_a_silent_store_fails_quickly_naming_the_endpoint_and_the_timeout(silent_endpoint):
    """Small timeouts given as storage options are what the clients use (the user's values win)."""
    logged: list[str] = []
    elapsed, message = run_against(silent_endpoint, {"timeout": "1s", "retry_timeout": "1s"}, deadline=60, logged=logged)
    assert_names_the_timeout(message, silent_endpoint)
    # regression: recording the failed run then waited out the same timeouts again (61 s with the defaults)
    assert any("the failed run is not recorded: the store did not answer in time" in line for line in logged), logged
    assert not any("could not record the failed run" in line for line in logged), logged
    print(f"silent store, timeout=1s: the run failed after {elapsed:.1f} s: {message[:300]}")


@pytest.mark.slow
def test_with_the_default_timeouts_a_run_against_a_silent_store_fails_within_a_minute(silent_endpoint):
    """No timeout set anywhere: DEFAULT_TIMEOUTS apply (was 363 s with object_store's defaults; ~40 s now).
    The subprocess deadline is only a hang guard."""
    elapsed, message = run_against(silent_endpoint, {}, deadline=90)
    assert_names_the_timeout(message, silent_endpoint)
    print(f"silent store, default timeouts: the run failed after {elapsed:.1f} s")


@pytest.mark.slow
@pytest.mark.s3
def test_the_default_timeouts_tolerate_a_slow_but_working_store(s3_server):
    """Answers that take 4 s (longer than pyarrow's own 3 s stall limit) do not fail a run."""
    bucket = s3_server.create_bucket()
    with FaultProxy(s3_server.endpoint_url, seed=3, slow=0.02, slow_seconds=4.0) as proxy:
        lake = Lake(f"s3://{bucket}/lake", {**s3_server.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url})
        with use_lake(lake):
            error, written = DailyRandomNumber(RandomDataNodeConfig(mean=0.0)).run()
    assert error is False and written.height == 1
    assert proxy.counts["slow"] >= 1, proxy.counts
    print(f"slow store: {dict(proxy.counts)}")


# -- where the defaults apply ------------------------------------------------------------------------------
def test_s3_lakes_get_the_default_timeouts_and_local_lakes_none(no_aws_env):
    assert DEFAULT_TIMEOUTS == {"connect_timeout": "5s", "timeout": "10s", "retry_timeout": "10s"}
    options = Lake("s3://bucket/lake", {"region": "eu-west-1"}).storage_options
    assert options == {"AWS_REGION": "eu-west-1", **DEFAULT_TIMEOUTS}
    assert Lake(Path("/tmp/local-lake")).storage_options == {}
    assert Lake("s3://bucket/lake", options).storage_options == options  # idempotent


def test_timeouts_set_by_the_user_win_over_the_defaults(no_aws_env):
    given = {"Timeout": "60s", "aws_connect_timeout": "2s", "RETRY_TIMEOUT": "3min", "max_retries": "4"}
    options = Lake("s3://bucket/lake", given).storage_options
    assert {key: options[key] for key in ("timeout", "connect_timeout", "retry_timeout", "max_retries")} == {
        "timeout": "60s", "connect_timeout": "2s", "retry_timeout": "3min", "max_retries": "4"}
    # the environment too: object_store's AWS_TIMEOUT / AWS_CONNECT_TIMEOUT, and AWS_RETRY_TIMEOUT / AWS_MAX_RETRIES
    no_aws_env.setenv("AWS_TIMEOUT", "45s")
    no_aws_env.setenv("AWS_RETRY_TIMEOUT", "90s")
    no_aws_env.setenv("AWS_MAX_RETRIES", "2")
    options = Lake("s3://bucket/lake").storage_options
    assert (options["timeout"], options["retry_timeout"], options["max_retries"]) == ("45s", "90s", "2")
    assert options["connect_timeout"] == DEFAULT_TIMEOUTS["connect_timeout"]
    assert Lake("s3://bucket/lake", {"timeout": "5s"}).storage_options["timeout"] == "5s"  # explicit over env


@pytest.mark.parametrize(("key", "value"), [("retry_timeout", "later"), ("connect_timeout", "-"), ("timeout", "1 week")])
def test_a_malformed_duration_is_refused_naming_the_option(no_aws_env, key, value):
    with pytest.raises(LakeConfigurationError, match=f"storage option {key} duration {value!r}"):
        Lake("s3://bucket/lake", {key: value})


# -- the same budget reaches pyarrow and LanceDB -------------------------------------------------------------
def test_pyarrow_reads_get_the_same_timeouts_and_a_bounded_number_of_attempts(no_aws_env):
    kwargs = pyarrow_s3_options(Lake("s3://bucket/lake").storage_options)
    assert (kwargs["connect_timeout"], kwargs["request_timeout"]) == (5.0, 10.0)
    assert isinstance(kwargs["retry_strategy"], pafs.AwsStandardS3RetryStrategy)
    assert kwargs["retry_strategy"].max_attempts == 2  # a hang is not repeated within 10 s; a 503 is, once

    def attempts(**options: str) -> int:
        return pyarrow_s3_options(Lake("s3://bucket/lake", options).storage_options)["retry_strategy"].max_attempts

    assert attempts(timeout="10s", retry_timeout="45s") == 5  # hangs retried as long as object_store would
    assert attempts(timeout="10s", retry_timeout="45s", max_retries="1") == 2
    assert attempts(max_retries="0") == 1
    assert attempts(timeout="30s", retry_timeout="1s") == 2  # one retry still, for a 503 SlowDown


def test_lancedb_gets_the_retry_budget_in_its_own_spelling(no_aws_env):
    lance = lance_storage_options(Lake("s3://bucket/lake", {"max_retries": "3"}).storage_options)
    assert lance["timeout"] == "10s" and lance["connect_timeout"] == "5s"  # object_store spellings LanceDB reads
    assert (lance["client_retry_timeout"], lance["client_max_retries"]) == ("10", "3")
