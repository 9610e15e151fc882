"""``python -m benchmarks [--quick] [--only NAME]``: the core performance benchmarks (see core.py)."""

from __future__ import annotations

import sys

from benchmarks.core import main

if __name__ == "__main__":
    sys.exit(main())
