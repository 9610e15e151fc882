"""A DataNode subclass's ``__init__`` runs inside the hash namespace the node is given, as Main
Sequence's DataNode does it: ``Prices(config, hash_namespace="ci")`` or ``test_node=True`` then
also isolates the dependencies that ``__init__`` builds (``self.upstream = Upstream(...)``) without
passing the namespace on, and an ``__init__`` that does not take those keywords accepts them.

The namespace is applied where the class is called (the metaclass's ``__call__``), not by wrapping
``__init__``: the class keeps the user's own ``__init__`` function, so a tool that patches it in place
(IPython's ``%autoreload 2`` sets the edited ``__code__`` on the function the class holds) edits the
code that runs, with the user module's globals.

Example:
    >>> from lakenodes.core.hashing import current_hash_namespace
    >>> class Holder(metaclass=NamespacedConstruction):
    ...     def __init__(self, config):
    ...         self.seen = (config, current_hash_namespace())
    >>> Holder("c", hash_namespace="ci").seen, Holder("c", test_node=True).seen, Holder("c").seen
    (('c', 'ci'), ('c', 'test'), ('c', ''))
"""

from __future__ import annotations

import abc
import inspect
from typing import Any

from ..core.hashing import checked_namespace, hash_namespace
from ..errors import ConfigurationError

NAMESPACE_KEYWORDS = ("hash_namespace", "test_node")
TEST_NAMESPACE = "test"


def _accepted_keywords(inits: list[Any]) -> set[str]:
    """The namespace keywords the first of ``inits`` (``__init__`` functions in MRO order) can be
    given: those it names, and, when it takes ``**kwargs``, those the next one accepts (where it
    presumably forwards them); one whose signature cannot be read takes them all."""
    if not inits:
        return set()
    try:
        parameters = inspect.signature(inits[0]).parameters.values()
    except (TypeError, ValueError):
        return set(NAMESPACE_KEYWORDS)
    named = {parameter.name for parameter in parameters if parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)} & set(NAMESPACE_KEYWORDS)
    if len(named) == len(NAMESPACE_KEYWORDS) or not any(
            parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return named
    return named | _accepted_keywords(inits[1:])


def _named_namespace(kwargs: dict[str, Any]) -> str | None:
    """The namespace a constructor call names: the explicit ``hash_namespace=`` (a string, not only
    whitespace), else ``"test"`` for ``test_node=True``, else None."""
    namespace = kwargs.get("hash_namespace")
    if namespace is not None:
        if not isinstance(namespace, str):
            raise ConfigurationError(f"hash_namespace must be a string, got {type(namespace).__name__}")
        return checked_namespace(namespace)  # one of only whitespace is refused
    return TEST_NAMESPACE if kwargs.get("test_node") is True else None


class NamespacedConstruction(abc.ABCMeta):
    """The metaclass of DataNode: ``Node(...)`` builds the node inside the namespace its call names.
    The keywords reach ``__init__`` only when it takes them (the base ``DataNode.__init__`` reads the
    active namespace otherwise). An ``ABCMeta``, so that a node class may also derive from ``abc.ABC``."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        namespace = _named_namespace(kwargs)
        inits = [klass.__dict__["__init__"] for klass in cls.__mro__ if "__init__" in klass.__dict__]
        taken = _accepted_keywords(inits)
        passed = {key: value for key, value in kwargs.items() if key in taken or key not in NAMESPACE_KEYWORDS}
        if namespace is None or (namespace == "" and "hash_namespace" in taken):
            return super().__call__(*args, **passed)  # no namespace named, or production passed on to the node
        with hash_namespace(namespace):
            return super().__call__(*args, **passed)
