"""Core performance benchmarks: every figure is a ratio against a baseline measured in the same run.

Sections (each on a local lake and on a moto S3 lake, but ``imports``: no lake):

- ``imports``: ``import lakenodes`` vs ``import deltalake, polars``, each in a fresh interpreter
  (``python -X importtime``: the cumulative time of the imported packages).
- ``daily``: one ``run()`` adding one row per asset vs one raw ``write_deltalake`` append: in a warm
  process, in a fresh one (the call timed), and as a whole cron job (``benchmarks/cron.py``: wall time).
- ``statistics``: ``compute_update_statistics()`` vs a polars ``scan_delta`` group-by max.
- ``backfill``: a large history written through ``run()`` vs a raw partitioned ``write_deltalake`` (and
  ``pyarrow.parquet.write_table``); a streamed backfill (RecordBatchReader) with its peak RSS.
- ``reads``: ``get_df_between_dates`` vs ``pl.scan_delta`` and ArcticDB (LMDB / S3).
- ``time_travel``: an ``as_of`` read of the previous version vs the latest read of the same rows,
  and vs ``pl.scan_delta(version=)``.

Run ``python -m benchmarks --quick`` (see ``benchmarks/__main__.py``); ``--runs 3`` runs it three times
and reports each row's median run (``benchmarks/runs.py``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    FULL_LOCAL,
    FULL_S3,
    QUICK_LOCAL,
    QUICK_S3,
    Report,
    fmt,
    fmt_ratio,
    machine_info,
)
from benchmarks.peers import arctic_s3_uri, arcticdb_available
from benchmarks.reads import ReadSections
from benchmarks.runs import median_of_runs
from benchmarks.writes import WriteSections
from lakenodes import Lake

RESULTS = Path(__file__).resolve().parent / "results" / "core.json"
SECTIONS = ("imports", "daily", "statistics", "backfill", "reads", "maintenance", "time_travel")
LOCAL_ONLY = ("imports",)


class Bench(WriteSections, ReadSections):
    """All sections on one lake (local folder or S3 bucket)."""


# -- orchestration ------------------------------------------------------------------------------
def selected(only: Sequence[str] | None, kind: str, section: str) -> bool:
    if not only:
        return True
    name = section if kind == "local" else f"s3-{section}"
    return any(item in (name, kind, section if kind == "local" else "s3", "all") for item in only)


def known_names() -> list[str]:
    return ["local", "s3", *SECTIONS, *(f"s3-{name}" for name in SECTIONS)]


def s3_server() -> contextlib.AbstractContextManager[Any]:
    """A moto S3 server in its own process (no GIL sharing with delta-rs)."""
    from lakenodes.testing import running_s3_server

    return running_s3_server()


def run(quick: bool, only: Sequence[str] | None = None, output: Path = RESULTS) -> Report:
    unknown = [item for item in only or [] if item not in known_names() + ["all"]]
    if unknown:
        raise SystemExit(f"unknown benchmark name(s) {unknown}; choose from {known_names()}")
    report = Report(mode="quick" if quick else "full", machine=machine_info())
    if not arcticdb_available():
        report.notes.append("ArcticDB is not installed (pip install arcticdb): its read columns are skipped")
    scratch = Path(tempfile.mkdtemp(prefix="lakenodes-bench-"))
    try:
        local_sizes = QUICK_LOCAL if quick else FULL_LOCAL
        if any(selected(only, "local", name) for name in SECTIONS):
            report.sizes["local"] = asdict(local_sizes)
            bench = Bench(report, Lake(scratch / "lake"), "local", local_sizes, scratch,
                          f"lmdb://{scratch}/arctic?map_size=8GB" if arcticdb_available() else None)
            run_sections(bench, only)
        if any(selected(only, "s3", name) for name in SECTIONS):
            s3_sizes = QUICK_S3 if quick else FULL_S3
            report.sizes["s3"] = asdict(s3_sizes)
            with s3_server() as server:
                lake = server.new_lake()
                arctic_uri = arctic_s3_uri(server, server.create_bucket()) if arcticdb_available() else None
                bench = Bench(report, lake, "s3", s3_sizes, scratch, arctic_uri)
                run_sections(bench, only)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report.to_json(), indent=2, default=str))
    return report


def run_sections(bench: Bench, only: Sequence[str] | None) -> None:
    for name in SECTIONS:
        if not selected(only, bench.kind, name) or (bench.kind != "local" and name in LOCAL_ONLY):
            continue
        started = time.perf_counter()
        print(f"[{bench.kind}] {name} ...", file=sys.stderr, flush=True)
        try:
            getattr(bench, name)()
        except Exception as error:  # one broken section must not hide the others
            bench.report.notes.append(f"{bench.section(name)} failed: {type(error).__name__}: {error}")
            import traceback

            traceback.print_exc()
        bench.report.timings[bench.section(name)] = round(time.perf_counter() - started, 1)


def print_report(report: Report) -> None:
    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency
        Console = None
    m = report.machine
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    memory = ", ".join(f"{k} {v}" for k, v in m["memory"].items() if v)
    header = (f"lakenodes core benchmarks ({report.mode}) - {m['cores']} cores, Python {m['python']}, {m['platform']}\n"
              f"{versions}\n{memory}")
    sizes = "\n".join(f"sizes[{kind}]: " + ", ".join(f"{k}={v}" for k, v in values.items())
                      for kind, values in report.sizes.items())
    columns = ["benchmark", "case", "lakenodes", "baseline", "baseline time", "ratio", "target", "met", "note"]
    rows = []
    for row in report.rows:
        rows.append([row.section, row.case, fmt(row.lakenodes_s), row.baseline, fmt(row.baseline_s),
                     fmt_ratio(row.ratio, row.ratios),
                     "-" if row.target is None else f"<= {row.target:.2f}",
                     "-" if row.met is None else ("yes" if row.met else "NO"), row.note])
    footer = ["ratio = lakenodes time / baseline time (lower is better); medians after a warm-up, runs alternated.",
              "statistics: cold = lakenodes' in-process caches cleared (open tables, file facts, progress) but the "
              "persisted facts file used (boundary facts and the progress of the newest version: one log listing, "
              "no log replay); cold, no facts file = also that file deleted, so the log is replayed and boundary "
              "Parquet footers are read; floor = opening the table (log replay) and listing its files, what any "
              "cold Delta reader pays; warm = same process, same table version; after +1 append = one new version "
              "(raw append) since the last call; fresh process = newly spawned interpreter.",
              "backfill floor = the frame rules' validation alone; reads 'after optimize --cross-section' = the "
              "same table after optimize_table(cross_section=True) (a time-ordered copy, read with the files "
              "appended since, until a commit removes a file).",
              "fresh process rows are timed inside a newly spawned interpreter (imports excluded, those lakenodes defers "
              "to first use too); cron job rows are wall times of a whole `python -m benchmarks.cron` process (both jobs "
              "build rows from NumPy buffers: pa.array() imports pandas); cron and import rows load compiled "
              "bytecode, as an installed package does (PYTHONDONTWRITEBYTECODE ignored, a scratch pycache prefix).",
              *report.notes, "section seconds: " + ", ".join(f"{k} {v}" for k, v in report.timings.items())]
    if Console is None:
        print(header)
        print(sizes)
        print(" | ".join(columns))
        for values in rows:
            print(" | ".join(values))
        print("\n".join(footer))
        return
    # the text is plain, not rich markup: "[madvise]" or "sizes[s3]" would otherwise be read as tags and vanish
    table = Table(title=escape(header), title_justify="left", caption=escape("\n".join([sizes, *footer])),
                  caption_justify="left")
    for name in columns:
        table.add_column(name, justify="right" if name in ("lakenodes", "baseline time", "ratio") else "left")
    for values in rows:
        table.add_row(*map(escape, values))
    Console(width=200).print(table)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 3 minutes on 2 cores)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"run only these (repeatable or comma-separated): {', '.join(known_names())}; "
                             "'local'/'s3' select every section of that lake, 'daily' etc. the local one")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    parser.add_argument("--runs", type=int, default=1, metavar="N",
                        help="run the suite N times and report each row's median run (benchmarks/runs.py)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, not {args.runs}")
    only = [name.strip() for item in args.only or [] for name in item.split(",") if name.strip()] or None
    started = time.perf_counter()
    reports = []
    for number in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"== run {number} of {args.runs} ==", file=sys.stderr, flush=True)
        reports.append(run(args.quick, only, args.output))
    report = reports[0] if args.runs == 1 else median_of_runs(reports)
    report.timings["total"] = round(time.perf_counter() - started, 1)
    args.output.write_text(json.dumps(report.to_json(), indent=2, default=str))
    print_report(report)
    return 0
