"""Command groups of the ``lakenodes`` CLI: seed spellings, one-line usage errors, exit codes.

- :class:`SeedSpellingGroup`: commands also answer to the seeds' underscore spelling
  (``data_node``, ``run_query``) as hidden aliases; a group can also show a root command under
  its own name (``data-node search`` is ``lakenodes search``, one implementation, one registration).
- :class:`OneLineErrorGroup`: the root group; click usage errors become one ``error: ...`` line
  and exit code 2, and ``main`` returns the exit code when not in standalone mode.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import typer
from typer.core import TyperGroup

from ..errors import one_line
from ._render import error_document

try:  # typer >= 0.27 vendors click (typer.TyperException is its ClickException)
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # older typer on top of click
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

SUCCESS = 0
FAILURE = 1
"""A node run, storage or a refused confirmation failed."""
USER_ERROR = 2
"""A user mistake, reported as one ``error:`` line without a traceback."""
INTERRUPTED = 130
"""Ctrl-C (SIGINT), the shells' convention: 128 + the signal's number."""
TERMINATED = 143
"""SIGTERM (Kubernetes, Airflow timeouts, ``timeout(1)``): 128 + 15."""


def exit_code_of(stop: SystemExit) -> int:
    """The process exit code ``sys.exit(code)`` asks for (Python's rules: None is 0, a message 1).

    Example:
        >>> exit_code_of(SystemExit(3)), exit_code_of(SystemExit()), exit_code_of(SystemExit("bye"))
        (3, 0, 1)
    """
    return stop.code if isinstance(stop.code, int) else (SUCCESS if stop.code is None else FAILURE)


class CommandFailed(Exception):
    """A command outcome that ends the process with ``code`` after one ``error:`` line
    (``reported``: the JSON document already says so)."""

    def __init__(self, code: int, message: str, kind: str = "error", *, reported: bool = False):
        super().__init__(message)
        self.code, self.kind, self.reported = code, kind, reported


def print_error(message: object) -> None:
    """One ``error: ...`` line on stderr."""
    typer.echo(f"error: {one_line(message)}", err=True)


class SeedSpellingGroup(TyperGroup):
    """A command group whose commands also answer to the seeds' underscore spelling
    (``data_node``, ``run_query``): hidden aliases, not listed in ``--help``.

    ``ROOT_COMMANDS`` names root commands this group lists and runs as its own.
    """

    ROOT_COMMANDS: ClassVar[tuple[str, ...]] = ()

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self._own_or_root(ctx, cmd_name)
        if found is None and "_" in cmd_name:
            found = self._own_or_root(ctx, cmd_name.replace("_", "-"))
        return found

    def _own_or_root(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in self.ROOT_COMMANDS:
            root = ctx.find_root()
            found = root.command.get_command(root, cmd_name)
        return found

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        return [*own, *(name for name in self.ROOT_COMMANDS if name not in own)]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, found, rest = super().resolve_command(ctx, args)
        return (found.name if found is not None else name), found, rest  # usage lines use the canonical name


class OneLineErrorGroup(SeedSpellingGroup):
    """Root group: click usage errors become one ``error: ...`` line and exit code 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        json_asked = "--json" in (sys.argv[1:] if args is None else args)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else SUCCESS
        except NoArgsIsHelpError as error:  # a bare group: show its help
            typer.echo(error.format_message(), err=True)
            if json_asked:  # `lakenodes --json data-node`: stdout still holds the promised document
                typer.echo(error_document("usage_error", f"Missing command. (see `{error.ctx.command_path} --help`)"))
            code = USER_ERROR
        except ClickException as error:
            context = getattr(error, "ctx", None)
            hint = f" (see `{context.command_path} --help`)" if context is not None else ""
            message = f"{error.format_message()}{hint}"
            if json_asked:  # the JSON document reports it too
                typer.echo(error_document("usage_error", message))
            print_error(message)
            code = USER_ERROR if isinstance(error, UsageError) else error.exit_code
        except typer.Abort:
            print_error("aborted")
            code = FAILURE
        if standalone_mode:
            sys.exit(code)
        return code


def group(help_text: str, *, root_commands: Sequence[str] = ()) -> typer.Typer:
    """A sub-command group (``lakenodes <group> ...``) with the seed spellings; it also lists and
    runs the root commands named in ``root_commands``."""
    cls = SeedSpellingGroup
    if root_commands:
        cls = type("GroupWithRootCommands", (SeedSpellingGroup,), {"ROOT_COMMANDS": tuple(root_commands)})
    return typer.Typer(cls=cls, no_args_is_help=True, help=help_text)
