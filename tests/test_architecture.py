"""The architecture stays as docs/architecture.md draws it: import contracts (import-linter), no
import cycles (function-level imports included), small modules, a typed public API."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "lakenodes"
MAX_LINES = 400


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_import_cycles() -> None:
    """No module imports, directly or not, a module that imports it back (imports inside
    functions and under TYPE_CHECKING count too)."""
    graph = grimp.build_graph("lakenodes")
    cycles = set()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported == importer or not imported.startswith("lakenodes"):
                continue
            if importer.startswith(imported + ".") or imported.startswith(importer + "."):
                continue  # a package and its own modules
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.add(" -> ".join([importer, *back[1:]]))
    assert not cycles, "\n".join(sorted(cycles))


def test_modules_stay_small() -> None:
    sizes = {str(path.relative_to(REPO)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert not {path: n for path, n in sizes.items() if n > MAX_LINES}, f"modules over {MAX_LINES} lines"


def test_py_typed_and_the_search_model_are_package_data() -> None:
    assert (PACKAGE / "py.typed").is_file()
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert package_data["lakenodes"] == ["py.typed", "search/models/*/*"]
    model = PACKAGE / "search" / "models" / "all-MiniLM-L6-v2"
    assert {"model.int8.onnx", "tokenizer.json", "LICENSE", "README.md"} <= {p.name for p in model.iterdir()}


def test_public_api_type_checks() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "lakenodes/__init__.py"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_seeds_dependencies_annotation_type_checks(tmp_path) -> None:
    """Regression: lakenodes ships py.typed, and the seeds' own ``dependencies()`` signature (kept by
    examples/tutorial_nodes.py) failed mypy in every ported node: 'Return type "dict[str, DataNode |
    APIDataNode]" of "dependencies" incompatible with return type "dict[str, BaseNode]" in supertype'."""
    (tmp_path / "ported_nodes.py").write_text(textwrap.dedent("""
        from typing import Dict, Union

        from lakenodes import APIDataNode, DataNode


        class Seed000(DataNode):
            def dependencies(self) -> dict[str, Union["DataNode", "APIDataNode"]]:
                return {}


        class Seed001(DataNode):
            def dependencies(self) -> Dict[str, Union["DataNode", "APIDataNode"]]:
                return {"prices": APIDataNode.build_from_identifier("prices")}
    """))
    result = subprocess.run([sys.executable, "-m", "mypy", str(tmp_path / "ported_nodes.py")], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_sys_path_or_environment_left_changed_by_import() -> None:
    code = ("import os, sys; import polars, pyarrow, deltalake, datafusion, typer, rich; "  # third parties may
            "before = (list(sys.path), dict(os.environ)); import lakenodes, lakenodes.cli; "  # (polars: jemalloc)
            "assert (list(sys.path), dict(os.environ)) == before")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
