"""What ``pip install lakenodes`` unpacks: the sdist and the wheel built from it, as pip and ``python -m build`` build
them (setuptools from PyPI in isolation), and the installed wheel used from outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL_FILES = {f"lakenodes/search/models/all-MiniLM-L6-v2/{name}"
               for name in ("LICENSE", "README.md", "model.int8.onnx", "tokenizer.json")}


def _run(command: list[str], cwd: Path, **env: str) -> str:
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                         env={**os.environ, **env})
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def distributions(tmp_path_factory) -> tuple[Path, Path]:
    """(sdist, wheel): the sdist of a copy of the checkout's tracked files, and the wheel pip builds from it."""
    work = tmp_path_factory.mktemp("distributions")
    tracked = _run(["git", "ls-files", "-z"], ROOT).split("\0")
    source = work / "checkout"
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    backend = work / "backend"  # pyproject's build requirements, as an isolated build installs them
    _run([sys.executable, "-m", "pip", "install", "-q", "--target", str(backend), "setuptools>=77", "wheel"], work)
    build = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    sdist = work / "dist" / _run([sys.executable, "-c", build, str(work / "dist")], source,
                                 PYTHONPATH=str(backend)).strip().splitlines()[-1]
    with tarfile.open(sdist) as archive:
        archive.extractall(work / "unpacked", filter="data")
    unpacked = next((work / "unpacked").iterdir())
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(unpacked)], work)
    return sdist, next((work / "dist").glob("lakenodes-*.whl"))


@pytest.mark.slow
def test_the_sdist_holds_the_package_and_no_half_of_the_test_suite(distributions):
    """Regression: the sdist carried tests/test_*.py without tests/conftest.py, the tests' helper modules, docs/
    or examples/, so a packager's ``pytest`` in the unpacked sdist failed on missing fixtures and imports."""
    sdist, _ = distributions
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "LICENSE", "lakenodes/py.typed", *MODEL_FILES} <= names
    outside = {name for name in names if name.split("/")[0] not in {"lakenodes", "lakenodes.egg-info"}}
    assert outside <= {"pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "PKG-INFO", "setup.cfg"}, sorted(outside)


@pytest.mark.slow
def test_the_wheel_holds_the_package_its_data_and_the_console_script(distributions):
    _, wheel = distributions
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert {name.split("/")[0] for name in names} == {"lakenodes", wheel.name.split("-py3")[0] + ".dist-info"}
    assert {"lakenodes/py.typed", "lakenodes/testing.py", *MODEL_FILES} <= names
    assert "lakenodes = lakenodes.__main__:console" in entry_points
    # pyproject declares Apache-2.0: the licence's text travels with the package (it had no LICENSE file)
    [licence] = [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
    with zipfile.ZipFile(wheel) as archive:
        assert "Apache License" in archive.read(licence).decode() and "Version 2.0" in archive.read(licence).decode()


@pytest.mark.slow
def test_the_installed_wheel_runs_and_searches_from_outside_the_repository(distributions, tmp_path):
    """The package installed from the wheel (its dependencies from this environment), run from a folder
    outside the checkout: a node runs and the search model loads from the installed package data."""
    _, wheel = distributions
    target = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], tmp_path)
    script = textwrap.dedent("""
        import datetime as dt

        import polars as pl
        import lakenodes
        from lakenodes import DataNode, DataNodeConfiguration, Lake, use_lake
        from lakenodes.search.minilm import MODEL_DIR, MiniLMEmbedder

        assert lakenodes.__file__.startswith(TARGET), lakenodes.__file__
        assert str(MODEL_DIR).startswith(TARGET), MODEL_DIR

        class Rates(DataNode):
            \"\"\"Daily close prices.\"\"\"
            def dependencies(self):
                return {}
            def update(self):
                return pl.DataFrame({"time_index": [dt.datetime(2026, 1, 2, tzinfo=dt.UTC)], "close": [1.0]})

        with use_lake(Lake("lake")):
            err, written = Rates(DataNodeConfiguration()).run()
        assert err is False and written.height == 1
        vectors = MiniLMEmbedder().embed(["daily close prices", "end of day stock prices", "weather forecast"])
        assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
        print("ok")
    """).replace("TARGET", repr(str(target)))
    out = _run([sys.executable, "-c", script], tmp_path, PYTHONPATH=str(target))
    assert out.strip().endswith("ok")
