"""Errors raised by the optimizer.

Hierarchy::

    OptimizerError
    ├── PlanningError       the plan cannot be made from these inputs
    ├── StateError          the state store is unreadable or in use
    │   └── LockBusyError   another process is applying the same account
    ├── ApplyStopped        a stop (kill switch, stale data, model gate)
    │                       held the apply back; nothing was pushed
    └── ReportError         the report of a run cannot be made
"""

from __future__ import annotations


class OptimizerError(Exception):
    """Base class of every error raised by the optimizer."""


class PlanningError(OptimizerError):
    """The plan cannot be made from these inputs."""


class StateError(OptimizerError):
    """The state store is unreadable, of another schema, or in use."""


class LockBusyError(StateError):
    """Another process holds the lease on the account being applied."""


class ApplyStopped(OptimizerError):
    """A stop held the apply back; the plan is kept and nothing was pushed.

    Parameters
    ----------
    stop
        Which stop: ``kill_switch``, ``stale_data`` or ``model_gate``.
    reason
        The sentence logged and recorded on the run.
    """

    def __init__(self, stop: str, reason: str) -> None:
        super().__init__(f"apply stopped ({stop}): {reason}")
        self.stop = stop
        self.reason = reason


class ReportError(OptimizerError):
    """The report cannot be made: no run recorded, or its plan is missing."""
