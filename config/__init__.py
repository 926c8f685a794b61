"""valuebid settings: the config schema, its loader and default benchmarks."""

from config.exceptions import ConfigError
from config.loader import load_settings
from config.schema import Settings

__all__ = ["ConfigError", "Settings", "load_settings"]
