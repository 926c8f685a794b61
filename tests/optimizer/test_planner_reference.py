"""The planner's grouped measurements agree with measuring one campaign at a time.

:mod:`tests.optimizer.reference_planner` measures each campaign straight from
the definitions; the planner measures all campaigns in a few grouped passes.
Both run here on the PLG world and on variants of its settings and scores
that reach every branch: segment and product-line benchmarks, a configured
paying share, a payback period beyond a year, per-market windows, users
left unscored and campaigns with no activation in their window.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from config.loader import settings_from_mapping
from config.schema import Settings
from optimizer.planner import CampaignFacts, gather_facts

from .conftest import PLG_RUN_DATE as RUN_DATE
from .conftest import PLGWorld
from .reference_planner import reference_gather_facts


def _settings(world: PLGWorld, change: dict[str, Any]) -> Settings:
    raw = yaml.safe_load(world.config.read_text(encoding="utf-8"))
    for path, value in change.items():
        node = raw
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = copy.deepcopy(value)
    return settings_from_mapping(raw, source=world.config, base_dir=world.config.parent)


def _flat(facts: list[CampaignFacts]) -> list[dict[str, Any]]:
    """Each fact as one level of ``section.field`` keys (approx needs flat)."""
    flat = []
    for fact in facts:
        row: dict[str, Any] = {}
        for key, value in dataclasses.asdict(fact).items():
            if isinstance(value, dict):
                row.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                row[key] = value
        flat.append(row)
    return flat


def _assert_same(got: list[CampaignFacts], want: list[CampaignFacts]) -> None:
    assert [f.snapshot.campaign_id for f in got] == [
        f.snapshot.campaign_id for f in want
    ]
    for mine, theirs in zip(_flat(got), _flat(want), strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value, rel=1e-9, nan_ok=True), (
                    mine["snapshot.campaign_id"],
                    key,
                )
            else:
                assert mine[key] == value, (mine["snapshot.campaign_id"], key)


VARIANTS: dict[str, dict[str, Any]] = {
    "as built": {},
    "segment and product-line benchmarks": {
        "markets.FR.cac_max_by_segment": {"freelancer": 90.0, "50+ employees": 700.0},
        "markets.US.cac_max_by_product_line": {"pro": 40.0},
    },
    "configured paying share": {"economics.paying_share": 0.3},
    "payback beyond a year": {"economics.payback_months": 30},
    "payback within a year": {"economics.payback_months": 6},
    "per-market windows": {
        "markets.DE.guardrails": {
            "observation_window_days": 60,
            "conversion_lag_days": 3,
        },
        "guardrails.min_volume": {
            "SEARCH": {"conversions": 40, "window_days": 14},
            "OTHER": {"conversions": 5, "window_days": 45},
        },
    },
    "three-year horizon": {"economics.ltv_horizon_days": 1095},
}


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_grouped_measures_match_the_one_campaign_definition(
    plg_world: PLGWorld, variant: str
) -> None:
    settings = _settings(plg_world, VARIANTS[variant])
    args = (settings, plg_world.inputs, plg_world.scores)
    kwargs: dict[str, Any] = {
        "as_of": plg_world.as_of,
        "run_date": RUN_DATE,
        "last_changes": {"2001": RUN_DATE.replace(day=1)},
    }
    got = gather_facts(*args, **kwargs)
    assert any(fact.economics is not None for fact in got)
    _assert_same(got, reference_gather_facts(*args, **kwargs))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_they_agree_when_scores_cover_only_some_users(
    plg_world: PLGWorld, seed: int
) -> None:
    """Unscored users drop out; whole campaigns may lose every activation."""
    rng = np.random.default_rng(seed)
    scores = plg_world.scores
    campaigns = plg_world.inputs.users["campaign_id"].dropna().unique()
    dropped = set(rng.choice(campaigns, size=3, replace=False))
    users = plg_world.inputs.users.set_index("user_id")["campaign_id"]
    kept = ~scores["user_id"].map(users).isin(dropped)
    kept &= pd.Series(rng.random(len(scores)) < 0.6, index=scores.index)
    part = scores[kept].reset_index(drop=True)
    if seed == 2 and "paying_probability" in part:
        part = part.drop(columns="paying_probability")
    kwargs: dict[str, Any] = {
        "as_of": plg_world.as_of,
        "run_date": RUN_DATE,
        "last_changes": {},
    }
    got = gather_facts(plg_world.settings, plg_world.inputs, part, **kwargs)
    assert any(fact.economics is None for fact in got)
    _assert_same(
        got,
        reference_gather_facts(plg_world.settings, plg_world.inputs, part, **kwargs),
    )


def test_they_agree_on_predicted_paying_shares_and_product_lines(
    plg_world: PLGWorld,
) -> None:
    """A model's paying probability (some missing) and a product-line column."""
    rng = np.random.default_rng(7)
    scores = plg_world.scores.copy()
    chance = rng.uniform(0.0, 0.6, len(scores))
    chance[rng.random(len(scores)) < 0.3] = np.nan
    scores["paying_probability"] = chance
    users = plg_world.inputs.users.copy()
    users["product_line"] = pd.array(
        rng.choice(["pro", "team", "free"], len(users)), dtype="string"
    )
    inputs = dataclasses.replace(plg_world.inputs, users=users)
    settings = _settings(
        plg_world,
        {
            "markets.US.cac_max_by_product_line": {"pro": 40.0, "team": 900.0},
            "markets.DE.cac_max_by_product_line": {"free": 10.0},
        },
    )
    kwargs: dict[str, Any] = {
        "as_of": plg_world.as_of,
        "run_date": RUN_DATE,
        "last_changes": {},
    }
    got = gather_facts(settings, inputs, scores, **kwargs)
    want = reference_gather_facts(settings, inputs, scores, **kwargs)
    shares = {f.economics.paying_share for f in got if f.economics is not None}
    assert len(shares) > 3
    _assert_same(got, want)
