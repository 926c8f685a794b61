"""Apply a run's plan, or undo a run, exactly once.

Safety comes from three things working together:

- **Stops first.** The kill switch (config or flag file), a stale plan, and
  a failed model gate stop the apply before anything is pushed; the run
  records why and the plan is kept. Input data is judged market by market
  and campaign by campaign on the day of the push, as the plan judged it on
  its day: a change whose market's (or own campaign's) stats are too old by
  then is withheld, recorded with the reason, and the others are pushed;
  when every change to push is withheld the apply stops.
- **One applier per account.** A lease in the state store (see
  :mod:`optimizer.locks`) lets one process at a time apply an account; a
  second process waits, then finds the work done.
- **Only a current plan.** A run whose day was started again and failed
  before re-planning (status ``rerun_failed``) is neither approved nor
  applied: its plan was made on inputs since replaced. Nor is a run whose
  predicted values jumped from the last successful run (``value_held``).
  A plan approved before such a start keeps its approvals, but its changes
  not applied yet wait for a start of the day that succeeds or a new
  approval.
- **Intent before push.** Each change is written ``pending`` (with the values
  read from the account just before) before it is pushed, and marked
  ``applied`` or ``rejected`` after. A later start skips what is applied and
  reconciles what is pending by reading the account, so a crash between the
  push and its record never leads to a second push.

Google Ads is reached through a :class:`TargetWriter`, a small protocol the
Google Ads connector satisfies; tests pass an in-memory account.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Connection

from config.schema import Settings
from optimizer.alerts import AlertSink, NoAlerts, alert_failure
from optimizer.commands import approve_command, run_command, runs_command
from optimizer.days import account_today
from optimizer.exceptions import (
    ApplyStopped,
    PlanningError,
    StateError,
    SupersededPlanError,
    ValueJumpError,
)
from optimizer.locks import Clock, lease, utc_now
from optimizer.masking import secrets_mask
from optimizer.plan import PlanRow
from optimizer.planner import staleness
from optimizer.policy import HOLD, KILL_SWITCH, MODEL_GATE, STALE_DATA, TARGET_ROAS
from optimizer.state import (
    APPLIED,
    APPLYING,
    CHANGE_APPLIED,
    CYCLE,
    DRIFTED,
    FAILED,
    PARTIAL,
    PENDING,
    PLANNED,
    REJECTED,
    RERUN_FAILED,
    STOPPED,
    VALUE_HELD,
    WITHHELD,
    ChangeRecord,
    RunRecord,
    StateStore,
    StoredPlanRow,
    as_utc,
)

logger = logging.getLogger(__name__)


#: Strategies that bid on conversion value toward a target ROAS.
VALUE_BASED = frozenset({TARGET_ROAS, "MAXIMIZE_CONVERSION_VALUE"})


@dataclass(frozen=True)
class CampaignTarget:
    """A campaign's bidding strategy and target, as the account holds them."""

    campaign_id: str
    strategy: str
    target_roas: float | None = None
    target_cpa: float | None = None

    def matches(self, other: CampaignTarget) -> bool:
        """Same strategy and the same targets (to float rounding).

        Google reports a campaign moved to value-based bidding as maximize
        conversion value with a target ROAS; the plan calls that target ROAS.
        Both mean the same bidding, so they match.
        """
        same_strategy = self.strategy == other.strategy or (
            self.strategy in VALUE_BASED and other.strategy in VALUE_BASED
        )
        return (
            same_strategy
            and _close(self.target_roas, other.target_roas)
            and _close(self.target_cpa, other.target_cpa)
        )


@dataclass(frozen=True)
class TargetUpdate:
    """One campaign to set to ``target``, with the reason shown to people."""

    target: CampaignTarget
    reason: str

    @property
    def campaign_id(self) -> str:
        """The campaign being changed."""
        return self.target.campaign_id


@dataclass(frozen=True)
class UpdateOutcome:
    """What the account answered for one update."""

    campaign_id: str
    status: str
    error: str | None = None
    request_id: str | None = None


class TargetWriter(Protocol):
    """Reads and writes campaign targets of one account."""

    def read_targets(self, campaign_ids: Sequence[str]) -> dict[str, CampaignTarget]:
        """The current strategy and target of each campaign found."""

    def apply(self, updates: Sequence[TargetUpdate]) -> list[UpdateOutcome]:
        """Push the updates; one outcome (``applied`` or ``rejected``) each."""


#: Returns why the run's model may not be used, or ``None`` when it may.
ModelGate = Callable[[RunRecord], str | None]

#: Gives a text with the config's secrets masked (see
#: :func:`optimizer.masking.secrets_mask`).
Mask = Callable[[str], str]


@dataclass
class ApplyReport:
    """What one apply (or rollback) did, campaign by campaign."""

    run_id: str
    status: str = PLANNED
    pushed: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    already_applied: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    drifted: list[str] = field(default_factory=list)
    awaiting_approval: list[str] = field(default_factory=list)
    withheld: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Wanted:
    update: TargetUpdate
    expected: CampaignTarget
    change_pct: float | None


def apply_run(
    store: StateStore,
    run_id: str,
    writer: TargetWriter,
    settings: Settings,
    *,
    model_gate: ModelGate | None = None,
    alerts: AlertSink | None = None,
    clock: Clock = utc_now,
) -> ApplyReport:
    """Push a cycle run's changes that are not applied yet.

    In approval mode only approved rows are pushed; in auto mode every
    change of the plan is. A change whose market's or own campaign stats are
    too old on the day of the push is withheld instead, with the reason
    recorded on it (status ``withheld``); the others are pushed. Safe to
    call any number of times, from any number of processes: each change
    reaches the account once.

    Parameters
    ----------
    store
        The state store holding the run.
    run_id
        The cycle run whose plan is applied.
    writer
        The account's targets.
    settings
        The config (stops, mode, lock timings, alert threshold).
    model_gate
        Says why the run's model may not be used; no check when ``None``.
    alerts
        Where failures and big changes are announced.
    clock
        The current time (UTC); tests move it.

    Returns
    -------
    ApplyReport
        What was pushed, confirmed, skipped and rejected.

    Raises
    ------
    ApplyStopped
        A stop held the apply back, or every change to push is withheld for
        stale data; nothing was pushed.
    LockBusyError
        Another process kept the account's lease for the whole wait.
    SupersededPlanError
        A later start of the run's day failed before re-planning it, or,
        for a plan kept as approved, after changes not applied yet were
        approved (see :func:`refuse_unsettled`).
    ValueJumpError
        The run's predicted values jumped from the last successful run.
    StateError
        No such run, or it is not a cycle run.
    """
    sink = alerts or NoAlerts()
    mask = secrets_mask(settings)
    run = _existing_run(store, run_id, settings.source)
    if run.kind != CYCLE:
        raise StateError(f"run {run_id} is a {run.kind} run; only cycle runs apply")
    # Before the stops: a stop would overwrite the status that holds it back.
    refuse_superseded(run, "applied", config=settings.source)
    refuse_value_held(run, "applied")
    plan = store.stored_plan(run_id)
    withheld = stale_changes(run, [s.row for s in plan], settings, clock)
    pushing = _unapplied(store, run_id, _approved_changes(plan, settings))
    _stop_if_needed(
        store, run, settings, model_gate, sink, clock, withheld, pushing, mask
    )

    with _account_lease(store, run.account, settings, clock):
        rows = store.stored_plan(run_id)
        report = ApplyReport(run_id)
        wanted: dict[str, _Wanted] = {}
        for stored in rows:
            if not _is_change(stored.row):
                continue
            if settings.operations.apply_mode == "approval" and not stored.approved_at:
                report.awaiting_approval.append(stored.row.campaign_id)
                continue
            wanted[stored.row.campaign_id] = _wanted_from_plan(stored.row)
        _push(store, run, wanted, writer, report, sink, settings, clock, mask, withheld)
    return report


def stale_changes(
    run: RunRecord,
    rows: Sequence[PlanRow],
    settings: Settings,
    clock: Clock = utc_now,
) -> dict[str, str]:
    """The changes of a plan whose data is too old to push today, and why.

    Each market, and each campaign within a fresh market, is judged on the
    last day of its own stats as the run recorded it, by the rule the plan
    was made with (:func:`optimizer.planner.staleness`), on today's date in
    the account's time zone: one market's fresh stats do not hide another's
    stale export, and one market's stale export does not hold another.

    Parameters
    ----------
    run
        The cycle run, with the last day of each campaign's stats in its
        inputs (``data_through_by_campaign``).
    rows
        Its plan.
    settings
        The config (time zone, each market's ``guardrails.max_data_age_days``).
    clock
        The current time (UTC).

    Returns
    -------
    dict of str to str
        The reason for each change too old to push; empty when the run
        records no days per campaign (it is judged account-wide instead,
        see :func:`apply_run`).
    """
    recorded = run.inputs.get("data_through_by_campaign")
    if not isinstance(recorded, Mapping):
        return {}
    ends = {str(cid): dt.date.fromisoformat(str(day)) for cid, day in recorded.items()}
    today = account_today(settings.account.time_zone, clock())
    markets = {row.campaign_id: row.market for row in rows}
    stale = staleness(ends, markets, today, settings)
    withheld = {}
    for row in rows:
        if not _is_change(row):
            continue
        if row.campaign_id not in ends:
            withheld[row.campaign_id] = (
                f"run {run.run_id} records no campaign stats for campaign "
                f"{row.campaign_id}, so their freshness cannot be checked"
            )
            continue
        reason = stale.of(row.campaign_id, row.market)
        if reason is not None:
            withheld[row.campaign_id] = reason
    return withheld


def _approved_changes(plan: Sequence[StoredPlanRow], settings: Settings) -> list[str]:
    """The campaigns whose change an apply of the plan would push."""
    approval = settings.operations.apply_mode == "approval"
    return [
        s.row.campaign_id
        for s in plan
        if _is_change(s.row) and (s.approved_at or not approval)
    ]


def _unapplied(
    store: StateStore, run_id: str, campaign_ids: Sequence[str]
) -> list[str]:
    """Those of ``campaign_ids`` whose change the run has not applied yet."""
    done = store.changes_of(run_id)
    return [
        cid
        for cid in campaign_ids
        if cid not in done or done[cid].status != CHANGE_APPLIED
    ]


def ensure_rollbackable(
    store: StateStore, run_id: str, *, config: Path | None = None
) -> dict[str, ChangeRecord]:
    """The changes ``run_id`` applied, refusing a run that applied none.

    Checked before anything connects to the account: a dry run or a run
    whose every push failed has nothing to undo, whether or not this machine
    could reach Google Ads. A refusal names ``config`` in the command it
    suggests, or a placeholder when ``None``.

    Raises
    ------
    StateError
        No such run, or it applied nothing.
    """
    run = _existing_run(store, run_id, config)
    changes = {
        cid: change
        for cid, change in store.changes_of(run_id).items()
        if change.status == CHANGE_APPLIED
    }
    if not changes:
        kind = "a dry run" if run.mode == "dry_run" else f"a run {run.status}"
        raise StateError(
            f"run {run_id} ({kind}) applied no change to Google Ads: nothing to "
            "roll back"
        )
    return changes


def rollback_run(
    store: StateStore,
    run_id: str,
    writer: TargetWriter,
    settings: Settings,
    *,
    alerts: AlertSink | None = None,
    clock: Clock = utc_now,
) -> ApplyReport:
    """Restore the strategies and targets a run changed, as a run of its own.

    Each campaign the run applied goes back to the exact strategy and
    target read from the account just before that run pushed. A campaign
    changed since by someone else is left alone and reported as drifted.

    Parameters
    ----------
    store
        The state store holding the run.
    run_id
        The run to undo (a cycle run, or a rollback run to redo its changes).
    writer
        The account's targets.
    settings
        The config (kill switch, lock timings, alerts).
    alerts
        Where failures are announced.
    clock
        The current time (UTC).

    Returns
    -------
    ApplyReport
        The rollback run's outcome.

    Raises
    ------
    ApplyStopped
        The kill switch is set.
    StateError
        No such run, or it applied nothing.
    """
    sink = alerts or NoAlerts()
    mask = secrets_mask(settings)
    original = _existing_run(store, run_id, settings.source)
    changes = ensure_rollbackable(store, run_id, config=settings.source)
    kill = _kill_switch(settings)
    if kill is not None:
        _record_stop(store, run_id, KILL_SWITCH, kill, sink, mask, record=False)

    with _account_lease(store, original.account, settings, clock):
        today = account_today(settings.account.time_zone, clock())
        with store.transaction() as connection:
            undo = store.create_rollback_run(connection, original, today)
        wanted = {
            cid: _Wanted(
                TargetUpdate(
                    CampaignTarget(
                        cid,
                        change.old_strategy,
                        change.old_target_roas,
                        change.old_target_cpa,
                    ),
                    f"rollback of run {run_id}",
                ),
                CampaignTarget(
                    cid,
                    change.new_strategy or TARGET_ROAS,
                    change.new_target_roas,
                    change.new_target_cpa,
                ),
                None,
            )
            for cid, change in sorted(changes.items())
        }
        report = ApplyReport(undo.run_id)
        _push(store, undo, wanted, writer, report, sink, settings, clock, mask)
    logger.info("run %s rolled back by run %s", run_id, undo.run_id)
    return report


@dataclass(frozen=True)
class Approval:
    """What one approval did.

    Attributes
    ----------
    approved
        Campaigns whose change this approval approved for the first time.
    renewed
        Campaigns whose earlier approval, set aside by a later failed start
        of the run's day, this approval gave again.
    awaiting_renewal
        Other campaigns approved before that failed start and not applied
        yet: the apply refuses to push the run until they are approved again.
    failed_at
        When that later start of the run's day failed; ``None`` if none did.
    """

    approved: list[str]
    renewed: list[str]
    awaiting_renewal: list[str]
    failed_at: dt.datetime | None = None

    @property
    def changed(self) -> list[str]:
        """Every campaign this approval approved or approved again."""
        return sorted([*self.approved, *self.renewed])


def approve(
    store: StateStore,
    run_id: str,
    campaign_ids: Sequence[str] | None = None,
    *,
    clock: Clock = utc_now,
    config: Path | None = None,
) -> Approval:
    """Approve a run's changes (all, or the campaigns named).

    When a later start of the run's day failed after its plan was approved
    (the plan is kept as it was), approving again renews the approvals of
    the changes named that are not applied yet: that is the explicit word
    that they may be pushed as planned. A refusal names ``config`` in the
    commands it suggests, or a placeholder when ``None``.

    Returns
    -------
    Approval
        The campaigns this call approved and those whose approval it
        renewed, and the ones approved before a failed start of the day that
        still wait to be approved again.

    Raises
    ------
    SupersededPlanError
        A later start of the run's day failed before re-planning it.
    ValueJumpError
        The run's predicted values jumped from the last successful run.
    StateError
        No such run, or a campaign named is not a change of its plan.
    """
    ensure_approvable(store, run_id, config=config)
    changes = {
        s.row.campaign_id for s in store.stored_plan(run_id) if _is_change(s.row)
    }
    if campaign_ids is not None:
        unknown = sorted(set(campaign_ids) - changes)
        if unknown:
            raise StateError(
                f"run {run_id} plans no change for campaign(s) {', '.join(unknown)}; "
                f"its changes are: {', '.join(sorted(changes)) or 'none'}"
            )
    with store.transaction() as connection:
        # Checked again under the run's lock: a start of the day failing
        # meanwhile must not leave an approved plan it has set aside.
        locked = store.get_run(run_id, connection, lock=True)
        assert locked is not None
        refuse_superseded(locked, "approved", config=config)
        refuse_value_held(locked, "approved")
        if locked.failed_attempt_at is not None:
            # Approving again after a failed start of the day is the explicit
            # word that the plan may be pushed as it was made.
            logger.warning(
                "run %s: approved after a later run of %s failed (%s); the plan "
                "approved is the one made before",
                run_id,
                locked.run_date,
                locked.failed_attempt_error or "no reason recorded",
            )
        before = {
            s.row.campaign_id: s.approved_at
            for s in store.stored_plan(run_id, connection)
        }
        changed = store.approve(
            connection,
            run_id,
            sorted(changes) if campaign_ids is None else list(campaign_ids),
            clock(),
            renew_before=locked.failed_attempt_at,
        )
        waiting = (
            []
            if locked.failed_attempt_at is None
            else store.approvals_awaiting_renewal(
                connection, run_id, locked.failed_attempt_at
            )
        )
    failed_at = locked.failed_attempt_at
    approval = Approval(
        approved=[cid for cid in changed if before.get(cid) is None],
        renewed=[cid for cid in changed if before.get(cid) is not None],
        awaiting_renewal=waiting,
        failed_at=None if failed_at is None else as_utc(failed_at),
    )
    logger.info(
        "run %s: %d change(s) approved, %d approval(s) renewed, %d still to renew",
        run_id,
        len(approval.approved),
        len(approval.renewed),
        len(waiting),
    )
    return approval


def approve_and_apply(
    store: StateStore,
    run_id: str,
    campaign_ids: Sequence[str] | None,
    settings: Settings,
    connect: Callable[[], TargetWriter | None],
    *,
    model_gate: ModelGate | None = None,
    alerts: AlertSink | None = None,
    clock: Clock = utc_now,
    config: Path | None = None,
    approved: Callable[[Approval], None] | None = None,
) -> ApplyReport:
    """Approve a run's changes and push them, refusing first what cannot be pushed.

    Every refusal known before the push comes before the approval is
    recorded: a plan held back (``rerun_failed``, ``value_held``), a
    missing or refused account login, the kill switch, a stale plan, stale
    data for every change approved, and a model that lost its gate. Such a
    refusal records nothing, so no approval is left on a plan that may not
    be pushed. Changes approved whose market's or own campaign stats are too
    old by now, next to fresh ones, are withheld at the push with the reason
    recorded (see :func:`apply_run`). A push that then
    fails at the API keeps the approvals, as each change's intent is
    written (``pending``) before its push: the next approval or apply of the
    run reconciles those changes with the account and pushes each once.

    Parameters
    ----------
    store
        The state store holding the run.
    run_id
        The cycle run whose plan is approved.
    campaign_ids
        The campaigns approved; every change of the plan when ``None``.
    settings
        The config (stops, mode, lock timings, alerts).
    connect
        Logs in to the account and returns its targets; ``None`` when no
        account is configured.
    model_gate
        Says why the run's model may not be used; no check when ``None``.
    alerts
        Where failures and big changes are announced.
    clock
        The current time (UTC).
    config
        The config file the commands of a refusal name.
    approved
        Called with the approval once it is recorded, before the push.

    Returns
    -------
    ApplyReport
        What the push did.

    Raises
    ------
    ApplyStopped
        A stop holds the run back; nothing was approved or pushed.
    PlanningError
        No account is configured; nothing was approved.
    SupersededPlanError, ValueJumpError, StateError
        As :func:`approve` and :func:`apply_run`.
    """
    run = ensure_approvable(store, run_id, config=config)
    writer = ensure_writer(connect())
    plan = store.stored_plan(run_id)
    changes = [s.row.campaign_id for s in plan if _is_change(s.row)]
    named = (
        changes if campaign_ids is None else [c for c in campaign_ids if c in changes]
    )
    withheld = stale_changes(run, [s.row for s in plan], settings, clock)
    pushing = _unapplied(store, run_id, named)
    stop = _first_stop(run, settings, model_gate, clock, withheld, pushing)
    if stop is not None:
        kind, reason = stop[0], secrets_mask(settings)(stop[1])
        logger.warning(
            "run %s not approved, apply stopped (%s): %s", run_id, kind, reason
        )
        raise ApplyStopped(kind, reason)

    approval = approve(store, run_id, campaign_ids, clock=clock, config=config)
    if approved is not None:
        approved(approval)
    return apply_run(
        store,
        run_id,
        writer,
        settings,
        model_gate=model_gate,
        alerts=alerts,
        clock=clock,
    )


def ensure_approvable(
    store: StateStore, run_id: str, *, config: Path | None = None
) -> RunRecord:
    """The run, when its plan may be approved; checked before anything else.

    ``config`` is the config file a refusal names in the command it suggests.

    Raises
    ------
    SupersededPlanError
        A later start of the run's day failed before re-planning it.
    ValueJumpError
        The run's predicted values jumped from the last successful run.
    StateError
        No such run, or it is not a cycle run.
    """
    run = _existing_run(store, run_id, config)
    if run.kind != CYCLE:
        raise StateError(
            f"run {run_id} is a {run.kind} run: there is nothing to approve"
        )
    refuse_superseded(run, "approved", config=config)
    refuse_value_held(run, "approved")
    return run


def refuse_superseded(run: RunRecord, verb: str, *, config: Path | None = None) -> None:
    """Raise when a later start of the run's day failed before re-planning it.

    Parameters
    ----------
    run
        The run about to be used.
    verb
        What was asked, as the message says it (``approved``, ``applied``).
    config
        The config file the command to run the day again names; a
        placeholder when ``None``.

    Raises
    ------
    SupersededPlanError
        The run is ``rerun_failed``; the message says why and what to do.
    """
    if run.status != RERUN_FAILED:
        return
    when = (
        f" at {as_utc(run.failed_attempt_at):%Y-%m-%d %H:%M} UTC"
        if run.failed_attempt_at is not None
        else ""
    )
    raise SupersededPlanError(
        f"run {run.run_id} cannot be {verb}: a later `valuebid run` for "
        f"{run.run_date} failed{when} before re-planning the day "
        f"({run.failed_attempt_error or 'no reason recorded'}), so this plan was "
        "made on inputs that have since been replaced. Fix what that run "
        f"reported, then run `{run_command(config, run.run_date)}` again: once "
        "it succeeds, the day is re-planned and can be approved."
    )


def refuse_value_held(run: RunRecord, verb: str) -> None:
    """Raise when the run's predicted values jumped from the last successful run.

    Parameters
    ----------
    run
        The run about to be used.
    verb
        What was asked, as the message says it (``approved``, ``applied``).

    Raises
    ------
    ValueJumpError
        The run is ``value_held``; the message gives both figures, their
        ratio, and how to re-plan the day or accept the new level.
    """
    if run.status != VALUE_HELD:
        return
    raise ValueJumpError(
        f"run {run.run_id} cannot be {verb}: it holds every target and the "
        f"day's values ({run.stop_reason or 'no reason recorded'})"
    )


def refuse_unsettled(
    store: StateStore,
    run: RunRecord,
    campaign_ids: Sequence[str],
    connection: Connection,
    *,
    config: Path | None = None,
) -> None:
    """Raise when changes about to be pushed predate a failed start of the day.

    A plan approved (or partly pushed) is kept when a later start of its day
    fails or is held, as what was reviewed must not change under the
    reviewer. But that start says the plan was made on inputs since
    replaced, so a change not applied yet is pushed only once a start of
    the day succeeds (which clears the failure) or once it is approved again
    after the failure.

    Parameters
    ----------
    store
        The state store holding the run.
    run
        The run, read under its lock.
    campaign_ids
        The campaigns whose changes are about to be pushed.
    connection
        The transaction holding the run's lock.
    config
        The config file the commands the message suggests name; a
        placeholder when ``None``.

    Raises
    ------
    SupersededPlanError
        Some of those changes were not approved since the failed start; the
        message names them and says how to go on.
    """
    if run.failed_attempt_at is None or not campaign_ids:
        return
    failed = as_utc(run.failed_attempt_at)
    approvals = {
        s.row.campaign_id: s.approved_at
        for s in store.stored_plan(run.run_id, connection)
    }
    unsettled = [
        cid
        for cid in campaign_ids
        if (when := approvals.get(cid)) is None or as_utc(when) <= failed
    ]
    if not unsettled:
        return
    raise SupersededPlanError(
        f"run {run.run_id} cannot be applied: a later `valuebid run` for "
        f"{run.run_date} failed at {failed:%Y-%m-%d %H:%M} UTC "
        f"({run.failed_attempt_error or 'no reason recorded'}) after this plan "
        "was approved or partly pushed, and its change(s) for campaign(s) "
        f"{', '.join(unsettled)} are not applied yet. The plan is kept as it "
        "was, but it was made on inputs that run replaced. Fix what that run "
        f"reported and run `{run_command(config, run.run_date)}` again, or, to "
        "push the plan as it was made, approve it again explicitly with "
        f"`{approve_command(config, run.run_id)}`."
    )


def registry_gate(model_directory: Path) -> ModelGate:
    """A gate that passes a run only if its model is the registry's current one.

    The registry makes a model current only when it passes its quality gate
    on a time-based holdout, so a plan scored by any other model is refused.
    """
    from models.exceptions import ModelError
    from models.registry import ModelRegistry

    def gate(run: RunRecord) -> str | None:
        try:
            current = ModelRegistry(model_directory).current()
        except ModelError as exc:
            return f"the current model in {model_directory} cannot be read: {exc}"
        if current is None:
            return f"no model in {model_directory} has passed its quality gate"
        if run.model_version != current.version:
            return (
                f"the plan was scored by model {run.model_version}, but the model "
                f"that passed its gate is {current.version}"
            )
        return None

    return gate


def kill_switch_file(settings: Settings) -> Path:
    """The flag file whose presence stops every apply."""
    configured = settings.operations.kill_switch_file
    return configured or settings.state.directory / "KILL_SWITCH"


def _push(
    store: StateStore,
    run: RunRecord,
    wanted: Mapping[str, _Wanted],
    writer: TargetWriter,
    report: ApplyReport,
    sink: AlertSink,
    settings: Settings,
    clock: Clock,
    mask: Mask,
    withheld: Mapping[str, str] | None = None,
) -> None:
    """Push ``wanted`` once each; those in ``withheld`` are recorded, not pushed.

    Every text the API sends back is masked: a Google error may quote a
    request header or a token, and ``mask`` takes the secrets of the config
    out of it before it is stored, logged or alerted.
    """
    withheld = withheld or {}
    done = store.changes_of(run.run_id)
    todo = {}
    for cid, want in wanted.items():
        if cid in done and done[cid].status == CHANGE_APPLIED:
            report.already_applied.append(cid)
        else:
            todo[cid] = want
    if not todo:
        _finish(store, run, report, sink, mask)
        return

    # A change withheld is not read, unless an interrupted push of it may
    # have landed: the account says whether it did.
    read = sorted(
        cid
        for cid in todo
        if cid not in withheld or (cid in done and done[cid].status == PENDING)
    )
    try:
        live = writer.read_targets(read) if read else {}
    except Exception as exc:
        _record_failure(
            store, run, sink, mask(f"reading the current targets failed: {exc}")
        )
        raise
    updates = _record_intents(
        store,
        run,
        todo,
        done,
        live,
        report,
        clock,
        config=settings.source,
        withheld=withheld,
    )
    if updates:
        _send(store, run, updates, writer, report, sink, clock, mask)
    _alert_big_changes(run, todo, report, sink, settings)
    _finish(store, run, report, sink, mask)


def _record_intents(
    store: StateStore,
    run: RunRecord,
    todo: Mapping[str, _Wanted],
    done: Mapping[str, ChangeRecord],
    live: Mapping[str, CampaignTarget],
    report: ApplyReport,
    clock: Clock,
    *,
    config: Path | None,
    withheld: Mapping[str, str],
) -> list[TargetUpdate]:
    """Reconcile interrupted changes and write the intents of the others.

    A change in ``withheld`` is recorded ``withheld`` with its reason rather
    than pushed.
    """
    now = clock()
    updates = []
    with store.transaction() as connection:
        # Under the run's lock: once an intent is written the plan is frozen,
        # so a start of the day failing meanwhile must be seen here.
        locked = store.get_run(run.run_id, connection, lock=True)
        if locked is not None:
            refuse_superseded(locked, "applied", config=config)
            refuse_value_held(locked, "applied")
            refuse_unsettled(store, locked, sorted(todo), connection, config=config)
        store.set_status(connection, run.run_id, APPLYING)
        for cid, want in todo.items():
            current = live.get(cid)
            previous = done.get(cid)
            if previous is not None and previous.status == PENDING:
                if current is not None and current.matches(want.update.target):
                    store.record_outcome(
                        connection,
                        run.run_id,
                        cid,
                        status=CHANGE_APPLIED,
                        detail="confirmed on the account after an interrupted apply",
                        request_id=previous.request_id,
                        when=now,
                    )
                    report.confirmed.append(cid)
                    logger.info(
                        "run %s campaign %s: push of the interrupted apply confirmed",
                        run.run_id,
                        cid,
                    )
                    continue
                if cid in withheld:
                    # It never landed, and its data is too old by now: the
                    # intent keeps the values read before it.
                    _withhold(store, connection, run, cid, withheld[cid], now)
                    report.withheld[cid] = withheld[cid]
                    continue
                # The interrupted push never landed: push it now, keeping the
                # values read before it as the ones a rollback restores.
                updates.append(want.update)
                continue
            if cid in withheld:
                store.record_intent(
                    connection, _intent(run, want, want.expected, now, None)
                )
                _withhold(store, connection, run, cid, withheld[cid], now)
                report.withheld[cid] = withheld[cid]
                continue
            if current is None or not current.matches(want.expected):
                seen = "missing" if current is None else _describe(current)
                detail = (
                    f"account shows {seen}, plan expected {_describe(want.expected)}: "
                    "changed outside this run, left alone"
                )
                store.record_intent(
                    connection, _intent(run, want, want.expected, now, detail)
                )
                store.record_outcome(
                    connection,
                    run.run_id,
                    cid,
                    status=DRIFTED,
                    detail=detail,
                    request_id=None,
                    when=now,
                )
                report.drifted.append(cid)
                logger.warning("run %s campaign %s: %s", run.run_id, cid, detail)
                continue
            store.record_intent(connection, _intent(run, want, current, now, None))
            updates.append(want.update)
    return updates


def _withhold(
    store: StateStore,
    connection: Connection,
    run: RunRecord,
    campaign_id: str,
    reason: str,
    now: dt.datetime,
) -> None:
    """Record a change as withheld for stale data; nothing is pushed."""
    detail = f"{STALE_DATA}: {reason}; withheld, not pushed"
    store.record_outcome(
        connection,
        run.run_id,
        campaign_id,
        status=WITHHELD,
        detail=detail,
        request_id=None,
        when=now,
    )
    logger.warning("run %s campaign %s: %s", run.run_id, campaign_id, detail)


def _send(
    store: StateStore,
    run: RunRecord,
    updates: Sequence[TargetUpdate],
    writer: TargetWriter,
    report: ApplyReport,
    sink: AlertSink,
    clock: Clock,
    mask: Mask,
) -> None:
    report.pushed.extend(u.campaign_id for u in updates)
    try:
        outcomes = writer.apply(updates)
    except Exception as exc:
        _record_failure(
            store, run, sink, mask(f"pushing {len(updates)} change(s) failed: {exc}")
        )
        raise
    now = clock()
    by_campaign = {o.campaign_id: o for o in outcomes}
    with store.transaction() as connection:
        for update in updates:
            outcome = by_campaign.get(update.campaign_id)
            if outcome is None:
                logger.warning(
                    "run %s campaign %s: no outcome returned; left pending",
                    run.run_id,
                    update.campaign_id,
                )
                continue
            status = CHANGE_APPLIED if outcome.status == "applied" else REJECTED
            error = None if outcome.error is None else mask(outcome.error)
            store.record_outcome(
                connection,
                run.run_id,
                update.campaign_id,
                status=status,
                detail=error,
                request_id=outcome.request_id,
                when=now,
            )
            if status == CHANGE_APPLIED:
                report.applied.append(update.campaign_id)
                logger.info(
                    "run %s campaign %s set to %s (%s)",
                    run.run_id,
                    update.campaign_id,
                    _describe(update.target),
                    update.reason,
                )
            else:
                report.rejected[update.campaign_id] = error or "rejected"
                logger.warning(
                    "run %s campaign %s rejected: %s (request %s)",
                    run.run_id,
                    update.campaign_id,
                    error,
                    outcome.request_id,
                )


def _record_failure(
    store: StateStore, run: RunRecord, sink: AlertSink, reason: str
) -> None:
    """Mark the run failed; its pending changes are reconciled by the next start."""
    with store.transaction() as connection:
        store.set_status(connection, run.run_id, FAILED, reason)
    # The error is raised again to the caller, which reports it; a traceback
    # here would repeat it, and an expected API failure deserves none.
    logger.error("run %s: %s", run.run_id, reason)
    sink.send(f"valuebid run {run.run_id} failed: {reason}")


def _finish(
    store: StateStore, run: RunRecord, report: ApplyReport, sink: AlertSink, mask: Mask
) -> None:
    changes = store.changes_of(run.run_id)
    applied = sum(c.status == CHANGE_APPLIED for c in changes.values())
    troubled = [c for c in changes.values() if c.status != CHANGE_APPLIED]
    if troubled:
        report.status = PARTIAL if applied else FAILED
    elif report.awaiting_approval:
        report.status = PARTIAL if applied else PLANNED
    else:
        report.status = APPLIED
    reason = None
    if troubled:
        reason = mask(
            "; ".join(
                f"{c.campaign_id} {c.status}: {c.detail or '-'}" for c in troubled
            )
        )
    with store.transaction() as connection:
        store.set_status(connection, run.run_id, report.status, reason)
    logger.info(
        "run %s %s: %d pushed, %d confirmed, %d already applied, %d rejected, "
        "%d drifted, %d withheld, %d awaiting approval",
        run.run_id,
        report.status,
        len(report.pushed),
        len(report.confirmed),
        len(report.already_applied),
        len(report.rejected),
        len(report.drifted),
        len(report.withheld),
        len(report.awaiting_approval),
    )
    if report.rejected or report.drifted or report.withheld:
        sink.send(
            f"valuebid run {run.run_id} is {report.status}: "
            f"{reason or 'some changes were not applied'}"
        )


def _alert_big_changes(
    run: RunRecord,
    wanted: Mapping[str, _Wanted],
    report: ApplyReport,
    sink: AlertSink,
    settings: Settings,
) -> None:
    threshold = settings.operations.alerts.change_pct_threshold
    big = []
    for cid in report.applied:
        pct = wanted[cid].change_pct
        if pct is not None and abs(pct) >= threshold:
            big.append(f"{cid} {pct:+.1f}% to {_describe(wanted[cid].update.target)}")
    if big:
        sink.send(
            f"valuebid run {run.run_id} applied {len(big)} change(s) of "
            f"{threshold:g}% or more: " + "; ".join(big)
        )


def _stop_if_needed(
    store: StateStore,
    run: RunRecord,
    settings: Settings,
    model_gate: ModelGate | None,
    sink: AlertSink,
    clock: Clock,
    withheld: Mapping[str, str],
    pushing: Collection[str],
    mask: Mask,
) -> None:
    stop = _first_stop(run, settings, model_gate, clock, withheld, pushing)
    if stop is not None:
        _record_stop(store, run.run_id, *stop, sink, mask)


def _first_stop(
    run: RunRecord,
    settings: Settings,
    model_gate: ModelGate | None,
    clock: Clock,
    withheld: Mapping[str, str],
    pushing: Collection[str],
) -> tuple[str, str] | None:
    """The first stop holding the run's apply back, and why; ``None`` if none.

    ``withheld`` gives the changes whose data is too old to push (see
    :func:`stale_changes`) and ``pushing`` the changes the apply would push:
    when each of them is withheld, the apply stops as a whole.
    """
    kill = _kill_switch(settings)
    if kill is not None:
        return KILL_SWITCH, kill
    stale = _staleness(run, settings, clock)
    if stale is not None:
        return STALE_DATA, stale
    if pushing and all(cid in withheld for cid in pushing):
        reasons = dict.fromkeys(withheld[cid] for cid in sorted(pushing))
        return STALE_DATA, (
            f"every change to push is in a market or campaign whose data is "
            f"too old: {'; '.join(reasons)}"
        )
    if model_gate is not None:
        refused = model_gate(run)
        if refused is not None:
            return MODEL_GATE, refused
    return None


def _kill_switch(settings: Settings) -> str | None:
    if settings.kill_switch:
        return "kill_switch is true in the config"
    flag = kill_switch_file(settings)
    if flag.exists():
        return f"the kill switch file {flag} exists (delete it to resume)"
    return None


def _staleness(run: RunRecord, settings: Settings, clock: Clock) -> str | None:
    zone = settings.account.time_zone
    today = account_today(zone, clock())
    plan_age = (today - run.run_date).days
    if plan_age < 0:
        # Each day moves a target by at most one step; a plan dated ahead
        # would let one real day take the steps of the days named.
        return (
            f"the plan is for {run.run_date}, a day that has not begun in the "
            f"account's time zone ({zone}, where it is {today}); plan today "
            "instead, or apply this plan on its day"
        )
    allowed_plan = settings.operations.max_plan_age_days
    if plan_age > allowed_plan:
        return (
            f"the plan is for {run.run_date}, {plan_age} day(s) old; at most "
            f"{allowed_plan} allowed (operations.max_plan_age_days)"
        )
    through = run.inputs.get("data_through")
    if not through:
        return (
            f"run {run.run_id} does not record how recent its data is, so its "
            "freshness cannot be checked; plan again"
        )
    if isinstance(run.inputs.get("data_through_by_campaign"), Mapping):
        # Judged market by market and campaign by campaign instead (see
        # stale_changes): the account's newest day would hide a stale market.
        return None
    newest = dt.date.fromisoformat(str(through))
    data_age = (today - newest).days - 1
    allowed = settings.guardrails.max_data_age_days
    if data_age > allowed:
        return (
            f"campaign stats end on {newest}, {data_age} day(s) before yesterday; "
            f"at most {allowed} allowed (guardrails.max_data_age_days)"
        )
    return None


def _record_stop(
    store: StateStore,
    run_id: str,
    stop: str,
    reason: str,
    sink: AlertSink,
    mask: Mask,
    *,
    record: bool = True,
) -> None:
    """Record, log, alert and raise a stop, its reason masked first.

    A reason may quote what a server or a file sent back (a model gate's
    error, say), so the config's secrets are masked before it goes anywhere.
    """
    reason = mask(reason)
    if record:
        with store.transaction() as connection:
            store.set_status(connection, run_id, STOPPED, f"{stop}: {reason}")
    logger.warning("run %s apply stopped (%s): %s", run_id, stop, reason)
    stopped = ApplyStopped(stop, reason)
    alert_failure(sink, stopped, f"valuebid run {run_id} stopped ({stop}): {reason}")
    raise stopped


def _account_lease(
    store: StateStore, account: str, settings: Settings, clock: Clock
) -> AbstractContextManager[str]:
    return lease(
        store,
        f"apply:{account}",
        ttl=dt.timedelta(seconds=settings.operations.lock_ttl_seconds),
        wait=dt.timedelta(seconds=settings.operations.lock_wait_seconds),
        clock=clock,
    )


def _existing_run(store: StateStore, run_id: str, config: Path | None) -> RunRecord:
    run = store.get_run(run_id)
    if run is None:
        raise StateError(
            f"no run {run_id!r} in the state store (`{runs_command(config)}` "
            "lists them)"
        )
    return run


def _is_change(row: PlanRow) -> bool:
    return row.action != HOLD and row.new_troas is not None


def _wanted_from_plan(row: PlanRow) -> _Wanted:
    assert row.new_troas is not None
    return _Wanted(
        TargetUpdate(
            CampaignTarget(row.campaign_id, TARGET_ROAS, row.new_troas, None),
            row.reason,
        ),
        CampaignTarget(
            row.campaign_id,
            row.current_strategy,
            row.current_target_roas,
            row.current_target_cpa,
        ),
        row.change_pct,
    )


def _intent(
    run: RunRecord,
    want: _Wanted,
    before: CampaignTarget,
    now: dt.datetime,
    detail: str | None,
) -> ChangeRecord:
    target = want.update.target
    return ChangeRecord(
        run_id=run.run_id,
        campaign_id=target.campaign_id,
        status=PENDING,
        old_strategy=before.strategy,
        old_target_roas=before.target_roas,
        old_target_cpa=before.target_cpa,
        new_strategy=target.strategy,
        new_target_roas=target.target_roas,
        new_target_cpa=target.target_cpa,
        applied_at=now,
        detail=detail,
        request_id=None,
    )


def _describe(target: CampaignTarget) -> str:
    if target.target_roas is not None:
        return f"{target.strategy} {target.target_roas:g}"
    if target.target_cpa is not None:
        return f"{target.strategy} {target.target_cpa:g}"
    return target.strategy


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def ensure_writer(writer: TargetWriter | None) -> TargetWriter:
    """The writer, or a clear error when no Google Ads account is configured."""
    if writer is None:
        raise PlanningError(
            "applying needs a Google Ads account in the config (google_ads: "
            "section); none is configured, so the plan can only be reviewed"
        )
    return writer
