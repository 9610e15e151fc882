"""Shared fixtures. ``lakenodes.testing`` (an opt-in pytest plugin) provides s3_server, s3_lake, local_lake, any_lake."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from lakenodes._internal.afterwards import settle

if TYPE_CHECKING:
    from lakenodes import Lake

pytest_plugins = ["lakenodes.testing"]

# the seeds' tutorial project: tests/test_seeds.py runs its launchers and tests in subprocesses
collect_ignore = ["seed_project"]


@pytest.fixture(autouse=True)
def _quiet_moto_logs_and_settle_saves():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    yield
    settle()  # a test's saves left for after its runs (S3 file facts) land before the next test patches anything


@pytest.fixture
def aws_env(any_lake: Lake, monkeypatch, request) -> Lake:
    """The S3 server's standard AWS variables in the environment (nothing for a local lake)."""
    if not any_lake.is_local:
        for key, value in request.getfixturevalue("s3_server").env.items():
            monkeypatch.setenv(key, value)
    return any_lake


@pytest.fixture
def duck(any_lake: Lake):
    """A DuckDB connection with ``delta`` (and for S3 ``httpfs`` plus a secret) loaded from the PyPI
    extension packages (tests/test_interop.py); no downloads."""
    import duckdb
    from test_interop import extension_path, s3_secret_sql

    delta = extension_path("delta")
    httpfs = None if any_lake.is_local else extension_path("httpfs")
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"LOAD '{delta}'")
    if httpfs is not None:
        con.execute(f"LOAD '{httpfs}'")
        con.execute(s3_secret_sql(any_lake.storage_options))
    yield con
    con.close()
