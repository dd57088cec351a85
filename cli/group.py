"""A click Group whose every failure is one line on stderr, never a traceback.

click's standalone mode prints usage errors over several lines (usage, hint, error);
scripts and people both read one line better, so errors are formatted here.
Set YNCHAIN_DEBUG=1 to get the traceback of an unexpected exception instead.
"""

from __future__ import annotations

import os
import sys

import click

from .errors import CliError


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _OneLineErrors:
    """Mixed into a click Command or Group."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort,
                KeyboardInterrupt, EOFError, SystemExit, BrokenPipeError):
            raise
        except Exception as exc:  # a bug or an unforeseen environment problem
            if os.environ.get("YNCHAIN_DEBUG"):
                raise
            raise CliError(f"unexpected {type(exc).__name__}: {exc} "
                           "(set YNCHAIN_DEBUG=1 for a traceback)") from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _fail(exc.format_message() + where, exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except (click.Abort, KeyboardInterrupt, EOFError):
            _fail("aborted", 130)
        except BrokenPipeError:
            # stdout closed early (e.g. `| head`): nothing left to say; point stdout
            # at /dev/null so the interpreter's final flush does not fail again.
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            sys.exit(1)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


class YnGroup(_OneLineErrors, click.Group):
    pass


class YnCommand(_OneLineErrors, click.Command):
    pass
