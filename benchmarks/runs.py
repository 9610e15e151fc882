"""Several runs of the suite as one report (``python -m benchmarks --runs 3``): each row is the
run whose ratio is that row's median, and keeps every run's ratio beside it.

This machine's speed moves between runs (one day's three runs took 28.6, 53.1 and 48.0 ms for the
same raw append), so one run cannot settle a 5% target: a row met in one run may miss in the next.
Each row's median run is what the report and the README's table show; its range says how far to
trust it. The figures of a row stay those of one run, side by side as measured.

Example:
    >>> runs = [Report("quick", {}, [Row("daily", "warm", ours, "append", 1.0, 1.2)]) for ours in (1.3, 1.1, 1.15)]
    >>> combined = median_of_runs(runs)
    >>> row = combined.rows[0]
    >>> row.lakenodes_s, row.ratios, row.met, combined.runs
    (1.15, (1.3, 1.1, 1.15), True, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from benchmarks.harness import Report, Row


def median_of_runs(reports: Sequence[Report]) -> Report:
    """One report of ``reports`` (runs of the same suite): each row from the run holding its median
    ratio (of an even count, the higher middle one), with every run's ratio in ``Row.ratios``; the
    rows in the order the runs met them, their notes once each, their section seconds added up."""
    runs_of: dict[tuple[str, str, str], list[Row]] = {}
    for report in reports:
        for row in report.rows:
            runs_of.setdefault((row.section, row.case, row.baseline), []).append(row)
    rows = [replace(median_row(runs), ratios=tuple(row.ratio for row in runs)) for runs in runs_of.values()]
    notes = list(dict.fromkeys(note for report in reports for note in report.notes))
    notes.append(f"median of {len(reports)} runs: each row is the run whose ratio is that row's median (of an even "
                 "count, the higher middle one), the range of every run's ratio beside it")
    timings: dict[str, float] = {}
    for report in reports:
        for section, seconds in report.timings.items():
            timings[section] = round(timings.get(section, 0.0) + seconds, 1)
    first = reports[0]
    return Report(first.mode, first.machine, rows, first.sizes, notes, timings, runs=len(reports))


def median_row(rows: Sequence[Row]) -> Row:
    """The row of ``rows`` (one case in several runs) with the median ratio; by lakenodes' time for
    a row without a baseline.

    Example:
        >>> median_row([Row("s", "c", seconds, "b", 1.0) for seconds in (3.0, 1.0, 2.0, 4.0)]).lakenodes_s
        3.0
    """
    ranked = sorted(rows, key=lambda row: row.lakenodes_s if row.ratio is None else row.ratio)
    return ranked[len(ranked) // 2]
