"""Errors raised while reading the config.

Hierarchy::

    ConfigError         the config file is missing, unreadable or invalid
"""

from __future__ import annotations


class ConfigError(Exception):
    """The config file is missing, unreadable or breaks the schema."""
