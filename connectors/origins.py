"""Where a row came from: the line it starts on in a CSV file, and its text as read.

Rows are checked with canonical types (timestamps in UTC, amounts as floats,
later converted into the account currency), so a row set aside after that
no longer reads as it did in its file. A source that can be read again
answers, for the data rows asked, what a quarantine file should show: the
rows as read and, for a CSV file, the line each starts on, counting the
header as line 1 as an editor does, blank lines and line breaks inside quoted
values included.

Asking reads the file again up to the last row asked, which is done only
for sources with rows set aside. A SQL source is not read again: its rows
are shown from their checked values.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import importlib
import io
import logging
import lzma
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

# The characters pandas' parser treats as blank on a line of their own; the
# separator itself is a field boundary, never blank.
_SPACES = " \t"


@dataclass(frozen=True)
class Located:
    """Rows of a source as read, in the order asked.

    ``raw`` has the source's columns as text (an empty value is missing);
    ``lines`` the line each row starts on, for a CSV file, else ``None``.
    """

    raw: pd.DataFrame
    lines: np.ndarray | None


class RowOrigin(Protocol):
    """A source that can give back some of its rows as they were read."""

    def locate(self, rows: Sequence[int]) -> Located | None:
        """The data rows ``rows`` (1 is the first); ``None`` when unreadable now."""
        ...

    def lines(self, rows: Sequence[int]) -> np.ndarray | None:
        """The line each of ``rows`` starts on; ``None`` for a source without lines."""
        ...


@dataclass(frozen=True)
class CsvOrigin:
    """A CSV file (optionally compressed), read as pandas read it.

    Parameters
    ----------
    path
        The file.
    encoding
        Its text encoding.
    sep
        Its field separator.
    columns
        The column names pandas gave its header.
    """

    path: Path
    encoding: str
    sep: str
    columns: tuple[str, ...]

    def locate(self, rows: Sequence[int]) -> Located | None:
        """Scan the file up to the last row asked; ``None`` if that fails."""
        wanted = {int(row) for row in rows}
        if not wanted:
            return Located(pd.DataFrame(columns=list(self.columns)), np.array([]))
        try:
            found = self._scan(wanted)
        except (OSError, UnicodeError, csv.Error, ValueError) as exc:
            logger.warning(
                "%s: cannot read it again to place its quarantined rows (%s); "
                "they are shown from their checked values",
                self.path,
                exc,
            )
            return None
        if len(found) != len(wanted):
            logger.warning(
                "%s: has fewer rows than when it was read; its quarantined rows "
                "are shown from their checked values",
                self.path,
            )
            return None
        ordered = [found[int(row)] for row in rows]
        width = len(self.columns)
        records = [
            [value if value != "" else None for value in fields[:width]]
            + [None] * (width - len(fields))
            for _, fields in ordered
        ]
        raw = pd.DataFrame(records, columns=list(self.columns), dtype="string")
        lines = np.array([line for line, _ in ordered], dtype="int64")
        return Located(raw, lines)

    def lines(self, rows: Sequence[int]) -> np.ndarray | None:
        """The line each row starts on (the header is line 1)."""
        located = self.locate(rows)
        return located.lines if located is not None else None

    def _scan(self, wanted: set[int]) -> dict[int, tuple[int, list[str]]]:
        last = max(wanted)
        found: dict[int, tuple[int, list[str]]] = {}
        with _open_text(self.path, self.encoding) as handle:
            lines = _CountedLines(handle)
            records = csv.reader(lines, delimiter=self.sep)
            header_seen = False
            number = 0
            while number < last:
                start = lines.count + 1
                fields = next(records, None)
                if fields is None:
                    break
                if self._blank(fields, lines, start):
                    continue
                if not header_seen:
                    header_seen = True
                    continue
                number += 1
                if number in wanted:
                    found[number] = (start, fields)
        return found

    def _blank(self, fields: list[str], lines: _CountedLines, start: int) -> bool:
        """A line pandas skips: empty, or only spaces and tabs (not the separator)."""
        if not fields:
            return True
        if lines.count != start:
            return False
        spaces = _SPACES.replace(self.sep, "")
        return lines.last.rstrip("\r\n").strip(spaces) == ""


@dataclass(frozen=True)
class ParquetOrigin:
    """A Parquet file: its rows are read again from the row groups holding them."""

    path: Path

    def lines(self, rows: Sequence[int]) -> np.ndarray | None:
        """Nothing: a Parquet file has rows, not lines."""
        return None

    def locate(self, rows: Sequence[int]) -> Located | None:
        """The rows as pandas reads them, as text; ``None`` if that fails."""
        positions = np.asarray(rows, dtype="int64") - 1
        try:
            handle = pq.ParquetFile(self.path)
            try:
                sizes = [
                    handle.metadata.row_group(i).num_rows
                    for i in range(handle.num_row_groups)
                ]
                starts = np.concatenate([[0], np.cumsum(sizes)])
                groups = np.searchsorted(starts, positions, side="right") - 1
                parts: list[pd.DataFrame] = []
                order: list[np.ndarray] = []
                for group in np.unique(groups):
                    picked = np.flatnonzero(groups == group)
                    table = handle.read_row_group(int(group))
                    parts.append(
                        table.take(positions[picked] - starts[group]).to_pandas()
                    )
                    order.append(picked)
            finally:
                handle.close()
        except (OSError, ValueError, IndexError) as exc:
            logger.warning(
                "%s: cannot read it again for its quarantined rows (%s); they "
                "are shown from their checked values",
                self.path,
                exc,
            )
            return None
        if not parts:
            return Located(pd.DataFrame(), None)
        frame = pd.concat(parts, ignore_index=True)
        frame.index = np.concatenate(order)
        return Located(frame.sort_index().reset_index(drop=True).astype("string"), None)


class _CountedLines:
    """The lines of a text file, counting them as the CSV reader takes them."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self.count = 0
        self.last = ""

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._handle)
        self.count += 1
        self.last = line
        return line


@contextmanager
def _open_text(path: Path, encoding: str) -> Iterator[TextIO]:
    """The file as text, decompressed as pandas infers from its suffix.

    Line endings are kept (``newline=""``) so that the CSV reader sees quoted
    line breaks, and ``\\r\\n``, ``\\n`` and ``\\r`` each end one line.
    """
    suffix = path.suffix.lower()
    if suffix == ".gz":
        with gzip.open(path, "rt", encoding=encoding, newline="") as handle:
            yield handle
    elif suffix == ".bz2":
        with bz2.open(path, "rt", encoding=encoding, newline="") as handle:
            yield handle
    elif suffix == ".xz":
        with lzma.open(path, "rt", encoding=encoding, newline="") as handle:
            yield handle
    elif suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = [
                name
                for name in archive.namelist()
                if not name.endswith("/") and not name.startswith("__MACOSX/")
            ]
            if len(names) != 1:
                raise ValueError(f"the archive holds {len(names)} files, not one")
            with archive.open(names[0]) as member:
                yield io.TextIOWrapper(member, encoding=encoding, newline="")
    elif suffix == ".zst":
        # Optional, as for pandas: only a file pandas could read comes here.
        zstandard = importlib.import_module("zstandard")
        with path.open("rb") as compressed:
            reader = zstandard.ZstdDecompressor().stream_reader(compressed)
            yield io.TextIOWrapper(reader, encoding=encoding, newline="")
    else:
        with path.open(encoding=encoding, newline="") as handle:
            yield handle
