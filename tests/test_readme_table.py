"""The README's performance table is made by ``python -m benchmarks.readme_table`` from one run's
results, between two markers that ``--write`` replaces: the markers stay, and the table holds only
rows of the generator's shape (nothing typed in by hand between them)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import benchmarks.readme_table as readme_table

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(r"^\| (local|S3) \| [^|]+ \| [\d.]+ (µs|ms|s) \| [^|]+ [\d.]+ (µs|ms|s) \| [\d.]+( \([\d.]+-[\d.]+\))? \| "
                 r"(≤ [\d.]+ (met|NO)|floor) \|$")


def test_the_generators_examples_hold() -> None:
    assert doctest.testmod(readme_table).failed == 0


def test_the_readme_table_is_one_run_of_the_generator() -> None:
    readme = README.read_text()
    assert readme.count(readme_table.START) == 1 and readme.count(readme_table.END) == 1
    table = readme.split(readme_table.START)[1].split(readme_table.END)[0].strip()
    assert readme_table.replaced(readme, table) == readme
    intro, blank, header, rule, *rows = table.splitlines()
    assert re.match(r"`python -m benchmarks --quick( --runs \d+)?` \(", intro) and blank == ""
    assert header == "| where | case | lakenodes | baseline | ratio | target |" and rule.startswith("| --- |")
    assert len(rows) > 40
    assert [row for row in rows if not ROW.match(row)] == []
