"""The commands that messages suggest, with the config file they name."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

from optimizer.commands import approve_command, run_command

DAY = dt.date(2026, 12, 1)


def test_a_known_config_is_named_so_the_command_can_be_pasted() -> None:
    spaced = Path("/srv/value bid/acme's.yaml")

    plain = run_command(Path("/srv/vb/acme.yaml"), DAY)
    quoted = run_command(spaced, DAY, "--accept-value-level")

    assert plain == "valuebid run --config /srv/vb/acme.yaml --run-date 2026-12-01"
    assert shlex.split(quoted) == [
        "valuebid",
        "run",
        "--config",
        str(spaced),
        "--run-date",
        "2026-12-01",
        "--accept-value-level",
    ]
    assert approve_command(spaced, "r1") == (
        f"valuebid approve r1 --config {shlex.quote(str(spaced))}"
    )


def test_an_unknown_config_is_a_placeholder() -> None:
    assert run_command(None, DAY) == "valuebid run --config FILE --run-date 2026-12-01"
    assert approve_command(None, "r1") == "valuebid approve r1 --config FILE"
