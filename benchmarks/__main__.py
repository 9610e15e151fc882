"""``python -m benchmarks [--quick] [--only NAME]``: the core performance benchmarks (see core.py).

Separate benchmarks, each with ``--quick``: ``python -m benchmarks.catalog_growth`` (catalog writes and
lookups as the lake grows to 2,000 tables) and ``python -m benchmarks.search_relevance``.
"""

from __future__ import annotations

import sys

from benchmarks.core import main

if __name__ == "__main__":
    sys.exit(main())
