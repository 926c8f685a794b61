"""The ``valuebid`` commands that messages tell a person to run next.

A message that suggests a command names the config file the settings were
read from, shell-quoted, so the command can be pasted as it is. Where the
file is not known (settings built in code), it says ``--config FILE``.
"""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

#: What a suggested command says in place of a config file it does not know.
CONFIG_PLACEHOLDER = "FILE"


def config_option(config: Path | None) -> str:
    """``--config`` and the file, quoted for a POSIX shell; a placeholder if unknown."""
    named = CONFIG_PLACEHOLDER if config is None else shlex.quote(str(config))
    return f"--config {named}"


def run_command(config: Path | None, run_date: dt.date, *flags: str) -> str:
    """The command that runs the day ``run_date`` again, with ``flags`` added."""
    return " ".join(
        ["valuebid run", config_option(config), f"--run-date {run_date}", *flags]
    )


def first_run_command(config: Path | None) -> str:
    """The command that runs the cycle today, recording the first run."""
    return f"valuebid run {config_option(config)}"


def runs_command(config: Path | None) -> str:
    """The command that lists the recorded runs."""
    return f"valuebid runs {config_option(config)}"


def approve_command(config: Path | None, run_id: str) -> str:
    """The command that approves every change of the run ``run_id``."""
    return f"valuebid approve {run_id} {config_option(config)}"
