"""What a clean install gives a user: declared dependencies, an opt-in pytest plugin, the CI venv."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _declared(extra: str | None = None) -> set[str]:
    """The distributions a plain install of lakenodes brings directly (and those of ``extra``)."""
    requirements = [Requirement(text) for text in importlib.metadata.requires("lakenodes") or []]
    return {requirement.name.lower() for requirement in requirements
            if requirement.marker is None or (extra is not None and requirement.marker.evaluate({"extra": extra}))}


def _imported_modules(folder: Path) -> set[str]:
    """The top-level names of the absolute imports in the Python files under ``folder``."""
    modules: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def test_lancedb_can_open_existing_tables_on_a_clean_install():
    """lancedb opens existing tables through ``import lance`` (the pylance distribution); without it
    every search rebuilt the whole index."""
    assert "pylance" in _declared()
    import lance  # noqa: F401  (must be importable from the declared dependency alone)


def test_every_third_party_import_of_the_library_is_declared():
    """A module imported by lakenodes' own code comes from a declared core dependency."""
    modules = _imported_modules(ROOT / "lakenodes")
    distributions = importlib.metadata.packages_distributions()
    third_party = {m for m in modules if m in distributions and m not in sys.stdlib_module_names and m != "lakenodes"}
    optional = {"pytest", "moto", "boto3", "pandas", "sentence_transformers", "dask", "distributed",  # extras
                "psutil"}  # used when present (SQL memory watch off Linux)
    missing = {
        m: distributions[m] for m in third_party - optional
        if not {d.lower() for d in distributions[m]} & _declared()
    }
    assert not missing, f"imported by lakenodes but not declared in pyproject dependencies: {missing}"


def test_the_pandas_extra_brings_every_import_of_the_main_sequence_tutorials():
    """``pip install "lakenodes[pandas]"`` is all the ported tutorials (tests/seed_project) need: a
    clean install with pandas 3 had no ``pytz``, which the tutorial's prices node imports."""
    modules = _imported_modules(ROOT / "tests" / "seed_project")
    distributions = importlib.metadata.packages_distributions()
    third_party = modules - set(sys.stdlib_module_names) - {"lakenodes", "src", "pytest"}  # pytest: its own tests
    assert {"pandas", "pytz", "numpy", "pydantic"} <= third_party  # the imports this test is about were found
    missing = {module for module in third_party
               if not {d.lower() for d in distributions.get(module, [module])} & _declared("pandas")}
    assert not missing, f"the tutorials import {sorted(missing)}, which lakenodes[pandas] does not install"


def test_pytest_plugin_is_opt_in(tmp_path):
    """Installing lakenodes does not load its fixtures into every pytest run; ``-p`` enables them."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent("""
        import sys

        def test_not_loaded():
            assert "lakenodes.testing" not in sys.modules

        def test_fixture(request):
            request.getfixturevalue("local_lake")
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(tmp_path / "test_user.py")]
    plain = subprocess.run([*run, "-k", "not_loaded"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    missing = subprocess.run([*run, "-k", "fixture"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "local_lake" in missing.stdout
    enabled = subprocess.run([*run, "-k", "fixture", "-p", "lakenodes.testing"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr


@pytest.mark.s3
def test_testing_helpers_work_without_pytest(tmp_path):
    """Regression: ``import lakenodes.testing`` imported pytest, so a plain ``pip install lakenodes`` could not
    use its S3 server helpers. Without pytest they work; a fixture, or the server without moto, says what to
    install."""
    script = textwrap.dedent("""
        import sys
        sys.modules["pytest"] = None  # as on an install without pytest
        import pyarrow as pa
        from deltalake import DeltaTable, write_deltalake
        import lakenodes.testing as testing

        try:
            testing.s3_lake
        except ModuleNotFoundError as error:
            assert "pytest" in str(error) and "lakenodes[test]" in str(error), error
        else:
            raise AssertionError("a fixture without pytest")
        with testing.running_s3_server() as server:
            lake = server.new_lake()
            write_deltalake(lake.join("t"), pa.table({"x": [1, 2]}), storage_options=lake.storage_options)
            table = DeltaTable(lake.join("t"), storage_options=lake.storage_options)
            assert table.to_pyarrow_table().column("x").to_pylist() == [1, 2]
        sys.modules["moto"] = None  # as on an install without moto
        try:
            testing.start_s3_server()
        except ModuleNotFoundError as error:
            assert "moto" in str(error) and "lakenodes[test]" in str(error), error
        else:
            raise AssertionError("a server without moto")
        assert "pytest" not in {name.split(".")[0] for name, module in sys.modules.items() if module is not None}
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr


S3_STACK = ("s3fs", "aiobotocore", "boto3")


def test_dask_extra_pins_the_s3_stack_as_the_test_extra_does():
    """Regression: the ``dask`` extra left s3fs open, so ``lakenodes[dask]`` next to moto (or boto3) sent pip
    backtracking through every aiobotocore, s3fs and dask release. Its pins are the ``test`` extra's."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = {extra: {Requirement(r).name: str(Requirement(r).specifier) for r in extras[extra]
                    if Requirement(r).name in S3_STACK} for extra in ("dask", "test")}
    assert set(pins["dask"]) == set(S3_STACK)
    assert pins["dask"] == pins["test"]


INSTALLS = {  # the documented installs (README, docs/interop.md, docs/scheduling.md) and the one that failed
    "dask-with-moto": ['.[dask]', "moto[server]"],
    "dask-and-test": [".[dask,test]"],
    "test": [".[test]"],
    "all-extras": [".[pandas,test,sentence-transformers,dask,daft,spark,bench]"],
}


@pytest.mark.slow
@pytest.mark.parametrize("requirements", list(INSTALLS.values()), ids=list(INSTALLS))
def test_documented_installs_resolve_from_pypi_without_backtracking(requirements):
    """pip resolves each install as in a fresh environment (``--ignore-installed``), from PyPI, and never
    backtracks: before the ``dask`` extra pinned s3fs, ``.[dask]`` with ``moto[server]`` took minutes."""
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", *requirements],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "looking at multiple versions" not in run.stdout + run.stderr, run.stdout + run.stderr


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="checks the environment .ci/run creates")
def test_ci_runs_in_a_fresh_isolated_virtual_environment():
    assert sys.prefix != sys.base_prefix, "CI must run inside the virtual environment .ci/run creates"
    config = (Path(sys.prefix) / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in config


def test_ci_script_creates_a_fresh_venv_and_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    test_command = next(line.strip() for line in readme.splitlines() if "pytest" in line and "pip install" in line)
    assert "-m venv" in script and "--system-site-packages" not in script
    assert test_command in script
