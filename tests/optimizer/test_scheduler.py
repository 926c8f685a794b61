"""The scheduler fires each job at its local time, once, and stops cleanly.

Time is never waited for: fire times are computed from the triggers, and a
run that came due while the scheduler was down is simulated by storing a
past next run time, as the job store would hold it after a downtime.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from config import ConfigError, load_settings
from config.schema import Settings
from optimizer.days import account_today
from optimizer.demo import DEMO_TIME_ZONE
from optimizer.scheduler import (
    JOB_CYCLE,
    JOB_RETRAIN,
    JOB_VALUE_FEED,
    JOBS_TABLE,
    ScheduledJob,
    build_scheduler,
    daily_cycle_job,
    next_fire_times,
    trigger_for,
    value_feed_job,
)
from optimizer.state import StateStore, create_state_engine, state_url
from tests.optimizer.conftest import ZONE, broken_demo, make_settings, webhook_url
from tests.optimizer.scheduled import fail_quoting_the_login, record_fire

PARIS = ZoneInfo(ZONE)


@pytest.mark.parametrize(
    ("after", "expected_utc"),
    [
        # Winter: Paris is UTC+1, so 06:30 local is 05:30 UTC.
        (dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC), "2026-11-17T05:30:00"),
        # The night clocks go forward (29 March 2026): 06:30 CEST is 04:30 UTC.
        (dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC), "2026-03-29T04:30:00"),
        # The night clocks go back (25 October 2026): 06:30 CET is 05:30 UTC.
        (dt.datetime(2026, 10, 24, 12, 0, tzinfo=dt.UTC), "2026-10-25T05:30:00"),
    ],
)
def test_the_cycle_fires_at_the_configured_local_time(
    tmp_path: Path, after: dt.datetime, expected_utc: str
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 's.db'}")
    fire = next_fire_times(settings, after)[JOB_CYCLE]
    assert fire is not None
    assert fire.astimezone(PARIS).strftime("%H:%M") == "06:30"
    assert fire.astimezone(dt.UTC).replace(tzinfo=None).isoformat() == expected_utc


def test_each_cadence_has_its_own_trigger(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 's.db'}",
        schedule={
            "cycle": "0 7 * * *",
            "value_feed": "15 */4 * * *",
            "retrain": "0 2 * * mon",
        },
    )
    after = dt.datetime(2026, 11, 18, 12, 0, tzinfo=PARIS)  # a Wednesday
    fires = {
        k: v.astimezone(PARIS) for k, v in next_fire_times(settings, after).items() if v
    }
    assert fires[JOB_CYCLE] == dt.datetime(2026, 11, 19, 7, 0, tzinfo=PARIS)
    assert fires[JOB_VALUE_FEED] == dt.datetime(2026, 11, 18, 12, 15, tzinfo=PARIS)
    assert fires[JOB_RETRAIN] == dt.datetime(2026, 11, 23, 2, 0, tzinfo=PARIS)


def test_jobs_are_stored_in_the_state_database_one_at_a_time(
    tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(tmp_path, db_url)
    scheduler = build_scheduler(settings, tmp_path / "valuebid.yaml")
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {JOB_CYCLE, JOB_VALUE_FEED, JOB_RETRAIN}
        cycle = jobs[JOB_CYCLE]
        assert cycle.func_ref == "optimizer.scheduler:daily_cycle_job"
        assert (cycle.max_instances, cycle.coalesce) == (1, True)
        assert cycle.misfire_grace_time == 3600
        assert cycle.next_run_time.astimezone(PARIS).strftime("%H:%M") == "06:30"
    finally:
        scheduler.shutdown()

    # A restart finds the same three jobs, not three more.
    again = build_scheduler(settings, tmp_path / "valuebid.yaml")
    try:
        assert len(again.get_jobs()) == 3
    finally:
        again.shutdown()


def _leave_job_as_after_downtime(
    settings: Settings, job: ScheduledJob, config: Path, next_run: dt.datetime
) -> None:
    """Store ``job`` as a scheduler stopped before ``next_run`` left it."""
    url = state_url(settings.state.directory, settings.state.url)
    StateStore(url).dispose()
    owner = BackgroundScheduler(timezone=PARIS)
    jobstore = SQLAlchemyJobStore(engine=create_state_engine(url), tablename=JOBS_TABLE)
    jobstore.start(owner, "default")
    grace = settings.operations.schedule.misfire_grace_seconds
    jobstore.add_job(
        Job(
            owner,
            id=job.job_id,
            name=job.job_id,
            func=job.func,
            trigger=trigger_for(job.crontab, settings),
            args=[str(config)],
            kwargs={},
            executor="default",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=grace,
            next_run_time=next_run,
        )
    )
    jobstore.shutdown()


def _run_after_downtime(
    settings: Settings, config: Path, minutes_ago: int
) -> tuple[str, dt.datetime | None]:
    """A daily job came due ``minutes_ago``, three days into a downtime; restart."""
    fire = dt.datetime.now(PARIS) - dt.timedelta(minutes=minutes_ago)
    job = ScheduledJob(JOB_CYCLE, record_fire, f"{fire.minute} {fire.hour} * * *")
    last_seen = fire.replace(second=0, microsecond=0) - dt.timedelta(days=3)
    _leave_job_as_after_downtime(settings, job, config, last_seen)

    after = build_scheduler(settings, config, jobs=[job])
    outcome: list[str] = []
    done = threading.Event()

    def listen(event: JobExecutionEvent) -> None:
        outcome.append(
            {EVENT_JOB_EXECUTED: "ran", EVENT_JOB_MISSED: "missed"}.get(
                event.code, "failed"
            )
        )
        done.set()

    after.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    try:
        after.resume()
        assert done.wait(timeout=60), "the due job was neither run nor missed"
        next_run = after.get_job(JOB_CYCLE).next_run_time
    finally:
        after.shutdown(wait=True)
    return outcome[0], next_run


def test_runs_missed_while_down_fire_once_within_the_grace_period(
    tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(tmp_path, db_url)
    config = tmp_path / "valuebid.yaml"

    outcome, next_run = _run_after_downtime(settings, config, minutes_ago=10)

    assert outcome == "ran"
    fired = Path(f"{config}.fired").read_text(encoding="utf-8").splitlines()
    assert len(fired) == 1
    assert next_run is not None
    assert next_run > dt.datetime.now(PARIS)
    assert next_run - dt.datetime.now(PARIS) < dt.timedelta(days=1)


def test_runs_missed_beyond_the_grace_period_are_skipped(
    tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(tmp_path, db_url, schedule={"misfire_grace_seconds": 600})
    config = tmp_path / "valuebid.yaml"

    outcome, _ = _run_after_downtime(settings, config, minutes_ago=30)

    assert outcome == "missed"
    assert not Path(f"{config}.fired").exists()


def test_numeric_weekdays_are_refused_because_cron_dialects_disagree(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"operations.schedule.retrain: weekday"):
        make_settings(tmp_path, "sqlite://", schedule={"retrain": "0 2 * * 1"})


def test_the_scheduled_feed_without_a_feed_section_does_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _write_config(tmp_path)
    with caplog.at_level(logging.INFO, logger="optimizer.scheduler"):
        value_feed_job(str(config))
    assert "no feed: section" in caplog.text


def _write_config(tmp_path: Path) -> Path:
    config = tmp_path / "valuebid.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "account": {"name": "Acme FR", "time_zone": ZONE, "currency": "EUR"},
                "data": {
                    "users": "users.csv",
                    "revenue": "revenue.csv",
                    "campaign_stats": "stats.csv",
                },
                "markets": {"FR": {"cac_max": 120.0}},
                "state": {"directory": "state"},
            }
        ),
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_schedule_command_stops_cleanly_on_a_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    config = _write_config(tmp_path)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from optimizer.cli import main; main()",
            "schedule",
            "--config",
            str(config),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "scheduler started" in line:
            break
    process.send_signal(stop)
    _, rest = process.communicate(timeout=60)

    assert process.returncode == 0, "".join(seen) + rest
    assert f"{stop.name} received" in rest
    assert "scheduler stopped" in rest
    assert (tmp_path / "state" / "state.db").exists()


def test_a_failed_daily_cycle_is_announced_once_by_the_cycle(
    tmp_path: Path, webhook: ThreadingHTTPServer
) -> None:
    day = account_today(DEMO_TIME_ZONE)
    config = broken_demo(tmp_path, day, webhook_url(webhook))
    settings = load_settings(config)
    job = ScheduledJob(JOB_CYCLE, daily_cycle_job, "30 6 * * *")
    scheduler = build_scheduler(settings, config, jobs=[job])
    failed = threading.Event()
    scheduler.add_listener(lambda event: failed.set(), EVENT_JOB_ERROR)
    try:
        scheduler.modify_job(JOB_CYCLE, next_run_time=dt.datetime.now(PARIS))
        scheduler.resume()
        assert failed.wait(timeout=120), "the daily cycle did not fail"
    finally:
        scheduler.shutdown(wait=True)

    [alert] = webhook.received  # type: ignore[attr-defined]
    text = alert["body"]["text"]
    assert text.startswith(
        f"valuebid run of {day} for {settings.account.name} failed: ContractError: "
    )
    assert "lacks required column(s) cost" in text
    assert "/services/" not in text


def test_a_failed_job_is_logged_and_announced_without_the_configs_secrets(
    tmp_path: Path,
    db_url: str,
    webhook: ThreadingHTTPServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from optimizer.scheduler import _log_failures

    url = webhook_url(webhook)
    settings = make_settings(tmp_path, db_url, alerts={"webhook_url": url})
    error = RuntimeError(f"could not reach {url}")
    event = JobExecutionEvent(
        EVENT_JOB_ERROR,
        JOB_VALUE_FEED,
        "default",
        dt.datetime.now(dt.UTC),
        exception=error,
    )

    with caplog.at_level(logging.ERROR, logger="optimizer"):
        _log_failures(settings)(event)

    [line] = [r.getMessage() for r in caplog.records if r.name.startswith("optimizer")]
    assert line == f"job {JOB_VALUE_FEED} failed: could not reach ***"
    [alert] = webhook.received  # type: ignore[attr-defined]
    assert url not in alert["body"]["text"]


def test_a_failed_jobs_traceback_is_logged_without_the_login_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = ("dev-token-4141", "client-secret-4242", "1//refresh-4343")
    (tmp_path / "google-ads.yaml").write_text(
        yaml.safe_dump(
            {
                "developer_token": secrets[0],
                "client_id": "client-id.apps.example",
                "client_secret": secrets[1],
                "refresh_token": secrets[2],
            }
        ),
        encoding="utf-8",
    )
    config = _write_config(tmp_path)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["google_ads"] = {
        "customer_ids": ["123-456-7890"],
        "credentials_file": "google-ads.yaml",
    }
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    job = ScheduledJob(JOB_CYCLE, fail_quoting_the_login, "30 6 * * *")
    scheduler = build_scheduler(load_settings(config), config, jobs=[job])
    failed = threading.Event()
    scheduler.add_listener(lambda event: failed.set(), EVENT_JOB_ERROR)

    with caplog.at_level(logging.INFO):
        try:
            scheduler.modify_job(JOB_CYCLE, next_run_time=dt.datetime.now(PARIS))
            scheduler.resume()
            assert failed.wait(timeout=60), "the job did not fail"
        finally:
            scheduler.shutdown(wait=True)

    # The library's own line keeps its traceback, masked like ours.
    [library] = [r for r in caplog.records if "raised an exception" in r.getMessage()]
    assert library.name.startswith("apscheduler.")
    assert "Traceback" in caplog.text
    assert "RuntimeError: login refused for *** / *** / ***" in caplog.text
    assert f"job {JOB_CYCLE} failed: login refused for ***" in caplog.text
    assert not any(secret in caplog.text for secret in secrets)
