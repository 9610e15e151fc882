"""Frame rules at the edges of the data (an edge-case audit): empty frames, pandas' missing values
and Python-object columns. Through real runs on a local Delta lake, with ``assert_rejected`` of
tests/test_frames.py (names the node, the validation phase and the problem; nothing stored changes).
"""

from __future__ import annotations

import pandas as pd
from test_frames import FrameNode, _read, day, pandas_frame, uid_level


def test_a_datetime_value_column_of_only_nat_in_nanoseconds_is_stored_as_nulls(local_lake):
    """Regression: pandas' default nanosecond column holding only NaT was refused as having
    'sub-microsecond values' (the exactness check read an all-null comparison as false)."""
    seen = pd.DatetimeIndex([pd.NaT, pd.NaT]).tz_localize("UTC")
    assert str(seen.dtype) == "datetime64[ns, UTC]"
    FrameNode().run_with(pandas_frame((day(1), day(2)), uid_level("AAA", "BBB"), value=[1.0, 2.0], seen_at=seen))
    assert _read(FrameNode())["seen_at"].to_list() == [None, None]

