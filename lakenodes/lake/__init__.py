"""The lake: its location and filesystems, the Delta table store, scans, watermarks, progress,
the ledger, maintenance and read-only SQL.

Knows nothing of the catalog, nodes or runs. Deliberately imports nothing here: the SQL worker
process imports :mod:`lakenodes.lake._sql_worker` without the rest of lakenodes.
"""
