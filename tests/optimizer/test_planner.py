"""The planner on the seeded PLG scenario: facts, guardrails and the plan."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from config import Settings
from config.loader import settings_from_mapping
from config.schema import GuardrailSettings, MarketSettings
from connectors.files import Inputs
from optimizer.economics import (
    FLOOR_LABELS,
    FLOORS,
    LTV_CAC,
    CampaignEconomics,
    Ratios,
)
from optimizer.exceptions import PlanningError
from optimizer.plan import PlanRow, read_plan, write_plan
from optimizer.planner import (
    CampaignFacts,
    campaign_countries,
    gather_facts,
    plan_campaigns,
    plan_row,
    user_cac_max,
)
from optimizer.policy import (
    BELOW_FLOOR,
    COOLDOWN,
    GUARDRAILS,
    HOLD,
    KILL_SWITCH,
    LEARNING,
    LOWER,
    MIGRATE,
    STALE_DATA,
    STEP_LIMIT,
    TARGET_ROAS,
    VOLUME,
    CampaignSnapshot,
    Freezes,
)
from optimizer.state import StateStore, target_changes

from .conftest import PLG_RUN_DATE as RUN_DATE
from .conftest import PLGWorld


def _plan(
    world: PLGWorld,
    *,
    settings: Settings | None = None,
    run_date: dt.date = RUN_DATE,
    last_changes: dict[str, dt.date] | None = None,
    freezes: Freezes | None = None,
) -> list[PlanRow]:
    return plan_campaigns(
        settings or world.settings,
        world.inputs,
        world.scores,
        as_of=world.as_of,
        run_date=run_date,
        last_changes=last_changes or {},
        freezes=freezes,
    )


def _by_name(rows: list[PlanRow]) -> dict[str, PlanRow]:
    return {row.campaign_name: row for row in rows}


def test_every_row_carries_its_floors_binding_constraint_and_reasons(
    plg_world: PLGWorld,
) -> None:
    rows = _plan(plg_world)

    assert len(rows) == 20
    assert [r.campaign_id for r in rows] == sorted(r.campaign_id for r in rows)
    for row in rows:
        assert isinstance(row.reason, str) and row.reason
        assert row.guardrail is None or row.guardrail in GUARDRAILS
        if row.economic_troas is None:
            continue
        floors = (
            row.floor_break_even,
            row.floor_ltv_cac,
            row.floor_payback,
            row.floor_cac_cap,
        )
        assert all(f is not None and f > 0 for f in floors)
        assert row.binding_constraint in FLOOR_LABELS
        assert row.binding_reason
        assert row.cac_max is not None and row.paying_share is not None
        assert row.cpa_cap == pytest.approx(row.cac_max * row.paying_share, rel=1e-3)


def test_planning_twice_on_the_same_inputs_gives_the_same_plan(
    plg_world: PLGWorld,
) -> None:
    assert _plan(plg_world) == _plan(plg_world)


def test_the_scenario_shows_its_guardrails(plg_world: PLGWorld) -> None:
    """DE Display is learning; ES YouTube has a sliver of the traffic; the
    tCPA campaigns with volume migrate at their observed ROAS."""
    rows = _by_name(_plan(plg_world))

    assert rows["DE | Display | Prospecting"].guardrail == LEARNING
    assert rows["ES | YouTube | Awareness"].guardrail == VOLUME
    generic = rows["FR | Search | Generic"]
    assert generic.action == MIGRATE
    assert generic.campaign_type == "SEARCH"
    assert rows["FR | YouTube | Awareness"].campaign_type == "VIDEO"
    assert rows["FR | YouTube | Awareness"].volume_required == 20
    assert generic.volume_required == 15


def test_the_paying_share_is_observed_on_users_who_had_time_to_pay(
    plg_world: PLGWorld,
) -> None:
    """Recompute FR Search Generic's paying share by hand from the tables."""
    world = plg_world
    facts = {
        f.snapshot.campaign_id: f
        for f in gather_facts(
            world.settings,
            world.inputs,
            world.scores,
            as_of=world.as_of,
            run_date=RUN_DATE,
            last_changes={},
        )
    }
    users = world.inputs.users
    acquired = users["activated_at"].fillna(users["signup_at"])
    lag = world.settings.economics.paying_lag_days
    cohort = users[
        (users["campaign_id"] == "2001")
        & (acquired <= world.as_of - pd.Timedelta(days=lag))
        & (acquired > world.as_of - pd.Timedelta(days=365))
    ]
    paid = cohort["user_id"].isin(world.inputs.revenue["user_id"])

    economics = facts["2001"].economics
    assert economics is not None
    assert economics.paying_share == pytest.approx(paid.mean())
    assert 0.05 < economics.paying_share < 0.9


def test_segment_benchmarks_blend_over_paying_customers() -> None:
    """DE: freelancer 150, 50+ employees 900, others the market's 300.
    Paying customers 2 freelancers, 1 SMB, 1 50+: (150+150+300+900)/4 = 375."""
    market = MarketSettings(
        cac_max=300.0,
        cac_max_by_segment={"freelancer": 150.0, "50+ employees": 900.0},
        cac_max_by_product_line={"payroll": 200.0},
    )
    users = pd.DataFrame(
        {
            "segment": ["freelancer", "freelancer", "SMB", "50+ employees", "SMB"],
            "product_line": ["books", "books", "books", "books", "payroll"],
        }
    )
    caps = user_cac_max(market, users)

    assert caps.tolist() == [150.0, 150.0, 300.0, 900.0, 200.0]
    assert caps.iloc[:4].mean() == 375.0


def test_kill_switch_and_model_gate_hold_every_campaign(plg_world: PLGWorld) -> None:
    killed = plg_world.settings.model_copy(update={"kill_switch": True})
    assert {r.guardrail for r in _plan(plg_world, settings=killed)} == {KILL_SWITCH}
    gate = Freezes(model_gate_failed="the new model failed its holdout gate")
    rows = _plan(plg_world, freezes=gate)
    assert {r.action for r in rows} == {HOLD}


def test_stale_stats_freeze_only_markets_that_allow_less(plg_world: PLGWorld) -> None:
    """Stats end the day before RUN_DATE; planning 4 days later they are 3
    days old. The default allows 2; FR is given 5 in the config."""
    raw = plg_world.settings.model_dump(mode="json")
    raw["markets"]["FR"]["guardrails"] = {"max_data_age_days": 5}
    settings = settings_from_mapping(raw, source="test", base_dir=plg_world.directory)

    rows = _plan(plg_world, settings=settings, run_date=RUN_DATE + dt.timedelta(days=4))

    for row in rows:
        if row.market == "FR":
            assert row.guardrail != STALE_DATA
        elif row.economic_troas is not None:
            assert row.guardrail == STALE_DATA, row


def _stats_cut(world: PLGWorld, stop: dict[str, dt.date]) -> Inputs:
    """The world's inputs with each listed campaign's stats ending on its day."""
    stats = world.inputs.campaign_stats
    ends = stats["campaign_id"].astype(str).map(stop)
    cut = pd.to_datetime(ends).to_numpy()
    keep = ends.isna().to_numpy() | (stats["date"].to_numpy() <= cut)
    return replace(world.inputs, campaign_stats=stats[keep].reset_index(drop=True))


def _plan_on(world: PLGWorld, inputs: Inputs) -> list[PlanRow]:
    return plan_campaigns(
        world.settings,
        inputs,
        world.scores,
        as_of=world.as_of,
        run_date=RUN_DATE,
        last_changes={},
    )


def test_a_market_whose_stats_stopped_is_held_while_another_runs_on(
    plg_world: PLGWorld,
) -> None:
    """DE's export stops ten days before the run; the other markets' rows run
    to the day before it, which must not hide DE's gap."""
    rows = _plan(plg_world)
    stopped = RUN_DATE - dt.timedelta(days=10)
    german = {r.campaign_id for r in rows if r.market == "DE"}

    cut = _plan_on(plg_world, _stats_cut(plg_world, dict.fromkeys(german, stopped)))

    for row in cut:
        if row.market == "DE":
            assert row.action == HOLD and row.guardrail == STALE_DATA, row
            assert f"campaign stats of market DE end on {stopped}" in row.reason
            assert "guardrails.max_data_age_days" in row.reason
        else:
            assert row.guardrail != STALE_DATA, row
    assert {r.campaign_id for r in cut if r.guardrail == STALE_DATA} == german


def test_a_campaign_whose_stats_stopped_is_held_alone_in_its_market(
    plg_world: PLGWorld,
) -> None:
    """Its cost is missing since its rows stopped while its users still bring
    value: held, with the rest of its market planned as before."""
    rows = {r.campaign_id: r for r in _plan(plg_world)}
    moving = sorted(cid for cid, r in rows.items() if r.action != HOLD)
    chosen = rows[moving[0]]
    stopped = RUN_DATE - dt.timedelta(days=6)

    cut = {
        r.campaign_id: r
        for r in _plan_on(
            plg_world, _stats_cut(plg_world, {chosen.campaign_id: stopped})
        )
    }

    held = cut[chosen.campaign_id]
    assert held.action == HOLD and held.guardrail == STALE_DATA, held
    assert (
        f"campaign stats of campaign {chosen.campaign_id} end on {stopped}, 5 day(s) "
        f"before yesterday, while market {chosen.market}'s run to "
        f"{RUN_DATE - dt.timedelta(days=1)}"
    ) in held.reason
    assert "at most 2 allowed (guardrails.max_data_age_days)" in held.reason
    for cid, row in cut.items():
        if cid != chosen.campaign_id:
            assert row == rows[cid]


def test_a_campaign_two_markets_patterns_match_stops_the_plan(
    plg_world: PLGWorld,
) -> None:
    """A second market whose pattern also takes FR's Search campaigns: which
    market is listed first must not choose their economics."""
    raw = plg_world.settings.model_dump(mode="json")
    fr_pattern = raw["markets"]["FR"]["campaign_name_pattern"]
    de_pattern = raw["markets"]["DE"]["campaign_name_pattern"]
    raw["markets"]["DE"]["campaign_name_pattern"] = f"{de_pattern}|^FR \\| Search"
    settings = settings_from_mapping(raw, source="test", base_dir=plg_world.directory)
    fr_search = min(
        (r for r in _plan(plg_world) if r.campaign_name.startswith("FR | Search")),
        key=lambda r: r.campaign_id,
    )

    with pytest.raises(PlanningError) as refused:
        _plan(plg_world, settings=settings)

    message = str(refused.value)
    assert (
        f"campaign {fr_search.campaign_id} ({fr_search.campaign_name!r}) matches "
        f"the campaign_name_pattern of markets FR ({fr_pattern!r}) and DE "
        f"({settings.markets['DE'].campaign_name_pattern!r})"
    ) in message


def test_cooldown_reads_the_last_applied_change_from_the_state_store(
    plg_world: PLGWorld, tmp_path: Path
) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    rows = _plan(plg_world)
    with store.transaction() as connection:
        record = store.record_run(
            connection,
            account="plg",
            run_date=RUN_DATE - dt.timedelta(days=3),
            mode="apply",
            inputs={},
            model_version=None,
            plan_dir=str(tmp_path),
            rows=rows,
            started_at=dt.datetime.now(dt.UTC),
        )
        connection.execute(
            sa.insert(target_changes).values(
                run_id=record.run_id,
                campaign_id="2001",
                applied_at=dt.datetime(2026, 11, 28, 6, tzinfo=dt.UTC),
                old_strategy="TARGET_CPA",
                old_target_cpa=70.0,
                new_target_roas=3.0,
                status="applied",
            )
        )
    last = store.last_change_dates()
    store.dispose()

    after = {r.campaign_id: r for r in _plan(plg_world, last_changes=last)}

    assert after["2001"].guardrail == COOLDOWN
    assert "3 day(s) ago" in after["2001"].reason
    assert after["2011"].guardrail != COOLDOWN


def test_plan_files_round_trip_the_new_columns(
    plg_world: PLGWorld, tmp_path: Path
) -> None:
    rows = _plan(plg_world)
    write_plan(rows, tmp_path, {"run_id": "t"})

    assert read_plan(tmp_path) == rows


def test_old_plan_rows_without_new_columns_still_read() -> None:
    row = PlanRow(
        "1",
        "x",
        "US",
        "TARGET_CPA",
        10.0,
        None,
        2.0,
        2.1,
        20,
        100.0,
        5.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        "break_even",
        HOLD,
        None,
        None,
        None,
        "r",
    )
    assert replace(row).campaign_type == "OTHER"
    assert set(FLOORS) <= set(FLOOR_LABELS)


def test_campaign_country_is_the_most_common_one_ties_to_the_first() -> None:
    users = pd.DataFrame(
        {
            "campaign_id": ["a", "a", "a", "b", "b", "c", None],
            "country": ["FR", "DE", "FR", "ES", "DE", None, "US"],
        }
    )
    assert campaign_countries(users) == {"a": "FR", "b": "DE"}


def _brand_row(observed_roas: float) -> PlanRow:
    """UK | Search | Brand as the PLG demo (seed 7) plans it: tROAS 4.00, 48
    conversions, mean value 61.57 EUR, a third of activations paying, value
    growing 2.126x to year 3, so the LTV/CAC floor 3 / 2.126 = 1.41 binds
    (the CAC cap gives 61.57 / (330 x 0.3333) = 0.56)."""
    snapshot = CampaignSnapshot(
        campaign_id="2030",
        strategy=TARGET_ROAS,
        target_cpa=None,
        target_roas=4.0,
        observed_roas=observed_roas,
        mean_value=61.5685,
        conversions_in_window=48,
        campaign_type="SEARCH",
    )
    economics = CampaignEconomics(61.5685, 2.1262, 1.0, 0.3333, 330.0, "GB", "EUR")
    facts = CampaignFacts(snapshot, "UK | Search | Brand", "GB", 1667.8, economics)
    market = MarketSettings(cac_max=330.0, troas_min=0.5, troas_max=20.0)
    return plan_row(facts, market, GuardrailSettings(), Ratios(), Freezes())


def test_a_campaign_that_earns_its_target_steps_down_and_says_why() -> None:
    """Observed 2.03 against the target 1.41: the tROAS 4.00 asks more than
    the economics need, so one 15 % step down to 3.40 is safe."""
    row = _brand_row(2.0304)

    assert row.binding_constraint == LTV_CAC
    assert row.economic_troas == pytest.approx(1.411, abs=1e-3)
    assert (row.action, row.new_troas, row.guardrail) == (LOWER, 3.4, STEP_LIMIT)
    assert "observed ROAS 2.03 already meets that target" in row.reason


def test_a_campaign_under_its_target_keeps_its_troas_and_says_why() -> None:
    """The same campaign returning 1.20, under the target 1.41: lowering 4.00
    would let Google bid more on a campaign already short of the rule."""
    row = _brand_row(1.2)

    assert (row.action, row.new_troas, row.change_pct) == (HOLD, None, None)
    assert row.guardrail == BELOW_FLOOR
    assert row.guardrail in GUARDRAILS
    assert (
        "observed ROAS 1.20 is under its economic target 1.41 set by "
        "LTV/CAC target" in row.reason
    )
