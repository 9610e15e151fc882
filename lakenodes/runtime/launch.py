"""Launch a DataNode from text, as ``lakenodes run MODULE:CLASS --config JSON`` does.

Four questions are answered here, away from the CLI:

- which class ``MODULE:CLASS`` or ``path/to/file.py:CLASS`` names (:func:`loaded_node_class`):
  a file inside a package is imported under its dotted name (so its classes hash as when
  imported), and ``sys.path`` gains the import root only while the node runs;
- which configuration class a node class takes (:func:`config_class_of`): a ``Config`` or
  ``CONFIG_CLASS`` class attribute, else the annotation of the ``config`` parameter of an
  ``__init__`` the node defines itself, else a class-level ``config: MyConfig`` annotation;
  never silently the base ``DataNodeConfiguration`` of ``DataNode.__init__``;
- how untrusted JSON becomes that configuration (:func:`build_config`): the text (inline or
  ``@file``) is bounded in size (:data:`MAX_CONFIG_BYTES`) and nesting depth
  (:data:`MAX_CONFIG_DEPTH`), and every way it can be wrong is a ``LakenodesUserError``;
- how the node and its tree then run (:func:`build_node`, :func:`run_tree`), serially or on a
  spawn process pool.

Example:
    >>> from lakenodes import DataNode, DataNodeConfiguration
    >>> class RatesConfig(DataNodeConfiguration):
    ...     currency: str = "EUR"
    >>> class DailyRates(DataNode):
    ...     Config = RatesConfig  # or `config: RatesConfig` in the class body of a module-level class
    >>> build_config(DailyRates, '{"currency": "USD"}').currency
    'USD'
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import logging
import multiprocessing
import os
import signal
import sys
import types
import typing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .._internal.stops import relay_stops
from ..core.hashing import hash_namespace
from ..errors import LakenodesUserError, Terminated, raise_terminated
from ..nodes.node import DataNode
from .schedule import run_many

logger = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1024 * 1024
"""Largest ``--config`` accepted (inline or ``@file``): 1 MiB."""
MAX_CONFIG_DEPTH = 100
"""Deepest nesting of JSON objects/arrays accepted in ``--config``."""
CONFIG_ATTRIBUTES = ("Config", "CONFIG_CLASS")
"""Class attributes that name a node's configuration class explicitly."""
_HOW_TO_DECLARE = ("annotate `config: MyConfig` on the class (or on the `config` parameter of its `__init__`), "
                   "or set `Config = MyConfig`")


def config_class_of(node_class: type) -> type[BaseModel]:
    """The configuration class ``node_class`` is built from.

    Looked up in this order: a ``Config``/``CONFIG_CLASS`` class attribute; the annotation of the
    ``config`` parameter of an ``__init__`` defined below ``DataNode``; a ``config: MyConfig``
    annotation on the class (or a base class). Raises ``LakenodesUserError`` saying how to
    declare it when none is found.
    """
    for attribute in CONFIG_ATTRIBUTES:
        declared = getattr(node_class, attribute, None)
        if declared is None:
            continue
        if isinstance(declared, type) and issubclass(declared, BaseModel):
            return declared
        raise LakenodesUserError(f"{node_class.__name__}.{attribute} must be a DataNodeConfiguration class, "
                                 f"got {declared!r}")
    found = _from_init(node_class) or _from_class_annotation(node_class)
    if found is None:
        raise LakenodesUserError(f"cannot tell which configuration class {node_class.__name__} takes: {_HOW_TO_DECLARE}")
    logger.debug("%s takes %s", node_class.__name__, found.__name__)
    return found


def _from_init(node_class: type) -> type[BaseModel] | None:
    """The ``config`` annotation of the nearest ``__init__`` a user class defines (not DataNode's)."""
    for klass in node_class.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass is object or klass.__module__.partition(".")[0] == __name__.partition(".")[0]:
            return None  # only lakenodes' own __init__ (its `config` is the base class): not a declaration
        init = vars(klass)["__init__"]
        try:
            parameter = inspect.signature(init).parameters.get("config")
        except (TypeError, ValueError):
            return None
        if parameter is None or parameter.annotation is inspect.Parameter.empty:
            return None
        globalns = getattr(inspect.unwrap(init), "__globals__", None) or _module_namespace(klass)
        return _model_in(_resolve(parameter.annotation, globalns, dict(vars(klass)), f"{klass.__name__}.__init__"))
    return None


def _from_class_annotation(node_class: type) -> type[BaseModel] | None:
    """A ``config: MyConfig`` annotation on the class or the nearest base class that has one."""
    for klass in node_class.__mro__:
        annotation = vars(klass).get("__annotations__", {}).get("config")
        if annotation is not None:
            return _model_in(_resolve(annotation, _module_namespace(klass), dict(vars(klass)), klass.__name__))
    return None


def _module_namespace(klass: type) -> dict[str, Any]:
    module = sys.modules.get(klass.__module__)
    return dict(vars(module)) if module is not None else {}


def _resolve(annotation: Any, globalns: dict[str, Any], localns: dict[str, Any], where: str) -> Any:
    """An annotation, evaluated when it is a string (``from __future__ import annotations``)."""
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, globalns, localns)  # noqa: S307 - the user's own annotation, as typing does
    except Exception as error:
        raise LakenodesUserError(f"cannot resolve the annotation `config: {annotation}` of {where}: "
                                 f"{type(error).__name__}: {error}") from None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model class in ``annotation`` (also inside ``X | None`` or ``Annotated[X, ...]``)."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [model for arg in typing.get_args(annotation) if (model := _model_in(arg)) is not None]
        return models[0] if len(models) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def read_config_text(text: str, *, option: str = "--config") -> str:
    """``text`` itself, or the contents of the file named by ``@path``; at most MAX_CONFIG_BYTES."""
    if not text.startswith("@"):
        if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
            raise LakenodesUserError(f"{option} is larger than {_size(MAX_CONFIG_BYTES)}")
        return text
    path = text[1:]
    if not path.strip():  # Path("") is the working directory: "cannot read ... '': Is a directory"
        raise LakenodesUserError(f"{option} {text!r} names no file: write {option} @path/to/config.json")
    try:
        with Path(path).expanduser().open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)  # bounded: `@/dev/zero` must not read forever
    except OSError as error:
        raise LakenodesUserError(f"cannot read {option} file {path!r}: {error.strerror or error}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise LakenodesUserError(f"{option} file {path!r} is larger than {_size(MAX_CONFIG_BYTES)}")
    try:
        return data.decode("utf-8-sig")  # a byte order mark (Notepad, PowerShell 5's `-Encoding utf8`) is no JSON
    except UnicodeDecodeError as error:
        raise LakenodesUserError(f"{option} file {path!r} is not UTF-8 text: {error.reason} at byte {error.start}") from None


def parse_config_json(text: str, *, option: str = "--config") -> dict[str, Any]:
    """Parse ``text`` as one JSON object, refusing what would break or exhaust the interpreter:
    nesting deeper than MAX_CONFIG_DEPTH and integers over Python's int-string digit limit."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise LakenodesUserError(f"{option} is nested too deeply (more than {MAX_CONFIG_DEPTH} levels)") from None
    except json.JSONDecodeError as error:
        raise LakenodesUserError(f"{option} is not valid JSON: {error}") from None
    except ValueError as error:  # e.g. an integer beyond sys.get_int_max_str_digits()
        limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
        if "digits" in str(error) and limit:
            raise LakenodesUserError(f"{option} has an integer with more than {limit} digits") from None
        raise LakenodesUserError(f"{option} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise LakenodesUserError(f"{option} must be a JSON object, got {type(data).__name__}")
    if json_depth(data) > MAX_CONFIG_DEPTH:
        raise LakenodesUserError(f"{option} is nested too deeply (more than {MAX_CONFIG_DEPTH} levels)")
    return data


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, ``{}`` is 1), computed without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def build_config(node_class: type, text: str, *, option: str = "--config") -> BaseModel:
    """Validate ``text`` (JSON, or ``@file`` holding JSON) into ``node_class``'s configuration class.

    Defaults of the configuration class fill what the JSON leaves out, so ``"{}"`` builds the same
    configuration (and hashes) as ``MyConfig()`` in Python.
    """
    config_class = config_class_of(node_class)
    data = parse_config_json(read_config_text(text, option=option), option=option)
    try:
        return config_class.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(root)'}: {item['msg']}" for item in error.errors()
        )
        raise LakenodesUserError(f"{option} is not a valid {config_class.__name__}: {problems}") from None
    except RecursionError:
        raise LakenodesUserError(f"{option} is nested too deeply for {config_class.__name__}") from None


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count % (1024 * 1024) == 0 else f"{count} bytes"


# -- MODULE:CLASS -> node -> run ------------------------------------------------------------------
@contextlib.contextmanager
def loaded_node_class(target: str) -> Iterator[type]:
    """The DataNode class ``target`` names: ``dotted.module:Class`` (importable from the current
    directory) or ``path/to/file.py:Class``.

    The import root is put on ``sys.path`` for the block only (spawned worker processes inherit
    it while the node runs) and taken off again afterwards.
    """
    module_ref, sep, class_name = target.rpartition(":")
    if not sep or not module_ref.strip() or not class_name.strip():
        raise LakenodesUserError(f"{target!r} is not MODULE:CLASS (e.g. examples.tutorial_nodes:DailyRandomNumber "
                                 "or path/to/nodes.py:MyNode)")
    module_ref = module_ref.strip()
    if module_ref.endswith(".py") or "/" in module_ref or os.sep in module_ref:
        module_name, search_root = _module_name_for_file(Path(module_ref))
    else:
        module_name, search_root = module_ref, Path.cwd()
    with _on_sys_path(str(search_root)):
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as error:  # SystemExit: a script's top-level sys.exit(), not guarded by __main__
            raise LakenodesUserError(f"cannot import {module_ref!r} (from {search_root}): "
                                     f"{type(error).__name__}: {error}") from error
        node_class: Any = module
        for part in class_name.strip().split("."):
            node_class = getattr(node_class, part, None)
        if not (isinstance(node_class, type) and issubclass(node_class, DataNode)):
            available = sorted(name for name, value in vars(module).items()
                               if isinstance(value, type) and issubclass(value, DataNode) and not _is_lakenodes_class(value))
            what = "is not a DataNode class" if node_class is not None else "does not exist"
            raise LakenodesUserError(f"{class_name!r} in {module.__name__} {what}; DataNode classes there: "
                                     f"{', '.join(available) or 'none'}")
        yield node_class


def _is_lakenodes_class(value: type) -> bool:
    """lakenodes' own base classes (``lakenodes.DataNode`` and its core) are no user node."""
    return value.__module__.partition(".")[0] == __name__.partition(".")[0]


@contextlib.contextmanager
def _on_sys_path(folder: str) -> Iterator[None]:
    """``folder`` first on ``sys.path`` inside the block when it is not there already."""
    if folder in sys.path:
        yield
        return
    sys.path.insert(0, folder)
    logger.debug("importing from %s", folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


def _module_name_for_file(path: Path) -> tuple[str, Path]:
    """Dotted module name of a file (inside its package, so its classes hash as when imported)."""
    path = path.expanduser().resolve()
    if not path.is_file() or path.suffix != ".py":
        raise LakenodesUserError(f"no Python file at {path}")
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), folder


def build_node(node_class: type, text: str, *, namespace: str | None = None, option: str = "--config") -> Any:
    """``node_class`` built from the configuration ``text`` (see :func:`build_config`), in hash
    ``namespace`` when given: built inside ``hash_namespace(namespace)``, as the seeds' isolated
    runs are, so the dependencies its ``__init__`` builds are in it too; a constructor that fails
    is a ``LakenodesUserError``."""
    config = build_config(node_class, text, option=option)
    try:
        with hash_namespace(namespace) if namespace is not None else contextlib.nullcontext():
            return node_class(config)
    except LakenodesUserError:
        raise
    except Exception as error:
        raise LakenodesUserError(f"could not build {node_class.__name__}: {type(error).__name__}: {error}") from error


def _stream_format() -> str | None:
    """The format of this process's first root stream handler (None when it has none)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.formatter is not None:
            return handler.formatter._fmt
    return None


def like_parent(level: int, stream_format: str | None, stdout_to_stderr: bool = False) -> None:
    """In a spawned worker: log to stderr at the parent's ``level`` and format (nothing to do when
    the parent had no stream handler: a worker's warnings then reach stderr as Python's default);
    with ``stdout_to_stderr`` (the parent sent its stdout there: ``lakenodes --json run`` keeps stdout
    for one JSON document), what the worker's nodes print goes to stderr too.

    Example:
        >>> like_parent(logging.WARNING, None)
    """
    if stdout_to_stderr:
        sys.stdout = sys.stderr
    if stream_format is not None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(stream_format))
        handler.setLevel(level)
        logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(level)


def _start_worker(level: int, stream_format: str | None, stdout_to_stderr: bool) -> None:
    """A spawned worker of ``run_tree``: logging and stdout ``like_parent``; a SIGTERM (the parent
    relays a scheduler's stop) ends its run as in the parent: ``Terminated`` raised wherever the run
    is, the failure recorded, whichever of the worker's threads caught the signal."""
    relay_stops(_terminated_once)
    like_parent(level, stream_format, stdout_to_stderr)


def _terminated_once(signum: int, frame: object) -> None:
    """``raise_terminated``, ignoring the SIGTERMs after the first: a stop sent to the whole process
    group reaches a worker twice (from the scheduler, then relayed by the parent), and the second
    would cut short the recording of its run."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise_terminated(signum, frame)


def run_tree(node: Any, *, workers: int = 1, on_progress: Callable[[int, int, Any], None] | None = None,
             on_phase: Callable[[Any, str], None] | None = None, update_tree: bool = True) -> dict[str, Any]:
    """Run ``node`` and its dependencies once (``node`` alone without ``update_tree``); the
    :class:`~lakenodes.RunSummary` of each node's run by update hash, in the order they finished
    (``node``'s last).

    With ``workers > 1`` independent branches run in that many spawn processes (forking after
    delta-rs started threads can hang; a node run alone needs none). ``on_progress`` and
    ``on_phase`` are ``run_many``'s callbacks.
    """
    with contextlib.ExitStack() as stack:
        executor = None
        if workers > 1 and update_tree:
            context = multiprocessing.get_context("spawn")
            # spawned workers start with logging unset and their own stdout: they log and print as this process does
            executor = stack.enter_context(ProcessPoolExecutor(
                workers, mp_context=context, initializer=_start_worker,
                initargs=(logging.getLogger().getEffectiveLevel(), _stream_format(), sys.stdout is sys.stderr)))
        try:
            return run_many([node], executor=executor, on_progress=on_progress, on_phase=on_phase,
                            update_tree=update_tree)
        except Terminated:
            if executor is not None:  # the workers go on otherwise, and the shutdown waits for them
                for worker in multiprocessing.active_children():
                    worker.terminate()
            raise
