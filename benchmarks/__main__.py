"""``python -m benchmarks [--quick] [--only NAME]``: the core performance benchmarks (see core.py;
the sections are in writes.py and reads.py).

``--only search`` runs the search relevance and latency benchmark (:mod:`benchmarks.search_relevance`,
which takes its own options, e.g. ``--quick``, ``--misses``). Separate benchmarks, each with
``--quick``: ``python -m benchmarks.catalog_growth`` (catalog writes and lookups as the lake grows to
2,000 tables), ``python -m benchmarks.minute_cadence`` (a table written every minute, with and
without hourly optimizes) and ``python -m benchmarks.search_relevance``.
"""

from __future__ import annotations

import sys

from benchmarks.core import main


def _only_search(argv: list[str]) -> list[str] | None:
    """The remaining arguments when the command is ``--only search``, else None."""
    for i, arg in enumerate(argv):
        if arg == "--only" and i + 1 < len(argv) and argv[i + 1] == "search":
            return argv[:i] + argv[i + 2 :]
        if arg == "--only=search":
            return argv[:i] + argv[i + 1 :]
    return None


if __name__ == "__main__":
    rest = _only_search(sys.argv[1:])
    if rest is not None:
        from benchmarks.search_relevance import main as search_main

        sys.exit(search_main(rest))
    sys.exit(main())
