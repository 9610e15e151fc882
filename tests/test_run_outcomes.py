"""What a tree's run tells about each of its nodes: a node skipped for a failed dependency leaves a
``skipped`` run record, ``lakenodes run --no-deps`` runs one node alone, and the ``--json`` failure
document lists the nodes that succeeded, failed and were skipped."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from journal_nodes import START, daily, stored_rows
from test_run_failures import FAILING_TREE  # Report, whose dependency Feed's update() fails
from typer.testing import CliRunner

from lakenodes import Lake, NodeRunError, run_many
from lakenodes.catalog.catalog import run_history
from lakenodes.cli import app


@pytest.fixture(params=["serial", "spawn-pool"])
def executor(request) -> Iterator[ProcessPoolExecutor | None]:
    if request.param == "serial":
        yield None
        return
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def cli_json(lake: Lake, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--lake", lake.uri, "--json", *args])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_a_node_skipped_for_a_failed_dependency_is_recorded_as_skipped(local_lake: Lake, tmp_path: Path,
                                                                        executor) -> None:
    """On a day the upstream failed, its dependents left no run record: ``updates list`` showed their
    previous success as if all were well. They now have a ``skipped`` run naming the dependency that
    stopped them; no table changes, and the next day's run catches up from the stored watermarks."""
    feed = daily(tmp_path, "feed")
    report = daily(tmp_path, "report", {"feed": feed})
    summary = daily(tmp_path, "summary", {"report": report})
    run_many([summary], executor=executor)  # day 1: all succeed

    broken_feed = daily(tmp_path, "feed", failure="vendor down")  # runtime_only: the same node, failing today
    report_today = daily(tmp_path, "report", {"feed": broken_feed})
    newcomer = daily(tmp_path, "newcomer", {"feed": broken_feed})  # never ran before today
    with pytest.raises(NodeRunError, match="vendor down"):
        run_many([daily(tmp_path, "summary", {"report": report_today}), newcomer], executor=executor)

    assert [stored_rows(node) for node in (feed, report, summary, newcomer)] == [1, 1, 1, 0]  # nothing written
    [*_, report_run] = run_history(local_lake, report.update_hash)
    assert (report_run["status"], report_run["rows_written"]) == ("skipped", 0)
    assert report_run["error"].startswith(f"dependency {feed.update_hash} failed: ")
    assert "vendor down" in report_run["error"]
    [*_, summary_run] = run_history(local_lake, summary.update_hash)
    assert summary_run["status"] == "skipped"
    assert summary_run["error"].startswith(f"dependency {report.update_hash} was skipped, as it depends on a failed "
                                           "node: ")
    assert [run["status"] for run in run_history(local_lake, newcomer.update_hash)] == ["skipped"]

    listed = {process["update_hash"]: process for process in cli_json(local_lake, "updates", "list")["results"]}
    assert [listed[node.update_hash]["last_status"] for node in (feed, report, summary, newcomer)] == \
        ["error", "skipped", "skipped", "skipped"]
    assert feed.update_hash in listed[report.update_hash]["last_error"]
    runs = cli_json(local_lake, "updates", "runs", report.update_hash)["results"]
    assert [run["status"] for run in runs] == ["success", "skipped"]

    run_many([summary, newcomer], executor=executor)  # the vendor is back: the skipped records move no watermark
    assert [stored_rows(node) for node in (feed, report, summary, newcomer)] == [2, 2, 2, 1]
    assert summary.get_df_between_dates()["time_index"].to_list() == [START, START.replace(day=2)]
    assert [run["status"] for run in run_history(local_lake, summary.update_hash)] == ["success", "skipped", "success"]


def run_cli(lake: Lake, module: Path, *args: str):
    return CliRunner().invoke(app, ["--lake", lake.uri, "--json", "run", f"{module}:Report", *args])


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_cli_no_deps_runs_the_node_alone(local_lake: Lake, tmp_path: Path, workers: list[str]) -> None:
    """``lakenodes run`` had no way to run one node without its dependencies (Python has
    ``run(update_tree=False)``): with the feed down, the report could not be run. ``--no-deps`` runs
    it alone; its dependency is neither run nor recorded."""
    module = tmp_path / "tree.py"
    module.write_text(FAILING_TREE)
    assert run_cli(local_lake, module, *workers).exit_code == 1  # the tree: the feed fails, the report is skipped

    result = run_cli(local_lake, module, "--no-deps", *workers)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert document["node"].endswith("Report") and document["rows_written"] == 1 and document["dependencies"] == []
    runs = cli_json(local_lake, "updates", "runs")["results"]
    feed_runs = [run for run in runs if run["update_hash"].startswith("feed_")]
    report_runs = [run["status"] for run in runs if run["update_hash"] == document["update_hash"]]
    assert [run["status"] for run in feed_runs] == ["error"]  # the tree's run only: --no-deps did not run it
    assert report_runs == ["skipped", "success"]
    assert "--no-deps" in CliRunner().invoke(app, ["run", "--help"]).stdout
