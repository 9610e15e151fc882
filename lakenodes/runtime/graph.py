"""The dependency graph of a run, built without I/O: every node once, dependencies first.

Example:
    >>> graph, needs = {}, {}
    >>> collect_dependencies(APIDataNode("prices_0f3c", lake=None), graph, needs)
    >>> graph, needs
    ({}, {})
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigurationError, DependencyCycleError, NodeRunError
from ..nodes.api_node import APIDataNode
from ..nodes.node import BaseNode, DataNode


def collect_dependencies(root: BaseNode, graph: dict[str, DataNode], needs: dict[str, set[str]],
                         broken: dict[str, NodeRunError] | None = None) -> None:
    """Add the tree under ``root`` to ``graph`` in topological order (dependencies first, each
    update_hash once; ``dependencies()`` is called once per node) and what each node waits for
    to ``needs``. Read-only APIDataNodes are leaves that never run. A node whose ``dependencies()``
    fails is raised, or, given ``broken``, added to the graph with its error there (it cannot run,
    the nodes that need it are skipped, the others run)."""
    path: list[str] = []

    def visit(node: BaseNode) -> None:
        key = node.update_hash
        if key in graph or not isinstance(node, DataNode):
            return
        if key in path:
            cycle = path[path.index(key):] + [key]
            raise DependencyCycleError(f"dependency cycle: {' -> '.join(cycle)}")
        path.append(key)
        try:
            dependencies = _dependencies_of(node)
        except NodeRunError as error:
            if broken is None:
                raise
            path.pop()
            graph[key], needs[key], broken[key] = node, set(), error
            return
        for dependency in dependencies:
            visit(dependency)
        path.pop()
        graph[key] = node
        needs[key] = {dependency.update_hash for dependency in dependencies if isinstance(dependency, DataNode)}

    visit(root)


def _dependencies_of(node: DataNode) -> list[BaseNode]:
    try:
        dependencies = node.dependencies()
    except NodeRunError:
        raise
    except Exception as error:  # user code: report it like every other phase
        raise NodeRunError(repr(node), "dependencies", error) from error
    # a definition mistake, as a dependency cycle is: ConfigurationError (``lakenodes run``: exit 2, no retry helps)
    if not isinstance(dependencies, Mapping):
        raise NodeRunError(repr(node), "dependencies", ConfigurationError(
            f"{type(node).__name__}.dependencies() must return a dict of name -> DataNode or APIDataNode "
            f"(return {{}} if none), got {described(dependencies)}"))
    for name, dependency in dependencies.items():
        if not isinstance(dependency, (DataNode, APIDataNode)):
            raise NodeRunError(repr(node), "dependencies", ConfigurationError(
                f"{type(node).__name__}.dependencies()[{name!r}] is {described(dependency)}, not a DataNode or "
                "APIDataNode (give each dependency its own name)"))
    return list(dependencies.values())


def described(value: object) -> str:
    """``value``'s type as a sentence names it: "a list", "None", "the class Prices" (not an instance)."""
    if value is None:
        return "None"
    if isinstance(value, type):
        return f"the class {value.__name__} (not an instance of it)"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
