"""Search relevance and latency benchmark for ``lakenodes.search``.

Runs every query of ``benchmarks.search_corpus.QUERIES`` against an index of the hand-written corpus
and reports MRR and recall@5 per embedder and mode, then query latency on synthetic catalogs of
1,000 and 10,000 tables.

    python -m benchmarks.search_relevance           # full run
    python -m benchmarks.search_relevance --quick   # <= 60 s: 1,000-table latency only
    python -m benchmarks.search_relevance --misses  # also list queries whose answer is not ranked 1st

A sentence-transformers embedder is benchmarked too when the package is installed and a local
model is given with ``--st-model PATH`` or ``LAKENODES_ST_MODEL``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.search_corpus import CORPUS, QUERIES, synthetic_catalog
from lakenodes.search import Embedder, HashingEmbedder, SearchIndex, SearchPage, SentenceTransformerEmbedder

RESULTS = Path(__file__).resolve().parent / "results" / "search_relevance.json"
TARGET_MRR = 0.8
TARGET_P50_MS = 50.0

MODES: dict[str, Callable[[SearchIndex, str], SearchPage]] = {
    "description (blend)": lambda ix, q: ix.description_search(q, limit=10),
    "trigram only": lambda ix, q: ix.description_search(q, w_trgm=1.0, w_emb=0.0, limit=10),
    "embedding only": lambda ix, q: ix.description_search(q, w_trgm=0.0, w_emb=1.0, limit=10),
    "column": lambda ix, q: ix.column_search(q, limit=10),
}


def evaluate(index: SearchIndex, mode: str, uid_to_ident: dict[str, str]) -> dict[str, Any]:
    """MRR (first relevant rank), recall@5 (share of the expected tables in the top 5) and misses."""
    rr, recall, misses = [], [], []
    for query, expected in QUERIES:
        ranked = [uid_to_ident[h.uid] for h in MODES[mode](index, query).results]
        ranks = [ranked.index(e) + 1 for e in expected if e in ranked]
        rr.append(1.0 / min(ranks) if ranks else 0.0)
        recall.append(sum(1 for e in expected if e in ranked[:5]) / len(expected))
        if not ranks or min(ranks) > 1:
            misses.append(
                {
                    "query": query,
                    "expected": expected,
                    "rank": min(ranks) if ranks else None,
                    "top3": ranked[:3],
                }
            )
    return {"mrr": statistics.fmean(rr), "recall@5": statistics.fmean(recall), "misses": misses}


def latency(index: SearchIndex, repeats: int) -> dict[str, float]:
    queries = [q for q, _ in QUERIES]
    for q in queries[:5]:  # warm caches
        index.description_search(q)
    times = []
    for _ in range(repeats):
        for q in queries:
            t0 = time.perf_counter()
            index.description_search(q)
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {
        "queries": len(times),
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
    }


def embedders(st_model: str | None) -> list[tuple[str, Embedder | None, str]]:
    """(label, embedder or None if skipped, note)."""
    out: list[tuple[str, Embedder | None, str]] = [("hashing", HashingEmbedder(), "")]
    if importlib.util.find_spec("sentence_transformers") is None:
        out.append(("sentence-transformers", None, "skipped: package not installed"))
    elif not st_model:
        out.append(
            ("sentence-transformers", None, "skipped: no local model (--st-model / LAKENODES_ST_MODEL)")
        )
    else:
        out.append(("sentence-transformers", SentenceTransformerEmbedder(st_model), ""))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="skip the 10,000-table catalog, fewer repetitions"
    )
    parser.add_argument(
        "--misses", action="store_true", help="print queries whose answer is not ranked first"
    )
    parser.add_argument("--st-model", default=os.environ.get("LAKENODES_ST_MODEL"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    uid_to_ident = {d["uid"]: d["identifier"] for d in CORPUS}
    report: dict[str, Any] = {
        "corpus_tables": len(CORPUS),
        "queries": len(QUERIES),
        "relevance": {},
        "latency": {},
        "skipped": {},
    }
    print(f"corpus: {len(CORPUS)} tables, {len(QUERIES)} queries\n")
    print(f"{'embedder':<24}{'mode':<22}{'MRR':>7}{'R@5':>7}")
    with tempfile.TemporaryDirectory(prefix="lakenodes-search-bench-") as tmp:
        for label, embedder, note in embedders(args.st_model):
            if embedder is None:
                print(f"{label:<24}{note}")
                report["skipped"][label] = note
                continue
            index = SearchIndex(f"{tmp}/{label}", embedder=embedder)
            index.rebuild(CORPUS)
            for mode in MODES:
                res = evaluate(index, mode, uid_to_ident)
                report["relevance"].setdefault(label, {})[mode] = res
                print(f"{label:<24}{mode:<22}{res['mrr']:>7.3f}{res['recall@5']:>7.3f}")
                if args.misses:
                    for m in res["misses"]:
                        print(f"    miss rank={m['rank']} {m['query']!r} -> {m['top3']}")

        sizes = [1000] if args.quick else [1000, 10000]
        repeats = 2 if args.quick else 5
        print(
            f"\n{'catalog tables':<16}{'build s':>9}{'queries':>9}{'p50 ms':>9}{'p95 ms':>9}   (description_search, hashing)"
        )
        for n in sizes:
            index = SearchIndex(f"{tmp}/latency_{n}")
            t0 = time.perf_counter()
            index.rebuild(synthetic_catalog(n))
            build_s = time.perf_counter() - t0
            lat = latency(index, repeats) | {"build_s": build_s}
            report["latency"][str(n)] = lat
            print(f"{n:<16}{build_s:>9.1f}{lat['queries']:>9}{lat['p50_ms']:>9.1f}{lat['p95_ms']:>9.1f}")
        if args.quick:
            report["skipped"]["latency_10000"] = "--quick"

    blend = report["relevance"]["hashing"]["description (blend)"]["mrr"]
    p50 = report["latency"].get("10000", report["latency"]["1000"])["p50_ms"]
    size = "10000" if "10000" in report["latency"] else "1000"
    ok_mrr, ok_lat = blend >= TARGET_MRR, p50 <= TARGET_P50_MS
    report["targets"] = {
        "mrr_hashing_blend": {"value": blend, "target": TARGET_MRR, "met": ok_mrr},
        f"p50_ms_{size}": {"value": p50, "target": TARGET_P50_MS, "met": ok_lat},
    }
    report["elapsed_s"] = time.perf_counter() - started
    print(
        f"\ntargets: MRR(hashing, blend) {blend:.3f} >= {TARGET_MRR}: {'OK' if ok_mrr else 'FAIL'}; "
        f"p50 at {size} tables {p50:.1f} ms <= {TARGET_P50_MS:.0f}: {'OK' if ok_lat else 'FAIL'}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(
        f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS} "
        f"({report['elapsed_s']:.0f} s)"
    )
    return 0 if ok_mrr and ok_lat else 1


if __name__ == "__main__":
    sys.exit(main())
