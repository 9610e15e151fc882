"""A DataNode subclass's ``__init__`` runs inside the hash namespace the node is given, as Main
Sequence's DataNode does it: ``Prices(config, hash_namespace="ci")`` or ``test_node=True`` then
also isolates the dependencies that ``__init__`` builds (``self.upstream = Upstream(...)``) without
passing the namespace on, and an ``__init__`` that does not take those keywords accepts them.

Example:
    >>> from lakenodes.core.hashing import current_hash_namespace
    >>> def __init__(self, config):
    ...     self.seen = (config, current_hash_namespace())
    >>> class Holder:
    ...     __init__ = namespaced_init(__init__)
    >>> Holder("c", hash_namespace="ci").seen, Holder("c", test_node=True).seen, Holder("c").seen
    (('c', 'ci'), ('c', 'test'), ('c', ''))
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from ..core.hashing import checked_namespace, hash_namespace
from ..errors import ConfigurationError

NAMESPACE_KEYWORDS = ("hash_namespace", "test_node")
TEST_NAMESPACE = "test"


def namespaced_init(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` (a subclass's ``__init__``) run inside the namespace its call names: the explicit
    ``hash_namespace=`` (a non-empty string), else ``"test"`` for ``test_node=True``. The keywords
    are passed on only when ``init`` takes them (the base ``DataNode.__init__`` reads the active
    namespace otherwise)."""
    if getattr(init, "__lakenodes_namespaced__", False):
        return init
    try:
        parameters = inspect.signature(init).parameters.values()
    except (TypeError, ValueError):
        return init
    any_keyword = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters)
    taken = {parameter.name for parameter in parameters} if not any_keyword else set(NAMESPACE_KEYWORDS)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        namespace = kwargs.get("hash_namespace")
        if namespace is not None:
            if not isinstance(namespace, str):
                raise ConfigurationError(f"hash_namespace must be a string, got {type(namespace).__name__}")
            namespace = checked_namespace(namespace)  # one of only whitespace is refused
        elif kwargs.get("test_node") is True:
            namespace = TEST_NAMESPACE
        passed = {key: value for key, value in kwargs.items() if key in taken or key not in NAMESPACE_KEYWORDS}
        if namespace is None or (namespace == "" and "hash_namespace" in taken):
            init(self, *args, **passed)  # no namespace named, or production passed on to the node itself
            return
        with hash_namespace(namespace):
            init(self, *args, **passed)

    __init__.__lakenodes_namespaced__ = True  # type: ignore[attr-defined]
    return __init__
