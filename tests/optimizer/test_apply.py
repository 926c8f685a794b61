"""Applying plans once, resuming after crashes, stops, approval and rollback."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest

from config.schema import Settings
from optimizer.apply import (
    CampaignTarget,
    UpdateOutcome,
    apply_run,
    approve,
    approve_and_apply,
    kill_switch_file,
    rollback_run,
)
from optimizer.exceptions import (
    ApplyStopped,
    LockBusyError,
    StateError,
    SupersededPlanError,
)
from optimizer.locks import try_acquire
from optimizer.state import RunRecord, StateStore, as_utc
from tests.optimizer.conftest import (
    PLAN,
    RUN_DATE,
    START,
    clock_at,
    make_settings,
    plan_row,
    record_plan,
)
from tests.optimizer.fakes import FileAccount, MemoryAccount, SimulatedCrash

TODAY = clock_at(RUN_DATE)
CHANGED = ["101", "102", "103"]


def test_apply_pushes_each_planned_change_and_records_before_values(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = MemoryAccount(START)

    report = apply_run(store, run.run_id, account, settings, clock=TODAY)

    assert sorted(account.pushes) == CHANGED
    assert report.status == "applied"
    assert account.targets["101"] == CampaignTarget("101", "TARGET_ROAS", 1.93, None)
    assert account.targets["104"] == START["104"]
    changes = store.changes_of(run.run_id)
    assert changes["101"].old_strategy == "TARGET_CPA"
    assert changes["101"].old_target_cpa == 41.0
    assert changes["102"].old_target_roas == 2.5
    assert changes["102"].request_id is not None
    assert store.get_run(run.run_id).status == "applied"  # type: ignore[union-attr]


def test_double_start_reuses_the_plan_and_applies_once(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = MemoryAccount(START)
    apply_run(store, run.run_id, account, settings, clock=TODAY)

    # The second start plans differently (cooldowns now bind), but the day's
    # plan is frozen once pushed.
    again = record_plan(store, [plan_row("102", target_roas=2.875, action="hold")])
    second = apply_run(store, again.run_id, account, settings, clock=TODAY)

    assert again.run_id == run.run_id
    assert again.attempts == 2
    assert len(store.stored_plan(run.run_id)) == len(PLAN)
    assert sorted(account.pushes) == CHANGED
    assert second.pushed == []
    assert sorted(second.already_applied) == CHANGED


def test_second_start_pushes_only_what_was_not_applied(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = MemoryAccount(START, reject={"103"})
    first = apply_run(store, run.run_id, account, settings, clock=TODAY)
    assert first.status == "partial"
    assert set(first.rejected) == {"103"}

    account.reject.clear()
    second = apply_run(store, run.run_id, account, settings, clock=TODAY)

    assert second.pushed == ["103"]
    assert second.status == "applied"
    assert sorted(account.pushes) == ["101", "102", "103", "103"]
    assert store.changes_of(run.run_id)["103"].old_target_roas == 3.1


def test_crash_mid_apply_resumes_without_pushing_twice(
    db_url: str, settings: Settings
) -> None:
    first_process = StateStore(db_url)
    run = record_plan(first_process)
    account = MemoryAccount(START, crash_after=2)
    with pytest.raises(SimulatedCrash):
        apply_run(first_process, run.run_id, account, settings, clock=TODAY)
    first_process.dispose()
    landed = list(account.pushes)
    assert len(landed) == 2
    looking = StateStore(db_url)
    pending = looking.changes_of(run.run_id)
    looking.dispose()
    assert {c.status for c in pending.values()} == {"pending"}

    # A new process, after the lease of the dead one has expired.
    account.crash_after = None
    later = clock_at(RUN_DATE, hour=11)
    second_process = StateStore(db_url)
    report = apply_run(second_process, run.run_id, account, settings, clock=later)

    assert sorted(report.confirmed) == sorted(landed)
    assert report.pushed == sorted(set(CHANGED) - set(landed))
    assert sorted(account.pushes) == CHANGED
    changes = second_process.changes_of(run.run_id)
    assert {c.status for c in changes.values()} == {"applied"}
    # What a rollback restores is what the account held before the crash.
    assert changes["101"].old_strategy == "TARGET_CPA"
    assert changes["102"].old_target_roas == 2.5
    second_process.dispose()


def test_a_lease_held_by_a_dead_process_blocks_until_it_expires(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = MemoryAccount(START)
    taken_at = TODAY()
    ttl = dt.timedelta(seconds=settings.operations.lock_ttl_seconds)
    assert try_acquire(store, "apply:Acme FR", "dead-process", ttl, taken_at)

    with pytest.raises(LockBusyError, match="dead-process"):
        apply_run(store, run.run_id, account, settings, clock=TODAY)
    assert account.pushes == []

    after_expiry = clock_at(RUN_DATE, hour=10)
    report = apply_run(store, run.run_id, account, settings, clock=after_expiry)
    assert sorted(report.pushed) == CHANGED


def _apply_in_process(
    db_url: str, base: str, account_path: str, start: object, results: object
) -> None:
    settings = make_settings(Path(base), db_url, lock_wait_seconds=60)
    store = StateStore(db_url)
    start.wait()  # type: ignore[attr-defined]
    report = apply_run(
        store,
        "20261116-acme-fr",
        FileAccount(Path(account_path), push_delay_seconds=0.2),
        settings,
        clock=TODAY,
    )
    results.put(report.pushed)  # type: ignore[attr-defined]
    store.dispose()


def test_two_processes_started_together_apply_once(db_url: str, tmp_path: Path) -> None:
    store = StateStore(db_url)
    record_plan(store)
    store.dispose()
    account = FileAccount.create(tmp_path / "account.json", START)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(
            target=_apply_in_process,
            args=(db_url, str(tmp_path), str(account.path), start, results),
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    pushed = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    assert sorted(account.pushes()) == CHANGED
    assert sorted(len(p) for p in pushed) == [0, 3]
    assert account.targets()["102"].target_roas == 2.875


def test_rollback_restores_the_exact_prior_strategies_and_targets(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = MemoryAccount(START)
    apply_run(store, run.run_id, account, settings, clock=TODAY)
    assert account.targets != START

    report = rollback_run(store, run.run_id, account, settings, clock=TODAY)

    assert account.targets == START
    assert sorted(report.applied) == CHANGED
    undo = store.get_run(report.run_id)
    assert undo is not None
    assert (undo.kind, undo.rolls_back, undo.status) == (
        "rollback",
        run.run_id,
        "applied",
    )
    undone = store.changes_of(report.run_id)
    assert undone["101"].new_strategy == "TARGET_CPA"
    assert undone["101"].new_target_cpa == 41.0

    again = rollback_run(store, run.run_id, account, settings, clock=TODAY)
    assert again.pushed == []
    assert len(account.pushes) == 6


def test_rollback_leaves_a_campaign_changed_elsewhere_alone(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = MemoryAccount(START)
    apply_run(store, run.run_id, account, settings, clock=TODAY)
    account.targets["102"] = CampaignTarget("102", "TARGET_ROAS", 4.0, None)

    report = rollback_run(store, run.run_id, account, settings, clock=TODAY)

    assert report.drifted == ["102"]
    assert account.targets["102"].target_roas == 4.0
    assert account.targets["101"] == START["101"]
    assert report.status == "partial"


def test_apply_leaves_a_campaign_changed_since_planning_alone(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    start = dict(START)
    start["103"] = CampaignTarget("103", "TARGET_ROAS", 3.6, None)
    account = MemoryAccount(start)

    report = apply_run(store, run.run_id, account, settings, clock=TODAY)

    assert report.drifted == ["103"]
    assert "103" not in account.pushes
    assert account.targets["103"].target_roas == 3.6


@pytest.mark.parametrize("how", ["config", "flag file"])
def test_kill_switch_stops_the_apply_and_keeps_the_plan(
    store: StateStore, tmp_path: Path, db_url: str, how: str
) -> None:
    settings = make_settings(tmp_path, db_url)
    if how == "config":
        settings = settings.model_copy(update={"kill_switch": True})
    else:
        kill_switch_file(settings).parent.mkdir(parents=True, exist_ok=True)
        kill_switch_file(settings).touch()
    run = record_plan(store)
    account = MemoryAccount(START)

    with pytest.raises(ApplyStopped, match="kill_switch") as stopped:
        apply_run(store, run.run_id, account, settings, clock=TODAY)

    assert stopped.value.stop == "kill_switch"
    assert account.pushes == []
    recorded = store.get_run(run.run_id)
    assert recorded is not None
    assert recorded.status == "stopped"
    assert recorded.stop_reason is not None
    assert recorded.stop_reason.startswith("kill_switch")
    assert len(store.stored_plan(run.run_id)) == len(PLAN)

    if how == "flag file":
        kill_switch_file(settings).unlink()
        report = apply_run(store, run.run_id, account, settings, clock=TODAY)
        assert sorted(report.pushed) == CHANGED


def test_stale_input_data_stops_the_apply(
    store: StateStore, settings: Settings
) -> None:
    allowed = settings.guardrails.max_data_age_days
    old = RUN_DATE - dt.timedelta(days=allowed + 2)
    run = record_plan(store, data_through=old)
    account = MemoryAccount(START)

    with pytest.raises(ApplyStopped, match="campaign stats end on") as stopped:
        apply_run(store, run.run_id, account, settings, clock=TODAY)

    assert stopped.value.stop == "stale_data"
    assert account.pushes == []
    assert store.get_run(run.run_id).status == "stopped"  # type: ignore[union-attr]


class _Alerts:
    """An alert sink that keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, text: str) -> None:
        self.sent.append(text)


#: The account of two markets: FR's campaigns 101-103, DE's 201-202.
TWO_MARKETS = {
    **START,
    "201": CampaignTarget("201", "TARGET_ROAS", 2.0, None),
    "202": CampaignTarget("202", "TARGET_ROAS", 4.0, None),
}
TWO_MARKET_PLAN = [
    *PLAN,
    plan_row("201", target_roas=2.0, new_troas=2.3, change_pct=15.0, market="DE"),
    plan_row("202", target_roas=4.0, new_troas=3.6, change_pct=-10.0, market="DE"),
]


def _two_markets(tmp_path: Path, db_url: str, **operations: object) -> Settings:
    markets = {"FR": {"cac_max": 120.0}, "DE": {"cac_max": 150.0}}
    return make_settings(tmp_path, db_url, markets=markets, **operations)


def _ends(fr: dt.date, de: dt.date) -> dict[str, dt.date]:
    """The last day of each campaign's stats, one day per market."""
    return {cid: fr for cid in ("101", "102", "103", "104")} | {
        cid: de for cid in ("201", "202")
    }


def test_a_market_gone_stale_by_the_push_is_withheld_not_hidden(
    store: StateStore, tmp_path: Path, db_url: str
) -> None:
    """Planned on the 16th, DE's stats ending on the 13th were fresh (2 days
    before yesterday, 2 allowed); pushed on the 17th they are 3 days old,
    while FR's, ending on the 15th, are fresh. DE's changes are withheld and
    recorded with the reason; FR's are pushed."""
    settings = _two_markets(tmp_path, db_url)
    day = dt.timedelta(days=1)
    run = record_plan(
        store, TWO_MARKET_PLAN, ends=_ends(RUN_DATE - day, RUN_DATE - 3 * day)
    )
    account = MemoryAccount(TWO_MARKETS)
    alerts = _Alerts()

    report = apply_run(
        store,
        run.run_id,
        account,
        settings,
        alerts=alerts,
        clock=clock_at(RUN_DATE + day),
    )

    assert sorted(account.pushes) == CHANGED
    assert sorted(report.withheld) == ["201", "202"]
    assert account.targets["201"] == TWO_MARKETS["201"]
    changes = store.changes_of(run.run_id)
    for cid in ("201", "202"):
        assert changes[cid].status == "withheld"
        assert changes[cid].detail is not None
        assert changes[cid].detail.startswith(
            "stale_data: campaign stats of market DE end on 2026-11-13, "
            "3 day(s) before yesterday, while other markets' run to 2026-11-15"
        )
    assert report.status == "partial"
    recorded = store.get_run(run.run_id)
    assert recorded is not None and recorded.stop_reason is not None
    assert "201 withheld: stale_data: campaign stats of market DE" in (
        recorded.stop_reason
    )
    assert any("201 withheld" in text for text in alerts.sent)


def test_a_fresh_market_is_not_held_by_another_markets_stale_stats(
    store: StateStore, tmp_path: Path, db_url: str
) -> None:
    """Both markets' stats end on the 13th: fresh for the plan of the 16th;
    pushed on the 17th, too old for FR (3 days before yesterday, 2 allowed)
    but not for DE, which allows 5. Only FR's changes are withheld."""
    markets = {
        "FR": {"cac_max": 120.0},
        "DE": {"cac_max": 150.0, "guardrails": {"max_data_age_days": 5}},
    }
    settings = make_settings(tmp_path, db_url, markets=markets)
    old = RUN_DATE - dt.timedelta(days=3)
    run = record_plan(store, TWO_MARKET_PLAN, ends=_ends(old, old))
    account = MemoryAccount(TWO_MARKETS)
    next_day = clock_at(RUN_DATE + dt.timedelta(days=1))

    report = apply_run(store, run.run_id, account, settings, clock=next_day)

    assert sorted(account.pushes) == ["201", "202"]
    assert sorted(report.withheld) == CHANGED
    assert report.withheld["101"] == (
        "campaign stats of market FR end on 2026-11-13, 3 day(s) before "
        "yesterday; at most 2 allowed (guardrails.max_data_age_days)"
    )
    assert report.status == "partial"


def test_a_campaign_whose_stats_stopped_is_withheld_in_a_fresh_market(
    store: StateStore, settings: Settings
) -> None:
    """Campaign 102's rows stop on the 13th, fresh for the plan of the 16th
    but not for its push on the 17th; its market's run to the 15th."""
    yesterday = RUN_DATE - dt.timedelta(days=1)
    ends = dict.fromkeys(("101", "102", "103", "104"), yesterday)
    ends["102"] = RUN_DATE - dt.timedelta(days=3)
    run = record_plan(store, ends=ends)
    account = MemoryAccount(START)
    next_day = clock_at(RUN_DATE + dt.timedelta(days=1))

    report = apply_run(store, run.run_id, account, settings, clock=next_day)

    assert sorted(account.pushes) == ["101", "103"]
    assert list(report.withheld) == ["102"]
    assert report.withheld["102"].startswith(
        "campaign stats of campaign 102 end on 2026-11-13, 3 day(s) before "
        "yesterday, while market FR's run to 2026-11-15"
    )
    assert store.changes_of(run.run_id)["102"].status == "withheld"


def test_when_every_change_is_withheld_the_apply_stops(
    store: StateStore, tmp_path: Path, db_url: str
) -> None:
    """Pushed the day after the plan, FR fresh and DE stale: approving DE's
    changes alone is refused before anything is recorded, as a stop;
    approving all pushes FR's only."""
    settings = _two_markets(tmp_path, db_url, apply_mode="approval")
    day = dt.timedelta(days=1)
    run = record_plan(
        store, TWO_MARKET_PLAN, ends=_ends(RUN_DATE - day, RUN_DATE - 3 * day)
    )
    account = MemoryAccount(TWO_MARKETS)
    next_day = clock_at(RUN_DATE + day)

    with pytest.raises(ApplyStopped, match="market DE end on") as stopped:
        approve_and_apply(
            store, run.run_id, ["201", "202"], settings, lambda: account, clock=next_day
        )

    assert stopped.value.stop == "stale_data"
    assert _approved(store, run.run_id) == []
    assert account.pushes == []
    report = approve_and_apply(
        store, run.run_id, None, settings, lambda: account, clock=next_day
    )
    assert sorted(account.pushes) == CHANGED
    assert sorted(report.withheld) == ["201", "202"]


def test_a_plan_older_than_allowed_is_not_applied(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = MemoryAccount(START)
    days_later = clock_at(RUN_DATE + dt.timedelta(days=2))

    with pytest.raises(ApplyStopped, match="the plan is for 2026-11-16"):
        apply_run(store, run.run_id, account, settings, clock=days_later)
    assert account.pushes == []


def test_a_plan_for_a_day_not_begun_in_the_account_is_not_applied(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = MemoryAccount(START)
    # 23:00 on the day before, account time: an hour before the day begins.
    evening_before = clock_at(RUN_DATE - dt.timedelta(days=1), hour=23)

    with pytest.raises(ApplyStopped, match="a day that has not begun") as stopped:
        apply_run(store, run.run_id, account, settings, clock=evening_before)

    assert stopped.value.stop == "stale_data"
    assert f"where it is {RUN_DATE - dt.timedelta(days=1)}" in str(stopped.value)
    assert account.pushes == []
    assert store.get_run(run.run_id).status == "stopped"  # type: ignore[union-attr]
    report = apply_run(
        store, run.run_id, account, settings, clock=clock_at(RUN_DATE, 0)
    )
    assert sorted(report.pushed) == CHANGED


def test_failed_model_gate_stops_the_apply(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = MemoryAccount(START)

    def gate(record: object) -> str | None:
        return "model pltv-test lost to the baseline on the holdout"

    with pytest.raises(ApplyStopped) as stopped:
        apply_run(store, run.run_id, account, settings, model_gate=gate, clock=TODAY)
    assert stopped.value.stop == "model_gate"
    assert account.pushes == []


def test_approval_mode_pushes_only_approved_changes(
    store: StateStore, tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(tmp_path, db_url, apply_mode="approval")
    run = record_plan(store)
    account = MemoryAccount(START)

    waiting = apply_run(store, run.run_id, account, settings, clock=TODAY)
    assert account.pushes == []
    assert sorted(waiting.awaiting_approval) == CHANGED
    assert waiting.status == "planned"

    assert approve(store, run.run_id, ["102"], clock=TODAY).approved == ["102"]
    partly = apply_run(store, run.run_id, account, settings, clock=TODAY)
    assert account.pushes == ["102"]
    assert partly.status == "partial"

    approve(store, run.run_id, clock=TODAY)
    rest = apply_run(store, run.run_id, account, settings, clock=TODAY)
    assert sorted(rest.pushed) == ["101", "103"]
    assert rest.status == "applied"


def test_approving_a_campaign_the_plan_does_not_change_is_refused(
    store: StateStore,
) -> None:
    run = record_plan(store)
    with pytest.raises(StateError, match="plans no change for campaign"):
        approve(store, run.run_id, ["104"])


def test_approval_freezes_the_days_plan(store: StateStore) -> None:
    run = record_plan(store)
    approve(store, run.run_id, ["101"])
    record_plan(store, [plan_row("101", action="hold")])
    assert len(store.stored_plan(run.run_id)) == len(PLAN)


def test_a_plan_nothing_was_done_with_is_replanned(store: StateStore) -> None:
    run = record_plan(store)
    record_plan(store, [plan_row("101", action="hold")])
    assert [s.row.action for s in store.stored_plan(run.run_id)] == ["hold"]


def test_unknown_run_is_named_in_the_error(
    store: StateStore, settings: Settings
) -> None:
    with pytest.raises(StateError, match="no run 'nope'"):
        apply_run(store, "nope", MemoryAccount(START), settings)


def test_rollback_of_a_run_that_applied_nothing_is_refused(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    with pytest.raises(
        StateError, match="applied no change to Google Ads: nothing to roll back"
    ):
        rollback_run(store, run.run_id, MemoryAccount(START), settings, clock=TODAY)


class _Unreachable(MemoryAccount):
    def read_targets(self, campaign_ids: object) -> dict[str, CampaignTarget]:
        raise ConnectionError("account unreachable")


def test_an_unreachable_account_fails_the_run_and_pushes_nothing(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    account = _Unreachable(START)

    with pytest.raises(ConnectionError):
        apply_run(store, run.run_id, account, settings, clock=TODAY)

    recorded = store.get_run(run.run_id)
    assert recorded is not None
    assert recorded.status == "failed"
    assert recorded.stop_reason == (
        "reading the current targets failed: account unreachable"
    )
    assert account.pushes == []
    assert store.changes_of(run.run_id) == {}


FAILED_AT = dt.datetime(2026, 11, 16, 10, 5, tzinfo=dt.UTC)
FAILURE = "ContractError: revenue.csv: column 'amount', row 2: value '-5' is negative"


def _fail_start(store: StateStore, run_date: dt.date = RUN_DATE) -> RunRecord | None:
    """Record a start of the day that failed before recording its plan."""
    with store.transaction() as connection:
        return store.record_failed_attempt(
            connection,
            account="Acme FR",
            run_date=run_date,
            error=FAILURE,
            when=FAILED_AT,
        )


def test_a_failed_rerun_holds_back_a_plan_nothing_was_done_with(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store)
    # A stop must not overwrite the status that holds the plan back.
    kill_switch_file(settings).parent.mkdir(parents=True, exist_ok=True)
    kill_switch_file(settings).touch()
    account = MemoryAccount(START)

    held = _fail_start(store)

    assert held is not None
    assert (held.run_id, held.status, held.attempts) == (
        run.run_id,
        "rerun_failed",
        2,
    )
    assert held.failed_attempt_error == FAILURE
    assert held.failed_attempt_at is not None
    assert as_utc(held.failed_attempt_at) == FAILED_AT
    # The set-aside plan stays readable, for whoever compares.
    assert len(store.stored_plan(run.run_id)) == len(PLAN)
    with pytest.raises(SupersededPlanError) as refused:
        approve(store, run.run_id)
    message = str(refused.value)
    assert f"run {run.run_id} cannot be approved" in message
    assert "failed at 2026-11-16 10:05 UTC" in message
    assert FAILURE in message
    assert "Fix what that run reported" in message
    assert "`valuebid run --config FILE --run-date 2026-11-16`" in message
    assert [s for s in store.stored_plan(run.run_id) if s.approved_at] == []
    with pytest.raises(SupersededPlanError, match="cannot be applied"):
        apply_run(store, run.run_id, account, settings, clock=TODAY)
    assert account.pushes == []
    assert store.changes_of(run.run_id) == {}
    after = store.get_run(run.run_id)
    assert after is not None
    assert after.status == "rerun_failed"


def test_a_run_that_succeeds_after_a_failed_one_replans_the_day(
    store: StateStore, settings: Settings
) -> None:
    run = record_plan(store, [plan_row("102", target_roas=2.5, action="hold")])
    _fail_start(store)

    again = record_plan(store)

    assert again.run_id == run.run_id
    assert (again.status, again.attempts) == ("planned", 3)
    assert (again.failed_attempt_at, again.failed_attempt_error) == (None, None)
    assert len(store.stored_plan(run.run_id)) == len(PLAN)
    account = MemoryAccount(START)
    report = apply_run(store, run.run_id, account, settings, clock=TODAY)
    assert sorted(account.pushes) == CHANGED
    assert report.status == "applied"


@pytest.mark.parametrize("done", ["approved", "pushed"])
def test_a_failed_rerun_keeps_a_plan_already_approved_or_pushed(
    store: StateStore, tmp_path: Path, db_url: str, done: str
) -> None:
    settings = make_settings(tmp_path, db_url, apply_mode="approval")
    run = record_plan(store)
    account = MemoryAccount(START, reject={"103"})
    approve(store, run.run_id, ["102"] if done == "approved" else None, clock=TODAY)
    if done == "pushed":
        apply_run(store, run.run_id, account, settings, clock=TODAY)
    before = store.get_run(run.run_id)
    assert before is not None
    plan_before = store.stored_plan(run.run_id)

    kept = _fail_start(store)

    assert kept is not None
    assert (
        kept.status == before.status == ("planned" if done == "approved" else "partial")
    )
    assert kept.stop_reason == before.stop_reason
    assert kept.attempts == before.attempts + 1
    assert kept.failed_attempt_error == FAILURE
    assert store.stored_plan(run.run_id) == plan_before


#: Later on the day of the failed start, account time.
AFTER_FAILURE = clock_at(RUN_DATE, 12)


def _approvals(store: StateStore, run_id: str) -> dict[str, dt.datetime | None]:
    return {s.row.campaign_id: s.approved_at for s in store.stored_plan(run_id)}


@pytest.mark.parametrize("done", ["approved", "pushed"])
def test_a_kept_plan_is_pushed_after_a_failed_rerun_only_once_approved_again(
    store: StateStore, tmp_path: Path, db_url: str, done: str
) -> None:
    settings = make_settings(tmp_path, db_url, apply_mode="approval")
    run = record_plan(store)
    account = MemoryAccount(START, reject={"103"})
    approve(store, run.run_id, ["102"] if done == "approved" else None, clock=TODAY)
    if done == "pushed":
        apply_run(store, run.run_id, account, settings, clock=TODAY)
    pushed_before = list(account.pushes)
    waiting = "102" if done == "approved" else "103"
    _fail_start(store)

    # The kept plan was made on inputs that run replaced: what is not
    # applied yet waits for a run of the day that succeeds or a new approval.
    with pytest.raises(SupersededPlanError) as refused:
        apply_run(store, run.run_id, account, settings, clock=AFTER_FAILURE)
    message = str(refused.value)
    assert f"run {run.run_id} cannot be applied" in message
    assert "failed at 2026-11-16 10:05 UTC" in message and FAILURE in message
    assert f"campaign(s) {waiting} are not applied yet" in message
    assert "`valuebid run --config FILE --run-date 2026-11-16` again" in message
    assert f"approve it again explicitly with `valuebid approve {run.run_id}" in (
        message
    )
    assert account.pushes == pushed_before
    # Approving another change leaves the one approved before the failure
    # waiting: each change is approved again by name, or all of them. The
    # approval says what it did and which earlier approvals still wait.
    one = approve(store, run.run_id, ["101"], clock=AFTER_FAILURE)
    # Once pushed, 101 needs no new approval: this call changes nothing.
    assert one.changed == ([] if done == "pushed" else ["101"])
    assert one.awaiting_renewal == [waiting]
    assert one.failed_at == FAILED_AT
    with pytest.raises(SupersededPlanError, match=rf"campaign\(s\) {waiting} are"):
        apply_run(store, run.run_id, account, settings, clock=AFTER_FAILURE)
    assert account.pushes == pushed_before
    approvals = {
        s.row.campaign_id: s.approved_at for s in store.stored_plan(run.run_id)
    }

    every = approve(store, run.run_id, clock=AFTER_FAILURE)
    report = apply_run(store, run.run_id, account, settings, clock=AFTER_FAILURE)

    assert every.renewed == [waiting]
    assert every.approved == (["103"] if done == "approved" else [])
    assert every.awaiting_renewal == []
    assert sorted(set(account.pushes)) == CHANGED
    assert waiting in report.pushed
    renewed = _approvals(store, run.run_id)
    assert renewed[waiting] != approvals[waiting]
    if done == "pushed":
        # The approvals of changes already applied are not rewritten.
        assert [renewed[c] for c in ("101", "102")] == [
            approvals[c] for c in ("101", "102")
        ]


def test_a_run_of_the_day_that_succeeds_releases_a_kept_plan(
    store: StateStore, tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(tmp_path, db_url, apply_mode="approval")
    run = record_plan(store)
    approve(store, run.run_id, ["102"], clock=TODAY)
    _fail_start(store)

    again = record_plan(store)

    assert (again.status, again.failed_attempt_error) == ("planned", None)
    account = MemoryAccount(START)
    report = apply_run(store, run.run_id, account, settings, clock=AFTER_FAILURE)
    assert account.pushes == ["102"] == report.pushed


def test_a_failed_start_of_a_day_without_a_run_records_nothing(
    store: StateStore,
) -> None:
    record_plan(store)
    assert _fail_start(store, RUN_DATE + dt.timedelta(days=1)) is None
    assert [r.run_date for r in store.list_runs()] == [RUN_DATE]


def _approved(store: StateStore, run_id: str) -> list[str]:
    return [s.row.campaign_id for s in store.stored_plan(run_id) if s.approved_at]


@pytest.mark.parametrize("stop", ["kill_switch", "stale plan", "model_gate"])
def test_approving_a_plan_a_stop_holds_back_records_nothing(
    store: StateStore, tmp_path: Path, db_url: str, stop: str
) -> None:
    settings = make_settings(tmp_path, db_url, apply_mode="approval")
    if stop == "kill_switch":
        settings = settings.model_copy(update={"kill_switch": True})
    run = record_plan(store)
    account = MemoryAccount(START)
    clock = TODAY
    if stop == "stale plan":
        clock = clock_at(RUN_DATE + dt.timedelta(days=15))

    def gate(record: object) -> str | None:
        return "lost to the baseline" if stop == "model_gate" else None

    with pytest.raises(ApplyStopped):
        approve_and_apply(
            store,
            run.run_id,
            None,
            settings,
            lambda: account,
            model_gate=gate,
            clock=clock,
        )

    assert _approved(store, run.run_id) == []
    assert store.get_run(run.run_id).status == "planned"  # type: ignore[union-attr]
    assert account.pushes == []


class _FailingPush(MemoryAccount):
    def apply(self, updates: object) -> list[UpdateOutcome]:
        raise ConnectionError("the API did not answer")


def test_a_push_failing_at_the_api_keeps_approvals_of_what_is_pending(
    store: StateStore, tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(tmp_path, db_url, apply_mode="approval")
    run = record_plan(store)
    failing = _FailingPush(START)

    with pytest.raises(ConnectionError):
        approve_and_apply(
            store, run.run_id, ["101", "102"], settings, lambda: failing, clock=TODAY
        )

    # Each approved change has its intent recorded, and only those.
    assert _approved(store, run.run_id) == ["101", "102"]
    changes = store.changes_of(run.run_id)
    assert sorted(changes) == ["101", "102"]
    assert {c.status for c in changes.values()} == {"pending"}
    assert store.get_run(run.run_id).status == "failed"  # type: ignore[union-attr]

    account = MemoryAccount(START)
    report = approve_and_apply(
        store, run.run_id, ["101", "102"], settings, lambda: account, clock=TODAY
    )
    assert sorted(account.pushes) == ["101", "102"]
    assert report.awaiting_approval == ["103"]
    assert {c.status for c in store.changes_of(run.run_id).values()} == {"applied"}
