"""``python -m benchmarks.readme_table [RESULTS] [--write README.md]``: the README's performance
table, made from one run's results (``benchmarks/results/core.json``, which ``python -m benchmarks``
writes), so the table shows that run and nothing typed by hand. Of ``python -m benchmarks --runs N``,
each row is its median run, with the range of the N runs' ratios beside its own.

It lists every row the run checked against a target (the ratios issue #17 sets) and the floors of
those rows (what the same work costs done raw: a bound on the rows beside it). ``--write`` replaces
the table between the README's ``<!-- benchmarks.readme_table -->`` markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.core import RESULTS
from benchmarks.harness import fmt, fmt_ratio

START, END = "<!-- benchmarks.readme_table: start -->", "<!-- benchmarks.readme_table: end -->"


def shown(row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the README's table shows ``row`` of ``rows``: it has a target, or it is a floor (one
    of a case, ``<case>: floor ...``, only when a case starting so has a target)."""
    if row["target"] is not None:
        return True
    if "floor" not in row["case"]:
        return False
    case = row["case"].split(":")[0]
    return "floor" in case or any(
        other["target"] is not None and other["section"] == row["section"] and other["case"].startswith(case)
        for other in rows)


def verdict(row: Mapping[str, Any]) -> str:
    """The target column: ``≤ 1.2 met`` / ``≤ 1.2 NO`` / ``floor`` / empty."""
    if row["target"] is not None:
        return f"≤ {row['target']:g} {'met' if row['met'] else 'NO'}"
    return "floor" if "floor" in row["case"] else ""


def table(results: Mapping[str, Any]) -> str:
    """The markdown table of ``results`` (what ``python -m benchmarks`` wrote), with a line saying
    which run it shows.

    Example:
        >>> rows = [{"section": "s3-daily", "case": "warm run", "lakenodes_s": 0.05, "baseline": "append",
        ...          "baseline_s": 0.04, "target": 1.2, "ratio": 1.25, "met": False},
        ...         {"section": "reads", "case": "not shown", "lakenodes_s": 1.0, "baseline": "x",
        ...          "baseline_s": 1.0, "target": None, "ratio": 1.0, "met": None}]
        >>> print(table({"mode": "quick", "machine": {"cores": 2, "python": "3.11.7", "versions": {"polars": "2.1.0"}},
        ...              "section_seconds": {"total": 799.5}, "rows": rows}))
        `python -m benchmarks --quick` (2 cores, Python 3.11.7, polars 2.1.0; 800 s):
        <BLANKLINE>
        | where | case | lakenodes | baseline | ratio | target |
        | --- | --- | --- | --- | --- | --- |
        | S3 | daily: warm run | 50.0 ms | append 40.0 ms | 1.250 | ≤ 1.2 NO |

        Of several runs, the command says how many, and each ratio has the range of every run's:

        >>> rows[0]["ratios"] = [1.25, 1.125, 1.5]
        >>> print(table({"mode": "quick", "runs": 3, "machine": {"cores": 2, "python": "3.11.7", "versions": {"polars": "2.2.0"}},
        ...              "rows": rows}).splitlines()[::4])
        ['`python -m benchmarks --quick --runs 3` (2 cores, Python 3.11.7, polars 2.2.0):', '| S3 | daily: warm run | 50.0 ms | append 40.0 ms | 1.250 (1.125-1.500) | ≤ 1.2 NO |']
    """
    machine = results["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in machine.get("versions", {}).items()
                         if name not in ("lakenodes",))
    total = results.get("section_seconds", {}).get("total")
    took = "" if total is None else f"; {total:.0f} s"
    runs = results.get("runs", 1)
    command = ("python -m benchmarks" + (" --quick" if results["mode"] == "quick" else "")
               + (f" --runs {runs}" if runs > 1 else ""))
    lines = [f"`{command}` ({machine['cores']} cores, Python {machine['python']}, {versions}{took}):", "",
             "| where | case | lakenodes | baseline | ratio | target |", "| --- | --- | --- | --- | --- | --- |"]
    for row in results["rows"]:
        if not shown(row, results["rows"]):
            continue
        where, section = ("S3", row["section"][3:]) if row["section"].startswith("s3-") else ("local", row["section"])
        ratio = fmt_ratio(row["ratio"], row.get("ratios", ()))
        case = row["case"] if section in row["case"] else f"{section}: {row['case']}"
        lines.append(f"| {where} | {case} | {fmt(row['lakenodes_s'])} | {row['baseline']} {fmt(row['baseline_s'])} "
                     f"| {ratio} | {verdict(row)} |")
    return "\n".join(lines)


def replaced(readme: str, new_table: str) -> str:
    """``readme`` with the text between its table markers replaced by ``new_table``.

    Example:
        >>> replaced(f"intro\\n{START}\\nold\\n{END}\\nrest", "new")
        'intro\\n<!-- benchmarks.readme_table: start -->\\nnew\\n<!-- benchmarks.readme_table: end -->\\nrest'
    """
    if START not in readme or END not in readme:
        raise SystemExit(f"the README has no {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    return f"{head}{START}\n{new_table}\n{END}{rest.split(END, 1)[1]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS, help=f"a run's results (default {RESULTS})")
    parser.add_argument("--write", type=Path, metavar="README", help="replace the table in this README")
    args = parser.parse_args(argv)
    made = table(json.loads(args.results.read_text()))
    if args.write is None:
        print(made)
    else:
        args.write.write_text(replaced(args.write.read_text(), made))
        print(f"wrote the table of {args.results} to {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
