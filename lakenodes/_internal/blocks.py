"""Context managers that say how they are used when shown without being entered.

``hash_namespace("ci")`` or ``use_lake("/data/lake")`` typed alone in a REPL does nothing (the block is
never entered), and the REPL showed only ``<contextlib._GeneratorContextManager object at 0x...>``:
the nodes built next went to the production tables or the default lake. ``with_block`` managers show
how to use them instead.

Example:
    >>> @with_block
    ... def shout(word: str):
    ...     yield word.upper()
    >>> shout("hi")
    <shout('hi') changes nothing by itself: use it as a block, with shout('hi'): ...>
    >>> with shout("hi") as loud:
    ...     loud
    'HI'
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ShownBlock(contextlib.AbstractContextManager[T]):
    """``manager``, shown as how to use it (see the module)."""

    def __init__(self, manager: contextlib.AbstractContextManager[T], call: str) -> None:
        self._manager, self._call = manager, call

    def __enter__(self) -> T:
        return self._manager.__enter__()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> bool | None:
        return self._manager.__exit__(kind, error, traceback)

    def __repr__(self) -> str:
        return f"<{self._call} changes nothing by itself: use it as a block, with {self._call}: ...>"


def with_block(function: Callable[P, Iterator[T]]) -> Callable[P, ShownBlock[T]]:
    """``contextlib.contextmanager``, whose managers are ``ShownBlock``s."""
    manager = contextlib.contextmanager(function)

    @functools.wraps(function)
    def block(*args: P.args, **kwargs: P.kwargs) -> ShownBlock[T]:
        shown: list[Any] = [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
        return ShownBlock(manager(*args, **kwargs), f"{function.__name__}({', '.join(shown)})")

    return block
