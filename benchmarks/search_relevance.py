"""Search relevance and latency benchmark for ``lakenodes.search``.

Runs every query of ``benchmarks/data/search_corpus.json`` (four classes: lexical, paraphrase,
column, abbreviation/typo) against an index of the hand-written corpus and reports MRR, top-1 and
top-3 per class for each configuration, then, on lakes whose catalogs hold 120 and 10,000 synthetic
tables: the index build time, the latency of ``description_search`` in a warm process (p50/p95,
default embedder and ranking, catalog catch-up included) and of a fresh ``lakenodes search``.

    python -m benchmarks --only search            # the same as python -m benchmarks.search_relevance
    python -m benchmarks.search_relevance --quick # 120-table latency only
    python -m benchmarks.search_relevance --misses

A sentence-transformers embedder is benchmarked too when the package is installed and a local
model is given with ``--st-model PATH`` or ``LAKENODES_ST_MODEL``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.search_corpus import CLASSES, CORPUS, QUERIES, QUERY_CLASS, synthetic_catalog
from lakenodes import Lake
from lakenodes.catalog.catalog import all_tables, save_table_record, tables_ledger
from lakenodes.catalog.records import TableRecord
from lakenodes.search import SearchIndex, SearchPage, description_search, get_embedder, rebuild_index

RESULTS = Path(__file__).resolve().parent / "results" / "search_relevance.json"
# the targets of issue 14 for the default configuration
TARGETS = {"overall": 0.85, "lexical": 0.95, "paraphrase": 0.70, "column": 0.90, "abbrev_typo": 0.90}
TARGET_P50_MS, TARGET_P95_MS, TARGET_BUILD_S, TARGET_FRESH_S = 50.0, 150.0, 60.0, 2.0

Rank = Callable[[SearchIndex, str], SearchPage]
# (label, embedder spec, ranking)
CONFIGS: list[tuple[str, str, Rank]] = [
    ("default: minilm, fused", "minilm", lambda ix, q: ix.description_search(q, limit=10)),
    ("minilm, trigram only", "minilm", lambda ix, q: ix.description_search(q, w_trgm=1.0, w_emb=0.0, limit=10)),
    ("minilm, embedding only", "minilm", lambda ix, q: ix.description_search(q, w_trgm=0.0, w_emb=1.0, limit=10)),
    ("minilm, column search", "minilm", lambda ix, q: ix.column_search(q, limit=10)),
    ("hashing, fused", "hashing", lambda ix, q: ix.description_search(q, limit=10)),
    ("hashing, embedding only", "hashing", lambda ix, q: ix.description_search(q, w_trgm=0.0, w_emb=1.0, limit=10)),
]


def evaluate(index: SearchIndex, rank: Rank, uid_to_ident: dict[str, str]) -> dict[str, Any]:
    """Per class and overall: MRR (first relevant rank), top-1 and top-3 hit rates; and the misses."""
    per: dict[str, list[int | None]] = {c: [] for c in CLASSES}
    misses = []
    for query, expected in QUERIES:
        ranked = [uid_to_ident[h.uid] for h in rank(index, query).results]
        found = [ranked.index(e) + 1 for e in expected if e in ranked]
        best = min(found) if found else None
        per[QUERY_CLASS[query]].append(best)
        if best != 1:
            misses.append({"query": query, "class": QUERY_CLASS[query], "expected": expected, "rank": best,
                           "top3": ranked[:3]})
    per["overall"] = [r for c in CLASSES for r in per[c]]

    def stats(ranks: list[int | None]) -> dict[str, float]:
        return {"mrr": statistics.fmean(1.0 / r if r else 0.0 for r in ranks),
                "top1": statistics.fmean(1.0 if r == 1 else 0.0 for r in ranks),
                "top3": statistics.fmean(1.0 if r and r <= 3 else 0.0 for r in ranks), "n": len(ranks)}

    return {"classes": {c: stats(r) for c, r in per.items()}, "misses": misses}


def catalog_lake(root: str, n: int) -> Lake:
    """A lake whose catalog holds ``n`` synthetic tables (one catalog commit)."""
    lake = Lake(root)
    records = [TableRecord(**doc, table_uri=lake.table_uri(doc["storage_hash"])) for doc in synthetic_catalog(n)]
    tables_ledger(lake).append([record.to_row() for record in records])
    assert len(all_tables(lake)) == n
    return lake


def latency(lake: Lake, repeats: int) -> dict[str, float]:
    """p50/p95 of ``description_search`` on ``lake`` in this (warm) process, catch-up included."""
    queries = [q for q, _ in QUERIES]
    for q in queries[:5]:  # warm caches
        description_search(lake, q)
    times = []
    for _ in range(repeats):
        for q in queries:
            t0 = time.perf_counter()
            description_search(lake, q)
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"queries": len(times), "p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}


def after_change(lake: Lake, runs: int = 3) -> float:
    """Median ms of ``description_search`` right after one table was added to the catalog."""
    times = []
    for i in range(runs):
        save_table_record(lake, TableRecord(uid=f"new-{i}", storage_hash=f"new_{i}", identifier=f"new_table_{i}",
                                            description="Hourly electricity prices", table_uri=lake.table_uri(f"new_{i}")))
        t0 = time.perf_counter()
        description_search(lake, "electricity prices")
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def fresh_cli(lake: Lake, runs: int = 3) -> float:
    """Median seconds of ``lakenodes search`` in a new process (interpreter start and imports included)."""
    cli = Path(sys.executable).with_name("lakenodes")
    times = []
    for q in ("daily stock prices", "home loan interest", "fx implied vol")[:runs]:
        t0 = time.perf_counter()
        subprocess.run([str(cli), "--lake", lake.uri, "search", q, "--json"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def configs(st_model: str | None) -> tuple[list[tuple[str, str, Rank]], dict[str, str]]:
    skipped = {}
    out = list(CONFIGS)
    if importlib.util.find_spec("sentence_transformers") is None:
        skipped["sentence-transformers"] = "skipped: package not installed"
    elif not st_model:
        skipped["sentence-transformers"] = "skipped: no local model (--st-model / LAKENODES_ST_MODEL)"
    else:
        out.append(("sentence-transformers, fused", f"sentence-transformers:{st_model}",
                    lambda ix, q: ix.description_search(q, limit=10)))
    return out, skipped


def relevance(report: dict[str, Any], tmp: str, st_model: str | None, show_misses: bool) -> None:
    uid_to_ident = {d["uid"]: d["identifier"] for d in CORPUS}
    chosen, report["skipped"] = configs(st_model)
    head = "".join(f"{c[:10]:>20}" for c in (*CLASSES, "overall"))
    print(f"{'configuration':<28}{head}\n{'':<28}" + f"{'MRR  top1  top3':>20}" * (len(CLASSES) + 1))
    indexes: dict[str, SearchIndex] = {}
    for label, spec, rank in chosen:
        if spec not in indexes:
            indexes[spec] = SearchIndex(f"{tmp}/{spec.replace(':', '_').replace('/', '_')}", embedder=spec)
            indexes[spec].rebuild(CORPUS)
        res = evaluate(indexes[spec], rank, uid_to_ident)
        report["relevance"][label] = res
        cells = "".join(f"{s['mrr']:>10.2f}{s['top1']:>5.2f}{s['top3']:>5.2f}"
                        for s in (res["classes"][c] for c in (*CLASSES, "overall")))
        print(f"{label:<28}{cells}")
        if show_misses:
            for m in res["misses"]:
                print(f"    miss [{m['class']}] rank={m['rank']} {m['query']!r} -> {m['top3']}")
    for label, note in report["skipped"].items():
        print(f"{label:<28}{note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 10,000-table catalog, fewer repetitions")
    parser.add_argument("--misses", action="store_true", help="print queries whose answer is not ranked first")
    parser.add_argument("--st-model", default=os.environ.get("LAKENODES_ST_MODEL"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    n_classes = {c: sum(1 for q in QUERY_CLASS.values() if q == c) for c in CLASSES}
    report: dict[str, Any] = {"corpus_tables": len(CORPUS), "queries": n_classes, "relevance": {}, "latency": {}}
    print(f"corpus: {len(CORPUS)} tables, {len(QUERIES)} queries ({n_classes})\n")
    with tempfile.TemporaryDirectory(prefix="lakenodes-search-bench-") as tmp:
        relevance(report, tmp, args.st_model, args.misses)
        sizes = [120] if args.quick else [120, 10000]
        embedder = get_embedder(None)
        print(f"\n{'catalog tables':<16}{'build s':>9}{'queries':>9}{'p50 ms':>9}{'p95 ms':>9}{'+1 table ms':>13}"
              f"{'fresh CLI s':>13}"
              f"   (lake description_search, default {embedder.name})")
        for n in sizes:
            lake = catalog_lake(f"{tmp}/lake_{n}", n)
            t0 = time.perf_counter()
            rebuild_index(lake)
            build_s = time.perf_counter() - t0
            lat = latency(lake, 2 if args.quick else 3) | {"build_s": build_s, "fresh_cli_s": fresh_cli(lake),
                                                           "after_change_ms": after_change(lake)}
            report["latency"][str(n)] = lat
            print(f"{n:<16}{build_s:>9.1f}{lat['queries']:>9}{lat['p50_ms']:>9.1f}{lat['p95_ms']:>9.1f}"
                  f"{lat['after_change_ms']:>13.1f}{lat['fresh_cli_s']:>13.2f}")
    default = report["relevance"][CONFIGS[0][0]]["classes"]
    checks = {f"MRR {c}": (default[c]["mrr"], ">=", t) for c, t in TARGETS.items()}
    big = report["latency"][max(report["latency"], key=int)]
    checks |= {"p50 ms": (big["p50_ms"], "<=", TARGET_P50_MS), "p95 ms": (big["p95_ms"], "<=", TARGET_P95_MS),
               "build s": (big["build_s"], "<=", TARGET_BUILD_S),
               "fresh CLI s": (big["fresh_cli_s"], "<=", TARGET_FRESH_S)}
    report["targets"] = {k: {"value": v, "target": t, "met": v >= t if op == ">=" else v <= t}
                         for k, (v, op, t) in checks.items()}
    print(f"\ntargets (default, latency at {max(report['latency'], key=int)} tables): " + "; ".join(
        f"{k} {v['value']:.2f} {checks[k][1]} {v['target']}: {'OK' if v['met'] else 'FAIL'}"
        for k, v in report["targets"].items()))
    report["elapsed_s"] = time.perf_counter() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS} ({report['elapsed_s']:.0f} s)")
    return 0 if all(v["met"] for v in report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
