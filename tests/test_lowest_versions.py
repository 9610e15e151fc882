"""The oldest versions ``pyproject.toml`` allows, and the newest a clean install gets, are versions
lakenodes works with.

A user who already has polars, pyarrow, deltalake or pydantic installed keeps them when they are
within our bounds, so each ``>=`` bound is a promise; a new user gets the newest releases, which the
test environment may not hold (its test tools cap some). Each case installs its versions in a fresh
virtual environment and runs, there, the package's docstring examples and the README's first
command (the tutorial job). Before this the floors were never tried: ``import lakenodes`` failed on
deltalake 1.6.0, pyarrow 19.0.0 could not read delta-rs' files, and pydantic before 2.10 silently
put update-only fields into storage hashes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
EXTRA = "pandas"  # the README's first command installs ".[pandas]"


def lower_bound(specifier: SpecifierSet) -> str | None:
    """The version of the one ``>=`` clause of ``specifier`` (None when it has none, or several)."""
    floors = [spec.version for spec in specifier if spec.operator == ">="]
    return floors[0] if len(floors) == 1 else None


def floor_pins(requirements: list[str]) -> dict[str, str]:
    """Each requirement's name and the version of its ``>=`` bound; one without such a bound is
    named in the AssertionError (every dependency must say the oldest version it supports)."""
    parsed = [Requirement(text) for text in requirements]
    unbounded = [str(requirement) for requirement in parsed if lower_bound(requirement.specifier) is None]
    assert not unbounded, f"dependencies without one '>=' bound: {unbounded}"
    return {requirement.name: lower_bound(requirement.specifier) for requirement in parsed}


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OLDEST_PYTHON = Version(lower_bound(SpecifierSet(PROJECT["requires-python"]))).release[:2]


def declared_floors() -> dict[str, str]:
    return floor_pins([*PROJECT["dependencies"], *PROJECT["optional-dependencies"][EXTRA]])


def test_floor_pins_take_each_lower_bound_and_refuse_a_missing_one():
    assert floor_pins(["polars>=1.34", "deltalake>=1.6.6,<2"]) == {"polars": "1.34", "deltalake": "1.6.6"}
    with pytest.raises(AssertionError, match="rich<14"):
        floor_pins(["rich<14"])


def test_every_dependency_declares_its_floor():
    assert len(declared_floors()) > 10


LOWEST_CONSTRAINTS = ROOT / ".ci" / "lowest-constraints.txt"


def test_the_committed_lowest_constraints_are_the_floors():
    """``.ci/lowest-constraints.txt`` (the whole quick suite at the floors: ``pip install -e ".[test,pandas]"
    -c .ci/lowest-constraints.txt``) pins exactly the declared floors, and the test extra accepts each pin:
    a floor raised or added in pyproject.toml without it fails here. The suite there found what the slow
    case below does not run: a thread race of polars 1.34 and click 8.2.1's usage errors."""
    lines = [line.split("#")[0].strip() for line in LOWEST_CONSTRAINTS.read_text().splitlines()]
    pins = {canonicalize_name(pin.name): pin for pin in map(Requirement, filter(None, lines))}
    assert all(len(pin.specifier) == 1 and next(iter(pin.specifier)).operator == "==" for pin in pins.values())
    pinned = {name: Version(next(iter(pin.specifier)).version) for name, pin in pins.items()}
    assert pinned == {canonicalize_name(name): Version(version) for name, version in declared_floors().items()}
    for requirement in map(Requirement, PROJECT["optional-dependencies"]["test"]):  # it repeats pandas and pytz
        name = canonicalize_name(requirement.name)
        assert name not in pinned or requirement.specifier.contains(pinned[name]), str(requirement)


def fresh_install(tmp_path: Path, constraints: list[str], editable: bool = True) -> Path:
    """A fresh venv holding this checkout (with the README's extra; else built as a wheel, as from
    PyPI) and pytest, its other packages chosen by pip under ``constraints``; returns the venv."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pins = tmp_path / "constraints.txt"
    pins.write_text("".join(f"{line}\n" for line in constraints))
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *(["-e"] if editable else []), f"{ROOT}[{EXTRA}]", "pytest", "-c", str(pins)],
        capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, f"the install failed:\n{install.stdout}{install.stderr}"
    return venv


def installed_versions(venv: Path) -> dict[str, Version]:
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True,
                            check=True).stdout
    return {canonicalize_name(line.split("==")[0]): Version(line.split("==")[1])
            for line in freeze.splitlines() if "==" in line and not line.startswith(("#", "-e"))}


def assert_a_users_first_steps_work(venv: Path, workdir: Path) -> None:
    """In ``venv``: the package's docstring examples, the README's first command (the tutorial job
    on ``./lake``, run from ``workdir``), then the installed ``lakenodes`` command on that lake: its
    version, a mistyped command (one ``error:`` line, exit 2) and a search (the embedding model is
    package data: a wheel must ship it)."""
    python = str(venv / "bin" / "python")
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("LAKENODES_", "PYTEST_"))}
    doctests = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules", str(ROOT / "lakenodes")],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, env=environment)
    assert doctests.returncode == 0, doctests.stdout[-6000:] + doctests.stderr[-3000:]
    tutorial = subprocess.run([python, str(ROOT / "examples" / "run_tutorial.py")], cwd=workdir,
                              capture_output=True, text=True, timeout=600, env=environment)
    assert tutorial.returncode == 0, tutorial.stdout[-3000:] + tutorial.stderr[-3000:]
    assert (workdir / "lake" / "_catalog").is_dir()
    version = subprocess.run([str(venv / "bin" / "lakenodes"), "--version"], capture_output=True, text=True,
                             timeout=120, env=environment)
    assert version.returncode == 0 and version.stdout.strip(), version.stdout + version.stderr
    mistake = subprocess.run([str(venv / "bin" / "lakenodes"), "no-such-command"], capture_output=True, text=True,
                             timeout=120, env=environment)  # the CLI's usage-error path, with this click
    assert mistake.returncode == 2 and mistake.stderr.startswith("error: No such command"), mistake.stderr
    search = subprocess.run([str(venv / "bin" / "lakenodes"), "search", "simulated prices", "--json"], cwd=workdir,
                            capture_output=True, text=True, timeout=300, env=environment)
    assert search.returncode == 0, search.stdout[-3000:] + search.stderr[-3000:]
    found = json.loads(search.stdout)["description"]["results"]
    assert any(row["identifier"] == "simulated_prices_tutorial_local" for row in found), search.stdout[:3000]


@pytest.mark.slow
@pytest.mark.skipif(sys.version_info[:2] != OLDEST_PYTHON, reason="the floors are the oldest releases for the oldest "
                    "Python the package supports; a newer Python needs newer wheels (numpy 1.26 has none for 3.13)")
def test_the_oldest_allowed_versions_run_the_docstring_examples_and_the_tutorial(tmp_path):
    floors = declared_floors()
    venv = fresh_install(tmp_path, [f"{name}=={version}" for name, version in floors.items()])
    installed = installed_versions(venv)
    for name, version in floors.items():  # each floor itself, not a later version
        assert installed.get(canonicalize_name(name)) == Version(version), (name, version)
    assert_a_users_first_steps_work(venv, tmp_path)


@pytest.mark.slow
def test_the_newest_releases_a_clean_install_gets_run_them_too(tmp_path):
    """What ``pip install lakenodes`` picks today, with nothing else installed: often newer than the
    test environment's versions, which other test tools cap (daft holds pyarrow below 26)."""
    venv = fresh_install(tmp_path, [], editable=False)
    assert_a_users_first_steps_work(venv, tmp_path)
