"""Jobs the scheduler tests run in place of the real cycle."""

from __future__ import annotations

import datetime as dt
from pathlib import Path


def record_fire(config_path: str) -> None:
    """Append the moment of the call to ``<config_path>.fired``."""
    with Path(f"{config_path}.fired").open("a", encoding="utf-8") as out:
        out.write(dt.datetime.now(dt.UTC).isoformat() + "\n")


def fail_quoting_the_login(config_path: str) -> None:
    """Fail as a refused login might: quoting the Google Ads credentials read."""
    from config import load_settings
    from connectors.google_ads import load_credentials

    settings = load_settings(config_path)
    assert settings.google_ads is not None
    credentials = load_credentials(settings.google_ads)
    raise RuntimeError(f"login refused for {' / '.join(credentials.secrets())}")
