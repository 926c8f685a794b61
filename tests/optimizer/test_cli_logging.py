"""What the command line logs by default, and what only with --verbose."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from optimizer.cli import _logging
from optimizer.state import StateStore


@pytest.fixture
def alembic_level() -> Iterator[None]:
    schema = logging.getLogger("alembic")
    saved = schema.level
    yield
    schema.setLevel(saved)


@pytest.mark.parametrize("verbose", [False, True])
def test_opening_a_store_narrates_its_schema_steps_only_when_verbose(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    alembic_level: None,
    verbose: bool,
) -> None:
    # The scheduler logs at INFO by default: a fresh store is created there.
    _logging(verbose, default=logging.INFO)

    with caplog.at_level(logging.INFO):
        StateStore(f"sqlite:///{tmp_path / 'state.db'}").dispose()

    schema_lines = [r for r in caplog.records if r.name.startswith("alembic")]
    assert bool(schema_lines) is verbose
