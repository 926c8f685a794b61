"""Consoles of the ``valuebid`` command: the terminal's width, or wide in a log.

Output that goes to a pipe, a file or a scheduler's log has no terminal to
measure, and rich then lays it out in 80 columns, breaking each table row
over several lines. There it is laid out in :data:`PIPED_WIDTH` columns
instead, unless ``COLUMNS`` says otherwise; a longer cell wraps within its
column.
"""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions

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
