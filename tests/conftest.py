"""Shared test set-up."""

pytest_plugins = ["tests.support.postgres"]
