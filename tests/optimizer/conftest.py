"""Fixtures of the optimizer tests: state databases, settings, plans, an
alert webhook on loopback, and a small seeded PLG world scored once per
session."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yaml

from config import load_settings
from config.loader import settings_from_mapping
from config.schema import Settings
from connectors.files import Inputs, load_inputs
from models.pltv import PLTVModel
from models.registry import ModelRegistry
from optimizer.apply import CampaignTarget
from optimizer.demo import build_demo
from optimizer.plan import PlanRow
from optimizer.scenarios.plg import build_plg
from optimizer.state import RunRecord, StateStore

ZONE = "Europe/Paris"
RUN_DATE = dt.date(2026, 11, 16)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state database URL: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[StateStore]:
    opened = StateStore(db_url)
    yield opened
    opened.dispose()


def make_settings(
    tmp_path: Path,
    db_url: str,
    *,
    google_ads: dict[str, Any] | None = None,
    markets: dict[str, Any] | None = None,
    **operations: Any,
) -> Settings:
    """Valid settings on ``db_url``; ``operations`` overrides that section.

    ``google_ads``, when given, is the config's ``google_ads:`` section;
    ``markets`` replaces the single market FR.
    """
    raw: dict[str, Any] = {
        "account": {"name": "Acme FR", "time_zone": ZONE, "currency": "EUR"},
        "data": {
            "users": "users.csv",
            "revenue": "revenue.csv",
            "campaign_stats": "stats.csv",
        },
        "markets": markets or {"FR": {"cac_max": 120.0}},
        "default_market": "FR",
        "state": {"directory": "state", "url": db_url},
        "model": {"directory": "models"},
        "operations": {"apply_mode": "auto", "lock_wait_seconds": 0, **operations},
    }
    if google_ads is not None:
        raw["google_ads"] = google_ads
    return settings_from_mapping(raw, source="test config", base_dir=tmp_path)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


def clock_at(day: dt.date, hour: int = 9) -> Callable[[], dt.datetime]:
    """A clock stopped at ``hour`` o'clock of ``day``, account time."""
    moment = dt.datetime.combine(day, dt.time(hour), ZoneInfo(ZONE)).astimezone(dt.UTC)
    return lambda: moment


def plan_row(
    campaign_id: str,
    *,
    strategy: str = "TARGET_ROAS",
    target_roas: float | None = None,
    target_cpa: float | None = None,
    action: str = "raise",
    new_troas: float | None = None,
    change_pct: float | None = None,
    market: str = "FR",
) -> PlanRow:
    """A plan row with only the fields the apply reads filled in."""
    return PlanRow(
        campaign_id=campaign_id,
        campaign_name=f"{market} | Search | {campaign_id}",
        market=market,
        current_strategy=strategy,
        current_target_cpa=target_cpa,
        current_target_roas=target_roas,
        current_roas_equivalent=target_roas,
        observed_roas=None,
        conversions_in_window=40.0,
        cost_in_window=1000.0,
        mean_value=None,
        paying_share=None,
        floor_break_even=None,
        floor_ltv_cac=None,
        floor_payback=None,
        floor_cac_cap=None,
        economic_troas=None,
        binding_constraint=None,
        action=action,
        new_troas=new_troas,
        change_pct=change_pct,
        guardrail=None,
        reason=f"test plan for {campaign_id}",
    )


#: The account before any run: one campaign on tCPA, three on tROAS.
START = {
    "101": CampaignTarget("101", "TARGET_CPA", None, 41.0),
    "102": CampaignTarget("102", "TARGET_ROAS", 2.5, None),
    "103": CampaignTarget("103", "TARGET_ROAS", 3.1, None),
    "104": CampaignTarget("104", "TARGET_ROAS", 1.8, None),
}

#: A plan moving three of them; 104 is held.
PLAN = [
    plan_row(
        "101",
        strategy="TARGET_CPA",
        target_cpa=41.0,
        action="migrate",
        new_troas=1.93,
        change_pct=None,
    ),
    plan_row("102", target_roas=2.5, action="raise", new_troas=2.875, change_pct=15.0),
    plan_row("103", target_roas=3.1, action="lower", new_troas=3.0, change_pct=-3.2),
    plan_row("104", target_roas=1.8, action="hold"),
]


def record_plan(
    store: StateStore,
    rows: list[PlanRow] | None = None,
    *,
    run_date: dt.date = RUN_DATE,
    data_through: dt.date | None = None,
    account: str = "Acme FR",
    ends: dict[str, dt.date] | None = None,
) -> RunRecord:
    """Record a cycle run with ``rows`` as its plan, as the cycle does.

    ``ends`` is the last day of each campaign's stats; without it the run
    records only the account's (``data_through``), as runs made before the
    days of each campaign were kept.
    """
    through = data_through or run_date - dt.timedelta(days=1)
    if ends:
        through = max(ends.values())
    inputs: dict[str, Any] = {
        "data_through": through.isoformat(),
        "rows": {"users": 10},
    }
    if ends is not None:
        inputs["data_through_by_campaign"] = {
            cid: day.isoformat() for cid, day in ends.items()
        }
    with store.transaction() as connection:
        return store.record_run(
            connection,
            account=account,
            run_date=run_date,
            mode="apply",
            inputs=inputs,
            model_version="pltv-test",
            plan_dir="/nonexistent",
            rows=PLAN if rows is None else rows,
            started_at=dt.datetime.now(dt.UTC),
        )


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, object]]
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.received.append(  # type: ignore[attr-defined]
            {
                "content_type": self.headers["Content-Type"],
                "body": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def webhook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def broken_demo(directory: Path, day: dt.date, hook: str) -> Path:
    """The demo of ``day`` alerting ``hook``, its campaign stats without cost."""
    config = build_demo(directory, day).config
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw.setdefault("operations", {})["alerts"] = {"webhook_url": hook}
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    stats = directory / "data" / "campaign_stats.csv"
    frame = pd.read_csv(stats, dtype="string", keep_default_na=False)
    frame.drop(columns="cost").to_csv(stats, index=False)
    return config


def webhook_url(server: ThreadingHTTPServer) -> str:
    """The URL of the webhook ``server`` answers, with a path like Slack's."""
    return f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000"


PLG_RUN_DATE = dt.date(2026, 12, 1)


@dataclass(frozen=True)
class PLGWorld:
    """The PLG scenario's files, settings, inputs and scores as of ``PLG_RUN_DATE``."""

    directory: Path
    config: Path
    settings: Settings
    inputs: Inputs
    scores: pd.DataFrame
    as_of: pd.Timestamp
    truth: pd.DataFrame


def load_plg_inputs(settings: Settings) -> Inputs:
    return load_inputs(settings.data, currency=settings.account.currency)


@pytest.fixture(scope="session")
def plg_world(tmp_path_factory: pytest.TempPathFactory) -> PLGWorld:
    directory = tmp_path_factory.mktemp("plg")
    files = build_plg(directory, PLG_RUN_DATE, seed=11, scale=0.5)
    settings = load_settings(files.config)
    inputs = load_plg_inputs(settings)
    zone = ZoneInfo(settings.account.time_zone)
    as_of = pd.Timestamp(dt.datetime.combine(PLG_RUN_DATE, dt.time(), zone)).tz_convert(
        "UTC"
    )
    model = PLTVModel().fit(inputs.users, inputs.revenue, as_of, inputs.events)
    ModelRegistry(settings.model.directory).register(model)
    scores = model.predict(inputs.users, inputs.revenue, as_of, inputs.events)
    scores["value"] = scores["pltv_365"] * (settings.economics.gross_margin or 1.0)
    return PLGWorld(
        directory, files.config, settings, inputs, scores, as_of, files.truth
    )
