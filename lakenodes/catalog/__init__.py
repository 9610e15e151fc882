"""The catalog, stored in the lake: table records, identifier claims, updaters, runs and assets."""
