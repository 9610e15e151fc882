"""The seeds' tutorial code (tests/seed_project: 001 and 000, imports changed, nothing else) runs as
a Main Sequence user runs it: launcher scripts and the seeds' own pytest files, in subprocesses, with
the one switch ``LAKENODES_FRAME=pandas``, on a local lake and on a moto S3 lake."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lakenodes import Asset, Lake, TimeIndexMetaTable, use_lake

SEED_PROJECT = Path(__file__).parent / "seed_project"
TUTORIAL_ASSETS = [
    {"unique_identifier": uid, "snapshot": {"name": uid, "ticker": uid}} for uid in ("NVDA", "AAPL", "JPM", "GS")
]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def seed_run(request, tmp_path):
    """Run a seed script or the seed's pytest in a copy of the project against a fresh lake."""
    project = tmp_path / "project"
    shutil.copytree(SEED_PROJECT, project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAKENODES_", "PYTEST_"))}
    if request.param == "local":
        lake = Lake(tmp_path / "lake")
    else:
        server = request.getfixturevalue("s3_server")
        lake = server.new_lake()
        env.update(server.env)
    env.update({"LAKENODES_URI": lake.uri, "LAKENODES_FRAME": "pandas", "PYTHONPATH": str(project)})

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result

    run.lake = lake
    return run


def _updaters_of(run, storage_hash: str) -> set[str]:
    listed = json.loads(run("-m", "lakenodes", "updates", "list", "--json").stdout)
    return {row["update_hash"] for row in listed["results"] if row["storage_hash"] == storage_hash}


def test_tutorial_001_launchers_and_smoke_test(seed_run):
    seed_run("scripts/random_number_namespace_launcher.py")
    first = seed_run("scripts/random_number_launcher.py")
    assert "wrote 1 rows" in first.stderr  # node INFO lines show without configuring logging
    addition = seed_run("scripts/random_daily_addition_launcher.py")
    assert "random_number=" in addition.stderr and "dependency_noise=" in addition.stderr
    assert addition.stderr.count("random_number=") == 1
    seed_run("scripts/random_number_two_updaters_launcher.py")
    smoke = seed_run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_daily_random_number.py")
    assert "1 passed" in smoke.stdout

    with use_lake(seed_run.lake):
        table = TimeIndexMetaTable.get(identifier="example_random_number_local")
        rows = table.run_query(f"SELECT count(*) AS n FROM {table.storage_hash}")["results"]
    assert rows == [{"n": 1}]  # one day, one table, whichever updater wrote it
    assert len(_updaters_of(seed_run, table.storage_hash)) == 3  # default std, low vol, high vol


def test_tutorial_000_two_updaters_and_smoke_test(seed_run):
    with use_lake(seed_run.lake):
        Asset.batch_get_or_register_custom_assets(TUTORIAL_ASSETS)
    seed_run("scripts/simulated_prices_launcher.py")
    smoke = seed_run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_simulated_prices.py")
    assert "1 passed" in smoke.stdout

    with use_lake(seed_run.lake):
        table = TimeIndexMetaTable.get(identifier="simulated_prices_tutorial_local")
        result = table.run_query(
            f"SELECT unique_identifier, count(*) AS n FROM {table.storage_hash} GROUP BY 1 ORDER BY 1")
    counts = {row["unique_identifier"]: row["n"] for row in result["results"]}
    assert sorted(counts) == ["AAPL", "GS", "JPM", "NVDA"]
    assert len(set(counts.values())) == 1 and next(iter(counts.values())) > 300  # backfilled from 2024-01-01
    assert len(_updaters_of(seed_run, table.storage_hash)) == 2


def test_launcher_with_an_empty_asset_registry_warns(seed_run):
    """Seed 000's launcher on a fresh lake (no assets registered) says why nothing was written."""
    result = seed_run("scripts/simulated_prices_launcher.py")
    assert "get_asset_list() returned no assets" in result.stderr
