"""Read a YAML config file into validated :class:`~config.schema.Settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.exceptions import ConfigError
from config.schema import Settings
from connectors.sources import shown_url

_PATH_KEYS = (
    ("data", "users"),
    ("data", "revenue"),
    ("data", "campaign_stats"),
    ("data", "events"),
    ("finance", "file"),
    ("model", "directory"),
    ("state", "directory"),
    ("google_ads", "credentials_file"),
    ("feed", "credentials"),
    ("operations", "kill_switch_file"),
)
_NESTED_PATH_KEYS = (
    ("data", "users", "path"),
    ("data", "revenue", "path"),
    ("data", "campaign_stats", "path"),
    ("data", "events", "path"),
    ("data", "fx", "source"),
    ("data", "quarantine", "directory"),
)

#: Keys whose value is a secret: an error names the key, never the value.
_SECRET_KEYS = frozenset({("operations", "alerts", "webhook_url")})
#: Sections whose ``url`` keys (their own, or a SQL source's) are SQLAlchemy
#: URLs: an error shows the value with its password masked.
_DATABASE_URL_SECTIONS = frozenset({"state", "data"})


def load_settings(path: Path | str) -> Settings:
    """Load and validate a config file.

    Relative paths inside the file are read relative to the file's folder, so a
    config works from any working directory.

    Parameters
    ----------
    path
        The YAML config file.

    Returns
    -------
    Settings
        The validated settings; their ``source`` is ``path``, which messages
        name in the commands they suggest.

    Raises
    ------
    ConfigError
        The file is missing, is not YAML, or a key breaks the schema; the
        message names the file, the key path and the bad value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    settings = settings_from_mapping(raw, source=path, base_dir=path.parent)
    return settings.read_from(path)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What the parser found wrong, and where, without the line it quotes.

    The parser's own message copies the offending line, which may hold a
    secret (a webhook URL, a database password).
    """
    if not isinstance(exc, yaml.MarkedYAMLError):
        return type(exc).__name__
    what = exc.problem or exc.context or "unreadable"
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return what
    return f"{what} (line {mark.line + 1}, column {mark.column + 1})"


def settings_from_mapping(
    raw: dict[str, Any], *, source: Path | str, base_dir: Path
) -> Settings:
    """Validate an already-parsed mapping; paths are resolved against ``base_dir``."""
    _resolve_paths(raw, base_dir)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _resolve_paths(raw: dict[str, Any], base_dir: Path) -> None:
    for section, key in _PATH_KEYS:
        _resolve_at(raw.get(section), key, base_dir)
    for section, table, key in _NESTED_PATH_KEYS:
        block = raw.get(section)
        if isinstance(block, dict):
            inner = block.get(table)
            _resolve_at(inner, key, base_dir)
            if isinstance(inner, dict) and isinstance(inner.get(key), dict):
                _resolve_at(inner[key], "path", base_dir)


def _resolve_at(block: Any, key: str, base_dir: Path) -> None:
    if isinstance(block, dict) and isinstance(block.get(key), str):
        candidate = Path(block[key]).expanduser()
        if not candidate.is_absolute():
            candidate = base_dir / candidate
        block[key] = candidate


#: Keys of a Google Ads credentials file, often pasted into the config by
#: mistake: they name the right place rather than a spelling error.
_CREDENTIAL_KEYS = frozenset(
    {
        "developer_token",
        "client_id",
        "client_secret",
        "refresh_token",
        "json_key_file_path",
        "private_key",
    }
)


def _describe(exc: ValidationError, source: Path | str) -> str:
    lines = [f"{source}: {exc.error_count()} invalid setting(s)"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        elif error["type"] == "extra_forbidden" and str(error["loc"][-1]).replace(
            "-", "_"
        ) in (_CREDENTIAL_KEYS):
            lines.append(
                f"  {key}: credentials are not read from this file; put them in "
                "the google-ads.yaml file that google_ads.credentials_file (or "
                "feed.credentials) names, or in GOOGLE_ADS_* environment "
                "variables, and remove this key"
            )
        elif error["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (check its spelling)")
        elif tuple(error["loc"]) in _SECRET_KEYS:
            lines.append(f"  {key}: {message}")
        elif _is_database_url(error["loc"]) and isinstance(error.get("input"), str):
            lines.append(f"  {key}: {message} (got {shown_url(error['input'])!r})")
        elif isinstance(error.get("input"), dict | list) or (
            repr(error.get("input")) in message
        ):
            # A message that quotes the value already says what was given.
            lines.append(f"  {key}: {message}")
        else:
            lines.append(f"  {key}: {message} (got {error.get('input')!r})")
    return "\n".join(lines)


def _is_database_url(loc: tuple[int | str, ...]) -> bool:
    return len(loc) > 1 and loc[0] in _DATABASE_URL_SECTIONS and loc[-1] == "url"
