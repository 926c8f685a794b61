"""Errors raised by the optimizer.

Hierarchy::

    OptimizerError
    ├── PlanningError       the plan cannot be made from these inputs
    └── StateError          the state store is unreadable or in use
"""

from __future__ import annotations


class OptimizerError(Exception):
    """Base class of every error raised by the optimizer."""


class PlanningError(OptimizerError):
    """The plan cannot be made from these inputs."""


class StateError(OptimizerError):
    """The state store is unreadable, of another schema, or in use."""
