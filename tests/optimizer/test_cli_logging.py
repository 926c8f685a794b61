"""What the command line logs by default, and what only with --verbose."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from optimizer.cli import GOOGLE_ADS_LOGGER, _logging
from optimizer.state import StateStore


@pytest.fixture
def alembic_level() -> Iterator[None]:
    schema = logging.getLogger("alembic")
    saved = schema.level
    yield
    schema.setLevel(saved)


@pytest.fixture
def google_ads_level() -> Iterator[None]:
    library = logging.getLogger(GOOGLE_ADS_LOGGER)
    saved = library.level
    yield
    library.setLevel(saved)


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


@pytest.mark.parametrize(
    ("verbose", "default"),
    [(False, logging.WARNING), (False, logging.INFO), (True, logging.WARNING)],
)
def test_the_google_ads_librarys_request_lines_show_only_when_verbose(
    caplog: pytest.LogCaptureFixture,
    google_ads_level: None,
    verbose: bool,
    default: int,
) -> None:
    _logging(verbose, default=default)
    # The client library's logging interceptor logs under its client module.
    library = logging.getLogger(f"{GOOGLE_ADS_LOGGER}.client")

    with caplog.at_level(logging.INFO):
        library.info("Request made: ClientCustomerId: 1234567890, IsFault: False")
        library.warning("Request made: ClientCustomerId: 1234567890, IsFault: True")

    shown = [r for r in caplog.records if r.name.startswith(GOOGLE_ADS_LOGGER)]
    assert len(shown) == (2 if verbose else 0)
