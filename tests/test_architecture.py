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


def test_the_search_index_type_checks() -> None:
    """Regression: mypy found lancedb's ``stats()`` indexed as the dict it returns (lancedb declares a
    dataclass) and a table that may be None searched."""
    result = subprocess.run([sys.executable, "-m", "mypy", "lakenodes/search/index.py"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_seeds_code_type_checks_as_written(tmp_path) -> None:
    """Regressions: lakenodes ships py.typed, and code ported from the seeds failed mypy.
    - Their ``dependencies() -> dict[str, Union["DataNode", "APIDataNode"]]`` (kept by
      examples/tutorial_nodes.py): 'Return type ... incompatible with return type "dict[str, BaseNode]"'.
    - Their reads used as pandas frames (``get_df_between_dates(...).iloc[0]``, a range read passed on
      as ``pd.DataFrame``): 'Item "DataFrame" of "DataFrame | DataFrame | Table" has no attribute
      "iloc"'. Without ``frame=`` the kind is the program's choice at run time (``Any``); with it,
      the frame's own type, so a wrong use and a misspelt filter are still caught."""
    (tmp_path / "ported_nodes.py").write_text(textwrap.dedent("""
        import datetime
        from typing import Dict, Union

        import pandas as pd
        import polars as pl

        from lakenodes import APIDataNode, DataNode


        def last_price(obs_df: pd.DataFrame, unique_id: str) -> float:
            return float(obs_df.xs(unique_id, level="unique_identifier")["close"].iloc[-1])


        class Seed000(DataNode):
            def dependencies(self) -> dict[str, Union["DataNode", "APIDataNode"]]:
                return {}

            def update(self) -> pd.DataFrame:
                range_descriptor = self.update_statistics.get_update_range_map_great_or_equal()
                last_observation = self.get_ranged_data_per_asset(range_descriptor=range_descriptor)
                last_price(last_observation, "NVDA")
                self.get_df_between_dates(dimension_range_map=[{"unique_identifier": "NVDA"}])
                return pd.DataFrame()


        class Seed001(DataNode):
            def dependencies(self) -> Dict[str, Union["DataNode", "APIDataNode"]]:
                return {"prices": APIDataNode.build_from_identifier("prices")}

            def update(self) -> pd.DataFrame:
                today = pd.Timestamp.now("UTC").normalize()
                noise = self.dependencies()["prices"].get_df_between_dates(start_date=today, great_or_equal=True)
                return pd.DataFrame({"random_number": [noise.iloc[0]["random_number"]]})


        def polars_user(node: DataNode, start: datetime.datetime) -> pl.DataFrame:
            frame = node.get_df_between_dates(start, frame="polars", columns=["close"])
            latest = node.get_last_observation(["NVDA"], "polars")
            return pl.concat([frame.filter(pl.col("close") > 0), latest.select(frame.columns)])
    """))
    (tmp_path / "wrong_uses.py").write_text(textwrap.dedent("""
        from lakenodes import DataNode


        def wrong(node: DataNode) -> None:
            number: int = node.get_df_between_dates(frame="polars")
            node.get_df_between_dates(unique_identifer_list=["NVDA"])
    """))
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", str(tmp_path / "ported_nodes.py"),
                             str(tmp_path / "wrong_uses.py")], cwd=REPO, capture_output=True, text=True, timeout=600)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not [line for line in errors if "ported_nodes.py" in line], result.stdout + result.stderr
    assert len(errors) == 2, result.stdout + result.stderr
    assert 'wrong_uses.py:6: error: Incompatible types in assignment (expression has type "DataFrame"' in errors[0]
    assert "wrong_uses.py:7: error:" in errors[1] and "unique_identifer_list" in errors[1]


def test_no_sys_path_or_environment_left_changed_by_import() -> None:
    code = ("import os, sys; import polars, pyarrow, deltalake, datafusion, typer, rich; "  # third parties may
            "before = (list(sys.path), dict(os.environ)); import lakenodes, lakenodes.cli; "  # (polars: jemalloc)
            "assert (list(sys.path), dict(os.environ)) == before")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
