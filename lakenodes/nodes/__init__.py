"""Nodes: the core ``DataNode`` / ``APIDataNode`` (identity, reads, statistics) without running."""
