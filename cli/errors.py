"""The one error type commands raise on purpose: its message is what the user sees."""

from __future__ import annotations

import click


class CliError(click.ClickException):
    """A failure to report as one line on stderr with exit code 1."""


class NodeError(CliError):
    """A node that could not be reached or answered with an error.

    `status` is the HTTP status (None when there was no answer at all), so callers
    can treat e.g. 404 as "absent" rather than as a failure."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
