"""The docstring examples and the docs' code the tests run leave nothing behind: the lakes they
make with ``tempfile.mkdtemp()`` (as a reader would) and the shared ``example`` lake go in pytest's
own temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_examples_leave_no_folder_in_the_temporary_directory(tmp_path: Path) -> None:
    scratch, pytest_folders = tmp_path / "tmp", tmp_path / "pytest"
    scratch.mkdir()
    # one module whose examples call tempfile.mkdtemp(), one that uses the shared example lake, and
    # a test that runs a docs page's code, which calls tempfile.mkdtemp() too
    modules = ["lakenodes/lake/_facts_file.py", "lakenodes/catalog/history.py", "tests/test_time_travel_doc.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--basetemp={pytest_folders}", *modules],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "passed" in result.stdout
    assert sorted(path.name for path in scratch.iterdir()) == []
    assert any(pytest_folders.rglob("_delta_log")), "the examples wrote no lake where pytest keeps its folders"
