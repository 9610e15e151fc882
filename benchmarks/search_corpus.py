"""The search relevance benchmark's data: a hand-written catalog corpus and user queries.

The data lives in ``benchmarks/data/search_corpus.json`` (``corpus``: catalog documents in the
shape ``lakenodes.search`` indexes, with confusable neighbours: one asset class at several frequencies,
prices vs returns vs volatility, several macro series; ``queries``: ``{query, expected: [identifiers
that satisfy it], class}``, phrased the way a user types them, in four classes: ``lexical`` (the
table's own words), ``paraphrase`` (its meaning in other words), ``column`` (column names or their
labels) and ``abbrev_typo``). ``synthetic_catalog(n)`` derives a larger catalog for latency.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "search_corpus.json"
_data = json.loads(DATA.read_text(encoding="utf-8"))
CORPUS: list[dict[str, Any]] = _data["corpus"]
QUERIES: list[tuple[str, list[str]]] = [(q["query"], list(q["expected"])) for q in _data["queries"]]
QUERY_CLASS: dict[str, str] = {q["query"]: q["class"] for q in _data["queries"]}
CLASSES = ("lexical", "paraphrase", "column", "abbrev_typo")

_REGIONS = {
    "us": "United States", "eu": "Europe", "uk": "United Kingdom", "jp": "Japan", "apac": "Asia Pacific",
    "em": "emerging markets", "cn": "China", "ca": "Canada", "au": "Australia", "latam": "Latin America",
    "ch": "Switzerland", "nordic": "Nordics", "in": "India", "kr": "Korea", "br": "Brazil",
}
_VENDORS = ["bbg", "rfn", "fds", "ice", "spg", "msci", "vnd", "int"]


def synthetic_catalog(n: int) -> list[dict[str, Any]]:
    """Return ``n`` documents: the corpus first, then regional/vendor variants of it.

    Variants keep each table's vocabulary (as a real multi-region catalog would) and change its
    identifier, uid, namespace and description, so latency is measured on realistic text.
    """
    docs = [dict(d) for d in CORPUS[:n]]
    regions = list(_REGIONS)
    i = 0
    while len(docs) < n:
        base = CORPUS[i % len(CORPUS)]
        region = regions[(i // len(CORPUS)) % len(regions)]
        vendor = _VENDORS[(i // (len(CORPUS) * len(regions))) % len(_VENDORS)]
        ident = f"{base['identifier']}_{region}_{vendor}_{i}"
        doc = dict(base)
        doc.update(
            uid=hashlib.blake2b(f"syn{ident}".encode(), digest_size=8).hexdigest(),
            storage_hash=hashlib.blake2b(f"storage{ident}".encode(), digest_size=16).hexdigest(),
            identifier=ident,
            namespace=vendor,
            description=f"{base['description']} Coverage: {_REGIONS[region]}, vendor {vendor.upper()}.",
            labels=[*base["labels"], region],
        )
        docs.append(doc)
        i += 1
    return docs
