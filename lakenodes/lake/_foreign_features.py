"""Table features another engine may turn on that lakenodes' own reads, statistics and rewrites
cannot follow: they go by the add actions' paths, the Parquet files' own column names and UTC times.

Example (``example``: a temporary lake with one table, see conftest.py):
    >>> refuse_foreign_features(example.node.store.table())  # a plain lakenodes table: nothing to refuse
"""

from __future__ import annotations

from deltalake import DeltaTable

from ..core.frames import TIME_INDEX
from ..errors import LakenodesUserError


def refuse_foreign_features(table: DeltaTable) -> None:
    """Raise when another engine (e.g. Spark) turned on what lakenodes' own reads, statistics and
    rewrites cannot follow, which go by the add actions and the Parquet files' own columns:

    - deletion vectors: lakenodes would see the rows they hide, and its rewrites would bring them
      back beside the old files (their removes match no add that carries a deletion vector);
    - column mapping with a column stored under another name (a rename, or a column added after
      mapping was turned on): lakenodes would read that column as nulls and rewrite it so;
    - ``time_index`` stored as ``timestamp_ntz`` (rewritten from naive datetimes): lakenodes'
      filters compare UTC instants, which Arrow refuses to compare with naive ones;
    - a table partitioned by ``time_index``: its data files hold no ``time_index`` column, whose
      exact bounds lakenodes' statistics read from the files' footers.
    """
    metadata = table.metadata()
    partitions = metadata.partition_columns
    if TIME_INDEX in partitions:
        raise LakenodesUserError(
            f"{table.table_uri} is partitioned by time_index (partition columns {partitions}; another engine wrote it, "
            "e.g. write_deltalake(..., partition_by=['time_index'])): lakenodes reads each data file's time_index, "
            "which such files do not hold; write the table again partitioned by its first identity dimension "
            "(partition_by=['unique_identifier']), or unpartitioned for a plain time series (docs/interop.md)")
    reader_features = table.protocol().reader_features or ()
    if "deletionVectors" in reader_features:
        raise LakenodesUserError(
            f"{table.table_uri} uses Delta deletion vectors (turned on by another engine, e.g. Spark's "
            "delta.enableDeletionVectors): lakenodes cannot see which rows they delete, so it leaves this table "
            "alone; restate or delete rows through lakenodes instead (docs/interop.md, 'Appending with Spark')")
    if "timestampNtz" in reader_features:
        kinds = {field.name: getattr(field.type, "type", None) for field in table.schema().fields}
        if kinds.get(TIME_INDEX) == "timestamp_ntz":
            raise LakenodesUserError(
                f"{table.table_uri} stores time_index as timestamp_ntz, without a time zone (another engine rewrote "
                "it, e.g. write_deltalake(..., schema_mode='overwrite') of naive datetimes): lakenodes' time index is "
                "a UTC timestamp; write the table again with time_index as UTC timestamps")
    if metadata.configuration.get("delta.columnMapping.mode", "none") == "none":
        return
    for field in table.schema().fields:
        physical = (field.metadata or {}).get("delta.columnMapping.physicalName", field.name)
        if physical != field.name:
            raise LakenodesUserError(
                f"{table.table_uri} stores column {field.name!r} as {physical!r} (Delta column mapping, turned on by "
                "another engine, e.g. Spark's RENAME COLUMN or ADD COLUMNS with delta.columnMapping.mode): lakenodes "
                "reads columns by their names, so it leaves this table alone (docs/interop.md, 'Appending with Spark')")
