"""Errors raised by the optimizer.

Hierarchy::

    OptimizerError
    ├── PlanningError       the plan cannot be made from these inputs
    ├── StateError          the state store is unreadable or in use
    │   ├── LockBusyError   another process is applying the same account
    │   └── SupersededPlanError  a later start of the day failed: the
    │                       run's plan may not be approved or applied
    ├── ApplyStopped        a stop (kill switch, stale data, model gate)
    │                       held the apply back; nothing was pushed
    ├── ValueJumpError      the predicted values moved too far from the last
    │                       successful run: the day's targets and values hold
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


class SupersededPlanError(StateError):
    """A later start of the run's day failed before re-planning it.

    The plan was made on inputs since replaced by ones that fail their
    checks, so it is neither approved nor applied until a start of the day
    succeeds.
    """


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


class ValueJumpError(OptimizerError):
    """The predicted values moved too far from the last successful run.

    Raised instead of approving or applying a plan held by the value-level
    guardrail, and instead of sending values while the day is held; the
    message gives both figures, their ratio and how to accept a real change.
    """


class ReportError(OptimizerError):
    """The report cannot be made: no run recorded, or its plan is missing."""
