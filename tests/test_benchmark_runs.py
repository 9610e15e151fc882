"""``python -m benchmarks --runs N``: N runs of the suite reported as one, each row its median run
(``benchmarks/runs.py``), which the README's table then shows with the runs' range."""

from __future__ import annotations

import doctest
import json

import pytest

import benchmarks.runs as runs
from benchmarks.core import main
from benchmarks.harness import Report, Row
from benchmarks.readme_table import table


def _run(warm: float, fresh: float | None, note: str, seconds: float) -> Report:
    rows = [Row("daily", "warm", warm, "append", 1.0, 1.2, note=f"warm {warm}")]
    if fresh is not None:  # a section that failed in a run leaves its rows out of that run
        rows.append(Row("daily", "fresh", fresh, "append (fresh)", 2.0, 1.3))
    rows.append(Row("imports", "import lakenodes", warm * 2, "-", None))  # no baseline: ranked by time
    return Report("quick", {"cores": 2, "python": "3.11.7", "versions": {}}, rows, notes=[note],
                  timings={"daily": seconds, "total": seconds})


def test_the_modules_examples_hold() -> None:
    assert doctest.testmod(runs).failed == 0


def test_each_row_is_the_run_holding_its_median_ratio() -> None:
    combined = runs.median_of_runs([_run(1.3, 2.8, "slow machine", 10.0), _run(1.1, None, "slow machine", 12.0),
                                    _run(1.15, 2.4, "daily failed", 11.0)])
    warm, fresh, imports = combined.rows
    # the figures and note of one run, not a mix: the run whose ratio is the middle one
    assert (warm.lakenodes_s, warm.baseline_s, warm.note, warm.met) == (1.15, 1.0, "warm 1.15", True)
    assert warm.ratios == (1.3, 1.1, 1.15)
    # a row two runs measured: of an even count the higher middle ratio (the less favourable one)
    assert (fresh.lakenodes_s, fresh.ratios, fresh.met) == (2.8, (1.4, 1.2), False)
    assert (imports.lakenodes_s, imports.ratio, imports.ratios) == (2.3, None, (None, None, None))
    assert combined.runs == 3 and combined.notes[:2] == ["slow machine", "daily failed"]
    assert "median of 3 runs" in combined.notes[2]
    assert combined.timings == {"daily": 33.0, "total": 33.0}


def test_the_results_and_the_readme_table_keep_every_runs_ratio() -> None:
    combined = runs.median_of_runs([_run(1.3, 2.8, "n", 1.0), _run(1.1, 2.2, "n", 1.0), _run(1.15, 2.4, "n", 1.0)])
    results = json.loads(json.dumps(combined.to_json()))
    assert results["runs"] == 3 and results["rows"][0]["ratios"] == [1.3, 1.1, 1.15]
    lines = table(results).splitlines()
    assert lines[0].startswith("`python -m benchmarks --quick --runs 3` (")
    assert lines[4] == "| local | daily: warm | 1.15 s | append 1.00 s | 1.150 (1.100-1.300) | ≤ 1.2 met |"
    assert lines[5] == "| local | daily: fresh | 2.40 s | append (fresh) 2.00 s | 1.200 (1.100-1.400) | ≤ 1.3 met |"


def test_runs_must_be_at_least_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--runs", "0", "--only", "imports"])
    assert stopped.value.code == 2
    assert "--runs must be at least 1, not 0" in capsys.readouterr().err
