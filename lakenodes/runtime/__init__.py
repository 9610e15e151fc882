"""The runtime: the dependency graph (no I/O), running one node, scheduling many over executors,
and the run hooks (catalog recorder, progress) a run reports to."""
