"""What every ``lakenodes`` command shares: the global options (``--lake``, ``--json``,
``--verbose``, accepted before or after the command name), the resolved lake, logging on stderr,
and exceptions turned into exit codes with one ``error:`` line.

Commands are registered with :func:`command`::

    @command(app, "list")
    def data_node_list(session: Session, filters: TableFilterOption = None) -> None:
        session.output(document, render)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._internal.collector import resume_collection
from ..errors import LakenodesUserError, NodeRunError, RowsStoredError, Terminated, hide_secrets, one_line
from ..lake.existence import lake_problem
from ..lake.location import DEFAULT_LAKE_PATH, Lake, use_lake
from ._groups import (
    FAILURE,
    INTERRUPTED,
    TERMINATED,
    USER_ERROR,
    ClickException,
    CommandFailed,
    exit_code_of,
    print_error,
)
from ._outcome import run_outcome
from ._render import error_document, json_document, stdout_console

if TYPE_CHECKING:
    from rich.console import Console  # imported by the commands that render

LakeOption = Annotated[str | None, typer.Option(
    "--lake", metavar="URI", show_default=False,
    help="Lake root: a folder or s3://bucket/prefix; a relative folder (also in $LAKENODES_URI) is resolved against "
         "the working directory [default: $LAKENODES_URI, else ./lake].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one machine-readable JSON document on stdout.")]
VerboseOption = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Log at INFO level to stderr, and a failure's traceback (not a user mistake's).")]
NamespaceOption = Annotated[str | None, typer.Option(
    "--namespace", "-n", show_default=False, help="Namespace in which an IDENTIFIER is resolved [default: none].")]
TableArgument = Annotated[str, typer.Argument(metavar="UID", help="Table uid, identifier or storage hash.")]


def optional_metavar(name: str, *, repeated: bool = False) -> str:
    """The metavar of an optional argument: typer 0.27 and later bracket it (``[UID]...``) themselves,
    earlier ones show it as given (a bracketed one came out ``[[UID]...]...`` on the later).

    Example:
        >>> optional_metavar("UID", repeated=True) in ("UID", "[UID]...")
        True
    """
    major, minor = (int(part) for part in typer.__version__.split(".")[:2])
    return name if (major, minor) >= (0, 27) else f"[{name}]" + ("..." if repeated else "")
TableFilterOption = Annotated[list[str] | None, typer.Option(
    "--filter", "-f", metavar="K=V", show_default=False,
    help="Django-style lookup on the table records, repeatable: identifier__contains=px, labels__contains=daily, "
         "namespace=, data_frequency_id__in='[\"1d\",\"1m\"]' (or data_frequency_id__in=1d,1m).")]
AssetFilterOption = Annotated[list[str] | None, typer.Option(
    "--filter", "-f", metavar="K=V", show_default=False,
    help="Django-style lookup on the assets, repeatable: ticker__in='[\"NVDA\",\"AAPL\"]' (or ticker__in=NVDA,AAPL), "
         "unique_identifier__contains=US")]


@dataclasses.dataclass
class GlobalOptions:
    """The options given before the command name (kept on the root context)."""

    lake: str | None = None
    json: bool = False
    verbose: bool = False


@dataclasses.dataclass
class Session:
    """What every command gets: the resolved lake, the output mode and the warnings given so far."""

    lake: Lake
    json: bool
    verbose: bool
    warnings: list[str] = dataclasses.field(default_factory=list)
    lake_origin: str = ""  # where the lake's location came from, for logs: "--lake 'lake', relative to ..."

    def warn(self, message: str) -> None:
        """One ``warning: ...`` line on stderr (the command goes on, exit 0); the JSON document's
        ``warnings`` carry it too."""
        self.warnings.append(one_line(message))
        typer.echo(f"warning: {self.warnings[-1]}", err=True)

    def output(self, document: Mapping[str, Any], render: Callable[[Console], None]) -> None:
        """``document`` as JSON (led by ``"ok"``, with the ``warnings``) with ``--json``, else
        ``render`` for humans."""
        if self.json:
            typer.echo(json_document(document, self.warnings))
        else:
            render(stdout_console())

    def output_line(self, document: Mapping[str, Any], line: str) -> None:
        """``document`` as JSON (as :meth:`output` prints it) with ``--json``, else one plain line
        (no console to set up: the output of a scheduled ``lakenodes run``)."""
        typer.echo(json_document(document, self.warnings) if self.json else line)


_COMMON_PARAMETERS = [
    inspect.Parameter("typer_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
    inspect.Parameter("lake", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=LakeOption),
    inspect.Parameter("json_output", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOption),
    inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=VerboseOption),
]


def command(group: typer.Typer, name: str, *, lake_must_exist: bool = True,
            resumes_collection: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(session, ...)`` as ``group name`` with the common options added.

    The wrapper resolves the lake, sets up logging and turns errors into exit codes; it resumes
    the garbage collector the ``lakenodes`` entry point paused, unless the command does it itself
    once set up (``resumes_collection=False``; see :mod:`lakenodes._internal.collector`).
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        parameters = list(inspect.signature(func, eval_str=True).parameters.values())[1:]

        @functools.wraps(func)
        def wrapper(*args: Any, typer_context: typer.Context, lake: str | None = None, json_output: bool = False,
                    verbose: bool = False, **kwargs: Any) -> None:
            options = typer_context.find_object(GlobalOptions) or GlobalOptions()
            json_mode, verbose = json_output or options.json, verbose or options.verbose
            with _logging_to_stderr(verbose), _errors_to_exit_codes(json_mode, verbose):
                given = lake or options.lake
                session = Session(open_lake(given, lake_must_exist), json_mode, verbose, lake_origin=lake_origin(given))
                if resumes_collection:
                    resume_collection()
                with use_lake(session.lake):
                    func(session, *args, **kwargs)

        wrapper.__signature__ = inspect.Signature([*parameters, *_COMMON_PARAMETERS])  # type: ignore[attr-defined]
        group.command(name)(wrapper)
        return func

    return decorate


def open_lake(uri: str | None, must_exist: bool) -> Lake:
    """The lake at ``uri`` (else ``$LAKENODES_URI``, else ``./lake``). A location that is a file or
    a bucket that does not exist is a user mistake; when ``must_exist``, so is a location where no
    lake is (``--lake .`` in a project, a mistyped prefix: reading must not write a search index there)."""
    lake = Lake(uri)
    problem = lake_problem(lake, require_lake=must_exist)
    if problem:
        hint = "pass --lake URI or set LAKENODES_URI (a lake is created by its first run)"
        raise LakenodesUserError(f"{problem}; {hint}" if "no lake" in problem else f"{problem}: check --lake / LAKENODES_URI")
    return lake


def lake_origin(given: str | None) -> str:
    """Where the lake's location comes from (``--lake``, ``$LAKENODES_URI`` or the default) and, for
    a relative folder, the working directory it was resolved against.

    Example:
        >>> lake_origin("s3://bucket/lake")
        "--lake 's3://bucket/lake'"
    """
    env = os.environ.get("LAKENODES_URI")
    source, value = ("--lake", given) if given else ("$LAKENODES_URI", env) if env else ("the default", DEFAULT_LAKE_PATH)
    origin = f"{source} {value!r}"
    if "://" not in value and not os.path.isabs(os.path.expanduser(value)):
        origin += f", relative to the working directory {os.getcwd()}"
    return origin


@contextlib.contextmanager
def _logging_to_stderr(verbose: bool) -> Iterator[None]:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = logging.INFO if verbose else logging.ERROR
    handler.setLevel(level)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@contextlib.contextmanager
def _errors_to_exit_codes(json_mode: bool, verbose: bool) -> Iterator[None]:
    try:
        yield
    except (typer.Exit, typer.Abort, ClickException, BrokenPipeError):  # click ends a closed stdout quietly
        raise
    except KeyboardInterrupt as stop:  # before typer turns it into a silent exit 130
        terminated = isinstance(stop, Terminated)
        stored = "".join(f"; {note}" for note in getattr(stop, "__notes__", ()))  # a run stopped after its commit
        _fail(TERMINATED if terminated else INTERRUPTED, "interrupted",
              f"{'terminated (SIGTERM)' if terminated else 'interrupted'}: what finished before it stands (commits, "
              f"files a vacuum deleted); no commit is half-made{stored}", json_mode, False)
    except SystemExit as stop:  # user code (a node's update()) called sys.exit(n): n stays the exit code
        _fail(exit_code_of(stop), "exit", f"sys.exit({stop.code!r}) was called while the command ran: what finished "
              "before it stands (commits); no commit is half-made", json_mode, False)
    except CommandFailed as failure:
        _fail(failure.code, failure.kind, str(failure), json_mode and not failure.reported, verbose)
    except NodeRunError as error:  # a run refused for the caller's mistake (nothing written) is one as well
        # nodes of the tree that ran before the failure may have stored rows: then it is no "nothing written"
        stored = sum(summary.rows_written for summary in error.completed.values())
        rows_stored = isinstance(error, RowsStoredError)  # the failed node's own rows
        # one raised by update() (a read of a table not yet published) is the node's code failing: exit 1, its traceback
        user_mistake = (isinstance(error.cause, LakenodesUserError) and error.phase != "update" and not rows_stored
                        and not stored)
        message = f"{error}; the tree's nodes that finished before it stored {stored} row(s)" if stored else str(error)
        others = _other_failures(error)  # independent branches failing too (two vendors down)
        message += "".join(f"; also failed: {other}" for other in others)
        skipped = [key for failure in (error, *others) for key in failure.skipped]
        if skipped:  # the node asked for may be one of them: say it did not run
            cause = "a failed node" if others else "it"
            message += f"; not run, as they depend on {cause}: {', '.join(skipped)}"
        _fail(USER_ERROR if user_mistake else FAILURE, "run_error", message, json_mode, verbose, rows_stored,
              run_outcome(error))
    except LakenodesUserError as error:
        _fail(USER_ERROR, "user_error", str(error), json_mode, verbose)
    except Exception as error:  # storage and other failures: one line, traceback with --verbose
        _fail(FAILURE, "error", f"{type(error).__name__}: {error}", json_mode, verbose)


def _other_failures(error: NodeRunError) -> list[NodeRunError]:
    """The nodes of the run that failed besides ``error``'s (each once: skipped nodes share the error
    of the dependency they were skipped for)."""
    return list({id(other): other for other in error.failures.values() if other is not error}.values())


def _fail(code: int, kind: str, message: str, as_json: bool, verbose: bool, rows_stored: bool | None = None,
          details: Mapping[str, Any] | None = None) -> None:
    if verbose and code != USER_ERROR and sys.exc_info()[0] is not None:  # a user mistake stays one line
        sys.stderr.write(hide_secrets(traceback.format_exc()))
    if as_json:  # error_document and print_error show the message through one_line, which hides secrets
        typer.echo(error_document(kind, message, rows_stored, details))
    print_error(message)
    raise typer.Exit(code)
