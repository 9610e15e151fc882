"""The question a destructive command asks (``[y/N]``) as a person at a terminal meets it: through
the real ``python -m lakenodes`` with a pseudo-terminal as stdin."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from examples.tutorial_nodes import DailyRandomNumber, RandomDataNodeConfig
from lakenodes import Lake, use_lake

REPO = Path(__file__).resolve().parent.parent


def _run_twice(lake: Lake) -> None:
    with use_lake(lake):
        for _ in range(2):  # two runs of one updater: the first is old enough to clean
            DailyRandomNumber(RandomDataNodeConfig(mean=0.0)).run()


def _answer_at_a_terminal(lake: Lake, keys: bytes, *args: str) -> subprocess.CompletedProcess:
    """Run ``lakenodes --lake LAKE ARGS`` with a terminal as stdin; type ``keys`` once it asks."""
    controller, terminal = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "lakenodes", "--lake", lake.uri, *args], cwd=REPO, stdin=terminal,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        os.close(terminal)
        asked = b""
        while not asked.endswith(b"[y/N]: "):
            byte = process.stderr.read(1)
            assert byte, asked  # it ended without asking
            asked += byte
        os.write(controller, keys)
        out, err = process.communicate(timeout=120)
    os.close(controller)
    return subprocess.CompletedProcess(process.args, process.returncode, out.decode(), (asked + err).decode())


def _runs(lake: Lake) -> int:
    listed = subprocess.run([sys.executable, "-m", "lakenodes", "--lake", lake.uri, "--json", "updates", "runs"],
                            cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(listed.stdout)["total"]


def test_ctrl_d_at_the_question_is_a_no(tmp_path):
    """Regression: Ctrl-D at `Remove 1 run(s) ...? [y/N]` in a terminal said "error: no confirmation
    on stdin: pass --yes to remove runs without asking" and exited 2 (a user mistake), where "n" says
    "not confirmed; nothing was removed" and exits 1: the person asked declined either way."""
    lake = Lake(tmp_path / "lake")
    _run_twice(lake)
    declined = _answer_at_a_terminal(lake, b"\x04", "updates", "clean", "--older-than", "0d")
    assert declined.returncode == 1, declined.stderr
    assert declined.stderr.strip().splitlines()[-1] == "error: not confirmed; nothing was removed"
    assert "Traceback" not in declined.stderr and declined.stdout == ""
    assert _runs(lake) == 2
