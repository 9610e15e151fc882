"""Shared fixtures. ``lakenodes.testing`` (an opt-in pytest plugin) provides s3_server, s3_lake, local_lake, any_lake."""

from __future__ import annotations

import logging

import pytest

pytest_plugins = ["lakenodes.testing"]

# the seeds' tutorial project: tests/test_seeds.py runs its launchers and tests in subprocesses
collect_ignore = ["seed_project"]


@pytest.fixture(autouse=True)
def _quiet_moto_logs():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    yield
