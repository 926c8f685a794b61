"""The command lines of the README and docs run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from optimizer.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _command_lines() -> list[tuple[str, str]]:
    """Every inline code span that starts a ``valuebid`` command, per file."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for span in re.findall(r"`(valuebid\s[^`]+)`", text):
            found.append((document.name, " ".join(span.split())))
    return found


def _command(words: list[str]) -> Any:
    """The (sub)command the words name; ``None`` when they name a group."""
    command: Any = typer.main.get_command(app)
    for word in words[1:]:
        group = getattr(command, "commands", None)
        if group is None or word not in group:
            break
        command = group[word]
    return None if hasattr(command, "commands") else command


def test_the_readme_has_command_lines_to_check() -> None:
    assert len(_command_lines()) > 20


@pytest.mark.parametrize(("document", "line"), _command_lines())
def test_a_documented_command_line_names_its_required_options(
    document: str, line: str
) -> None:
    words = line.split()
    command = _command(words)
    if command is None or command.name == words[-1]:
        # A group, or a command named in prose, not an example to paste.
        return
    required = [
        param
        for param in command.params
        if param.param_type_name == "option" and param.required
    ]
    for option in required:
        assert any(name in line.split() for name in option.opts), (
            f"{document}: `{line}` leaves out {option.opts[0]}"
        )
