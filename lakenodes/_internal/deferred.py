"""Heavy third-party modules imported on first use, so ``import lakenodes`` stays cheap.

``import deltalake, polars`` imports neither pyarrow nor numpy; a cron job that only asks
``lakenodes --version``, or a module that only declares a configuration, should not pay for them
(pyarrow and numpy alone take longer to import than deltalake and polars together;
``pyarrow.dataset`` also imports pandas). Modules write ``from .._internal.deferred import pa``
instead of ``import pyarrow as pa``: type checkers see the real module, the running code sees a
:class:`DeferredModule` that imports it the first time an attribute is read, then behaves as
the module (each attribute read once is kept on the proxy, so later reads cost what a module
attribute costs).

Module-level values built from these modules (schemas, file formats) belong in functions
(``functools.cache``), or the import happens at ``import lakenodes`` again;
``tests/test_import_time.py`` keeps that true.

Example:
    >>> import sys
    >>> json_module = DeferredModule("json")
    >>> json_module.dumps([1])
    '[1]'
    >>> json_module.dumps is sys.modules["json"].dumps
    True
"""

from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any


class DeferredModule(types.ModuleType):
    """A stand-in for the module ``name`` that imports it on the first attribute read."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):  # introspection (doctest, copy, inspect) must not import
            raise AttributeError(attribute)
        value = getattr(importlib.import_module(self.__name__), attribute)
        setattr(self, attribute, value)
        return value

    def __repr__(self) -> str:
        return f"<deferred module {self.__name__!r}>"


if TYPE_CHECKING:
    import datafusion
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pds
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
else:
    datafusion = DeferredModule("datafusion")
    np = DeferredModule("numpy")
    pa = DeferredModule("pyarrow")
    pc = DeferredModule("pyarrow.compute")
    pds = DeferredModule("pyarrow.dataset")
    pafs = DeferredModule("pyarrow.fs")
    pq = DeferredModule("pyarrow.parquet")

__all__ = ["DeferredModule", "datafusion", "np", "pa", "pafs", "pc", "pds", "pq"]
