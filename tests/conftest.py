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
