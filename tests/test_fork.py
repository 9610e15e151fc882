"""Processes forked from one that used lakenodes (``os.fork``, multiprocessing's ``fork`` start
method, Celery's prefork pool, gunicorn ``--preload``): a child never hangs silently.

Every fork here is bounded: a child that does not finish in time is killed and the test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lakenodes._internal.afterwards import afterwards, settle
from lakenodes._internal.background import in_background

CHILD_SECONDS = 30


def forked(child) -> int:
    """Fork; in the child call ``child()`` and exit 0 (1 if it raised); in the parent wait at most
    CHILD_SECONDS for the child's exit code (killed and -1 past that)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            child()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_SECONDS
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


def test_a_forked_child_runs_background_and_later_jobs_of_its_own():
    assert in_background(lambda: 6 * 7).result() == 42  # the parent's pools have threads now
    afterwards(lambda: None, "%s: %s", "parent job")
    settle()
    done = []

    def child() -> None:
        assert in_background(lambda: "background").result(timeout=CHILD_SECONDS / 3) == "background"
        afterwards(lambda: done.append("later"), "%s: %s", "child job")
        settle()
        assert done == ["later"]

    assert forked(child) == 0  # the old child waited forever for threads it did not have (-1)


FORKING_SCRIPT = '''
import datetime as dt, json, multiprocessing, os, sys
import polars as pl
import lakenodes
from lakenodes import DataNode, DataNodeConfiguration, Lake, TimeIndexMetaTable, use_lake


class Cfg(DataNodeConfiguration):
    name: str = "parent"


class Daily(DataNode):
    """One row a day."""

    def dependencies(self):
        return {}

    def update(self):
        last = self.update_statistics.max_time_index_value
        day = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) if last is None else last + dt.timedelta(days=1)
        return pl.DataFrame({"time_index": [day], "value": [1.0]})


def version():
    return TimeIndexMetaTable.get(storage_hash=Daily(Cfg()).storage_hash).stats()["version"]


def in_child(action):
    try:
        with use_lake(Lake()):
            if action == "run":
                Daily(Cfg()).run()
            elif action == "read":
                Daily(Cfg()).get_df_between_dates()
            else:
                TimeIndexMetaTable.filter()
        return action, "ok"
    except Exception as error:
        return action, f"{type(error).__name__}: {error}"


if __name__ == "__main__":
    fork = multiprocessing.get_context("fork")
    early = fork.Pool(1)  # forked while the parent had used nothing: its worker works
    with use_lake(Lake()):
        Daily(Cfg()).run()
        before = version()
    outcomes = {"early": early.map(in_child, ["run"])}
    early.close()
    early.join()
    with fork.Pool(2) as pool:  # forked after the parent ran a node
        outcomes["late"] = pool.map(in_child, ["run", "read", "list"])
    with use_lake(Lake()):
        outcomes["versions"] = [before, version()]
    print(json.dumps(outcomes))
'''


@pytest.mark.slow
def test_a_child_forked_after_the_parent_used_the_lake_fails_at_once_with_the_fix(any_lake, request, tmp_path):
    """multiprocessing.Pool (fork) workers created after the parent ran a node: their run, read and
    catalog listing each fail at once with ForkedProcessError naming spawn (the old workers hung
    forever); nothing is written; a pool forked before the parent used the lake works."""
    script = tmp_path / "forking.py"
    script.write_text(FORKING_SCRIPT)
    env = {**os.environ, "LAKENODES_URI": any_lake.uri, "PYTHONPATH": os.pathsep.join(sys.path)}
    if not any_lake.is_local:
        env.update(request.getfixturevalue("s3_server").env)
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the hung workers too
        process.communicate()
        pytest.fail("a forked worker hung")
    assert process.returncode == 0, err
    outcomes = json.loads(out.strip().splitlines()[-1])
    assert outcomes["early"] == [["run", "ok"]]
    for action, outcome in outcomes["late"]:
        assert outcome.startswith("ForkedProcessError: this process was forked"), (action, outcome)
        assert "multiprocessing.get_context('spawn')" in outcome and "\n" not in outcome
    before, after = outcomes["versions"]
    assert after == before + 1  # the early worker's run; the refused ones wrote nothing
