"""Test helpers for lakenodes users: a real moto S3 server on 127.0.0.1 and temporary lakes.

An opt-in pytest plugin (``pytest_plugins = ["lakenodes.testing"]`` in a ``conftest.py``, or
``pytest -p lakenodes.testing``), so projects that only install lakenodes pay nothing at pytest
start-up. Its fixtures need lakenodes' ``test`` extra (pytest and moto):

- ``s3_server``: a moto S3 server for the session (``S3Server`` with ``endpoint_url``).
- ``s3_lake``: a fresh bucket on that server, active as the lake for the test.
- ``local_lake``: a fresh local lake in ``tmp_path``, active for the test.

Example:
    >>> def test_my_node(s3_lake):
    ...     err, df = MyNode(MyConfig()).run()
    ...     assert err is False

Without pytest (scripts, benchmarks), the helpers work on their own; they need ``moto[server]``::

    with running_s3_server() as server:
        lake = server.new_lake()

pytest is imported only to define the fixtures: ``import lakenodes.testing`` works without it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._internal.afterwards import settle
from .lake.location import Lake, use_lake

try:
    import pytest
except ModuleNotFoundError:  # a plain `pip install lakenodes`: the helpers work, the fixtures are not defined
    _HAVE_PYTEST = False
else:
    _HAVE_PYTEST = True

ACCESS_KEY = "lakenodes-test"
SECRET_KEY = "lakenodes-test-secret"
REGION = "us-east-1"
_bucket_numbers = itertools.count()
_FIXTURES = ("s3_server", "s3_lake", "local_lake", "any_lake")
_SERVER_MODULES = ("moto", "flask", "flask_cors")  # moto.server needs the last two (moto[server])


def __getattr__(name: str) -> Any:
    if name in _FIXTURES and not _HAVE_PYTEST:
        raise ModuleNotFoundError(
            f"lakenodes.testing.{name} is a pytest fixture and pytest is not installed: "
            "pip install 'lakenodes[test]'", name="pytest")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _require_server_modules() -> None:
    missing = [module for module in _SERVER_MODULES if importlib.util.find_spec(module) is None]
    if missing:
        raise ModuleNotFoundError(
            f"the S3 server of lakenodes.testing runs moto, and {', '.join(missing)} cannot be imported: "
            "pip install 'lakenodes[test]' (or 'moto[server]')", name=missing[0])


@dataclass
class S3Server:
    """A running moto S3 server (its own process, like a real object store)."""

    endpoint_url: str
    _process: subprocess.Popen

    @property
    def storage_options(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    @property
    def env(self) -> dict[str, str]:
        """Environment for a child process to reach this server (standard AWS variables)."""
        return dict(self.storage_options)

    def create_bucket(self, name: str | None = None) -> str:
        _require_server_modules()  # boto3 comes with moto
        import boto3

        name = name or f"lake-{os.getpid()}-{next(_bucket_numbers)}"
        boto3.client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name=REGION,
        ).create_bucket(Bucket=name)
        return name

    def new_lake(self, prefix: str = "lake") -> Lake:
        """A lake in a fresh bucket of this server."""
        return Lake(f"s3://{self.create_bucket()}/{prefix}", storage_options=self.storage_options)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()


def start_s3_server(timeout: float = 60.0, environment: dict[str, str] | None = None) -> S3Server:
    """Start a moto S3 server process on a free port of 127.0.0.1 (stop it with ``.stop()``);
    ``environment``: moto settings for the server, e.g. ``{"INITIAL_NO_AUTH_ACTION_COUNT": "1"}``
    (check every request's keys after the first, as a real store does).

    A separate process rather than a thread: some delta-rs calls (e.g. ``DeltaTable.history``)
    hold the GIL while waiting on the network, which would deadlock an in-process server. Its
    conditional writes (``If-None-Match``, how Delta writers claim a log version) are atomic, as
    S3's are (``lakenodes._moto_server``).
    """
    _require_server_modules()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "lakenodes._moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(environment or {})},
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return S3Server(endpoint_url=endpoint, _process=process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"moto server did not start on {endpoint} within {timeout:.0f}s")


@contextlib.contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """A moto S3 server for the duration of a ``with`` block (benchmarks, scripts)."""
    server = start_s3_server()
    try:
        yield server
    finally:
        settle()  # the saves runs left for after they returned land while the server still answers
        server.stop()


if _HAVE_PYTEST:  # the pytest plugin proper

    @pytest.fixture(scope="session")
    def s3_server() -> Iterator[S3Server]:
        """A moto S3 server on 127.0.0.1 for the whole test session."""
        with running_s3_server() as server:
            yield server

    @pytest.fixture
    def s3_lake(s3_server: S3Server) -> Iterator[Lake]:
        """A fresh S3 lake (new bucket on the moto server), active for the test."""
        lake = s3_server.new_lake()
        with use_lake(lake):
            yield lake

    @pytest.fixture
    def local_lake(tmp_path) -> Iterator[Lake]:
        """A fresh local lake under ``tmp_path``, active for the test."""
        lake = Lake(tmp_path / "lake")
        with use_lake(lake):
            yield lake

    @pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
    def any_lake(request) -> Iterator[Lake]:
        """The test runs twice: on a local lake and on a moto S3 lake."""
        if request.param == "local":
            lake = Lake(request.getfixturevalue("tmp_path") / "lake")
        else:
            lake = request.getfixturevalue("s3_server").new_lake()
        with use_lake(lake):
            yield lake
