"""Jobs the scheduler tests run in place of the real cycle."""

from __future__ import annotations

import datetime as dt
from pathlib import Path


def record_fire(config_path: str) -> None:
    """Append the moment of the call to ``<config_path>.fired``."""
    with Path(f"{config_path}.fired").open("a", encoding="utf-8") as out:
        out.write(dt.datetime.now(dt.UTC).isoformat() + "\n")
