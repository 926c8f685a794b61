"""Consoles of the ``valuebid`` command: the terminal's width, or wide in a log.

Output that goes to a pipe, a file or a scheduler's log has no terminal to
measure, and rich then lays it out in 80 columns, breaking each table row
over several lines. There it is laid out in :data:`PIPED_WIDTH` columns
instead, unless ``COLUMNS`` says otherwise; a longer cell wraps within its
column.

Every command runs in :func:`fail_cleanly`, which shows an error as one
paragraph on stderr with the config's secrets masked.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

from config import ConfigError, load_settings
from connectors.exceptions import ConnectorError
from models.exceptions import ModelError
from optimizer.exceptions import OptimizerError
from optimizer.masking import SecretMask, mask_secrets, settings_secrets

#: The tool's own errors: each is shown as its message alone, no traceback.
EXPECTED_ERRORS = (ConfigError, ConnectorError, ModelError, OptimizerError)

#: What the command line itself raises to exit or to refuse an option.
_COMMAND_EXITS = (typer.Exit, typer.Abort, typer.TyperException)

#: Columns of output that is not shown on a terminal. Tables are only as wide
#: as their content, so this is a ceiling: wide enough for a plan row on one
#: line, narrow enough to read in a log or a pager, where a stop reason or an
#: error of a couple of hundred characters wraps within its cell.
PIPED_WIDTH = 120


class _Console(Console):
    """A rich console that is :data:`PIPED_WIDTH` wide when not on a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        """The terminal's size, or :data:`PIPED_WIDTH` columns when piped."""
        size = super().size
        columns = self._environ.get("COLUMNS", "")
        if self._width is None and not columns.isdigit() and not self.is_terminal:
            return ConsoleDimensions(PIPED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


def command_console(stderr: bool = False) -> Console:
    """A console for the command's output (``stderr``: for its errors).

    Parameters
    ----------
    stderr : bool
        Write to standard error instead of standard output.

    Returns
    -------
    rich.console.Console
        Measured at each print, so a redirected stream is seen as such.
    """
    return _Console(stderr=stderr)


def config_secrets(config: Path | None) -> frozenset[str]:
    """The secrets the config at ``config`` leads to; none if it cannot be read.

    See :func:`optimizer.masking.settings_secrets`. A config that cannot be
    read gives none: its own error names no value of it.

    Parameters
    ----------
    config : Path or None
        The config file; ``None`` when the command has none.

    Returns
    -------
    frozenset of str
        The secret values.
    """
    if config is None:
        return frozenset()
    try:
        return settings_secrets(load_settings(config))
    except ConfigError:
        return frozenset()


@contextmanager
def fail_cleanly(config: Path | None = None) -> Iterator[None]:
    """Turn an error into a paragraph on stderr and exit status 1.

    The tool's own errors (:data:`EXPECTED_ERRORS`) are shown as their
    message; any other is shown with its traceback, as Python would. Neither,
    nor any log line written meanwhile, shows a URL's password or a secret
    the config at ``config`` leads to (see :func:`config_secrets`): an error
    may quote what a server sent back, a header or a token. Exits and option
    errors of the command line pass through.

    Parameters
    ----------
    config : Path or None
        The command's config file, whose secrets are masked; ``None`` when
        the command has none (URL passwords are masked still).

    Raises
    ------
    typer.Exit
        With code 1, once the error is shown.
    """
    secrets = config_secrets(config)
    mask = SecretMask(secrets)
    errors = command_console(stderr=True)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(mask)
    try:
        yield
    except EXPECTED_ERRORS as exc:
        text = escape(mask_secrets(str(exc), secrets))
        errors.print(f"[red]error:[/red] {text}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except _COMMAND_EXITS:
        raise
    except Exception as exc:
        text = mask_secrets("".join(traceback.format_exception(exc)), secrets)
        errors.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    finally:
        for handler in handlers:
            handler.removeFilter(mask)
