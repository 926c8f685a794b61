"""Run the daily cycle, the value feed and retraining on their own cadences.

Each job has a crontab in the account's time zone, so "06:30" stays 06:30
local across daylight-saving changes. Jobs live in the state database, which
keeps their next run time across restarts: a run missed while the scheduler
was down happens once on restart if it is within the grace period
(``misfire_grace_seconds``), and is skipped with a warning if not. One job
runs at a time (one worker, one instance per job), so a long cycle never
overlaps the next one or a retraining.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from config import load_settings
from config.schema import Settings
from optimizer.alerts import alert_failure, alerts_from
from optimizer.masking import SecretMask, settings_secrets, without_secrets
from optimizer.state import StateStore, create_state_engine, state_url

logger = logging.getLogger(__name__)

JOB_CYCLE = "valuebid-daily-cycle"
JOB_VALUE_FEED = "valuebid-value-feed"
JOB_RETRAIN = "valuebid-retrain"
JOBS_TABLE = "scheduler_jobs"
#: The scheduler library's own loggers (its executor and job store are ours,
#: named "default"). The executor logs a failed job's exception, traceback
#: included, before our listener does.
_LIBRARY_LOGGERS = (
    "apscheduler.scheduler",
    "apscheduler.executors.default",
    "apscheduler.jobstores.default",
)


def daily_cycle_job(config_path: str) -> None:
    """Run the day's cycle; it applies in auto mode and waits for approval else."""
    from optimizer.cycle import run_cycle

    settings = load_settings(config_path)
    result = run_cycle(settings)
    logger.info("scheduled cycle recorded run %s", result.run.run_id)


def value_feed_job(config_path: str) -> None:
    """Send newly activated users' predicted values to Google (once each).

    Values are uploaded in auto mode and only counted in approval mode, as the
    cycle's own feed step does; without a ``feed:`` section nothing runs.
    While the values are held for a jump from the last successful cycle run,
    the job fails with the reason (and so alerts) and sends nothing.
    """
    from optimizer import days
    from optimizer.value_feed import feed_values

    settings = load_settings(config_path)
    if settings.feed is None:
        logger.info("no feed: section in %s; scheduled feed skipped", config_path)
        return
    send = settings.operations.apply_mode == "auto"
    report = feed_values(settings, now=days.utc_now(), send=send)
    logger.info(
        "scheduled feed %s: %s", "sent" if send else "counted", report.as_dict()
    )


def retrain_job(config_path: str) -> None:
    """Fit a new pLTV model; it replaces the current one only if it passes its gate."""
    from connectors.files import load_inputs
    from models.pltv import PLTVModel
    from models.registry import ModelRegistry
    from optimizer.days import account_today, start_of_day

    settings = load_settings(config_path)
    zone = settings.account.time_zone
    as_of = start_of_day(account_today(zone), zone)
    inputs = load_inputs(
        settings.data, currency=settings.account.currency, now=as_of, time_zone=zone
    )
    model = PLTVModel(max_train_users=settings.model.max_train_users).fit(
        inputs.users, inputs.revenue, as_of, inputs.events
    )
    promoted = ModelRegistry(settings.model.directory).register(model)
    logger.info(
        "retrained model %s: %s",
        model.version,
        "now current" if promoted else "kept aside, its gate failed",
    )


class _Scheduler(BackgroundScheduler):  # type: ignore[misc]
    """A background scheduler that stays stopped once shut down.

    The scheduler's loop can wake for one more pass just as ``shutdown``
    runs; that pass would hand a due job to the closed executor (losing the
    run) and reopen a database connection nobody closes. Skipping any pass
    after the stop, and disposing the job store's engine once the loop has
    ended, closes both.
    """

    def __init__(self, engine: Engine, masking: logging.Filter, **options: Any) -> None:
        super().__init__(**options)
        self._engine = engine
        self._masking = masking
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(masking)

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        wait: float | None = super()._process_jobs()
        return wait

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait=wait)
        self._engine.dispose()
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).removeFilter(self._masking)


@dataclass(frozen=True)
class ScheduledJob:
    """One recurring job: its id, what it calls, and when (crontab)."""

    job_id: str
    func: Callable[[str], None]
    crontab: str


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """The three cadences of the config."""
    schedule = settings.operations.schedule
    return [
        ScheduledJob(JOB_CYCLE, daily_cycle_job, schedule.cycle),
        ScheduledJob(JOB_VALUE_FEED, value_feed_job, schedule.value_feed),
        ScheduledJob(JOB_RETRAIN, retrain_job, schedule.retrain),
    ]


def trigger_for(crontab: str, settings: Settings) -> CronTrigger:
    """A cron trigger firing at ``crontab`` in the account's time zone."""
    return CronTrigger.from_crontab(
        crontab, timezone=ZoneInfo(settings.account.time_zone)
    )


def build_scheduler(
    settings: Settings,
    config_path: Path | str,
    *,
    jobs: Sequence[ScheduledJob] | None = None,
) -> BackgroundScheduler:
    """A paused scheduler holding the jobs, stored in the state database.

    A job already stored keeps its next run time (so a run missed while
    the scheduler was down is caught up, once); one whose crontab changed is
    rescheduled. Call ``resume()`` to let jobs run.

    Parameters
    ----------
    settings
        The config (time zone, cadences, grace, state database).
    config_path
        The config file each job reloads when it runs.
    jobs
        The jobs to schedule; the config's three cadences by default.
    """
    url = state_url(settings.state.directory, settings.state.url)
    StateStore(url).dispose()
    grace = settings.operations.schedule.misfire_grace_seconds
    engine = create_state_engine(url)
    scheduler = _Scheduler(
        engine,
        SecretMask(settings_secrets(settings)),
        timezone=ZoneInfo(settings.account.time_zone),
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": grace,
        },
    )
    scheduler.add_listener(_log_failures(settings), EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.start(paused=True)
    for job in jobs if jobs is not None else scheduled_jobs(settings):
        _install(scheduler, job, str(config_path), settings)
    return scheduler


def next_fire_times(
    settings: Settings, after: dt.datetime
) -> dict[str, dt.datetime | None]:
    """When each configured job fires next after ``after`` (account time zone)."""
    return {
        job.job_id: trigger_for(job.crontab, settings).get_next_fire_time(None, after)
        for job in scheduled_jobs(settings)
    }


def run_scheduler(config_path: Path) -> None:
    """Run the jobs in the foreground until SIGTERM or SIGINT.

    On either signal the scheduler stops taking jobs, lets the running one
    finish (an apply is never cut in half by a shutdown), and returns.
    """
    settings = load_settings(config_path)
    scheduler = build_scheduler(settings, config_path.resolve())
    stop = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        logger.info("%s received: stopping after the running job", name)
        stop.set()

    previous = {
        sig: signal.signal(sig, _request_stop)
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        scheduler.resume()
        for job in scheduler.get_jobs():
            logger.info("job %s next runs at %s", job.id, job.next_run_time)
        logger.info("scheduler started for account %s", settings.account.name)
        while not stop.wait(1.0):
            pass
    finally:
        scheduler.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger.info("scheduler stopped")


def _install(
    scheduler: BaseScheduler, job: ScheduledJob, config_path: str, settings: Settings
) -> None:
    trigger = trigger_for(job.crontab, settings)
    existing = scheduler.get_job(job.job_id)
    if existing is None:
        scheduler.add_job(
            job.func, trigger, id=job.job_id, name=job.job_id, args=[config_path]
        )
        return
    scheduler.modify_job(job.job_id, func=job.func, args=[config_path])
    if str(existing.trigger) != str(trigger):
        scheduler.reschedule_job(job.job_id, trigger=trigger)
        logger.info("job %s rescheduled to %s", job.job_id, job.crontab)


def _log_failures(settings: Settings) -> Callable[[JobExecutionEvent], None]:
    sink = alerts_from(settings.operations.alerts)

    def listener(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            logger.warning(
                "job %s missed its %s run (beyond the grace period): skipped",
                event.job_id,
                event.scheduled_run_time,
            )
            return
        logger.error(
            "%s",
            without_secrets(f"job {event.job_id} failed: {event.exception}", settings),
        )
        text = without_secrets(
            f"valuebid job {event.job_id} for {settings.account.name} failed: "
            f"{event.exception}",
            settings,
        )
        alert_failure(sink, event.exception, text)

    return listener
