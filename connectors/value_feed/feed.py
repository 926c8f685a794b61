"""Decide which activation values to send or restate, send them once, record all.

One run: shape the values, read the ledger, pick the conversions that are due
(first sends, retries, restatements), then per batch claim them in the ledger,
upload through the sink and record each row's outcome. Dry run (the default)
stops after picking and records only the run's counts.

Timing rules (Google Ads API, "Upload offline conversions" and "Upload
conversion adjustments" guides): a click under 6 hours old is rejected as too
recent, so such users wait for a later run; a value may be restated only while
the conversion is under 54 days old.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from connectors.exceptions import InputError, ValueFeedError
from connectors.value_feed.events import (
    Consent,
    ConversionEvent,
    RowResult,
    ValueSink,
    transaction_id,
)
from connectors.value_feed.identifiers import hashed_email, hashed_phone
from connectors.value_feed.ledger import (
    CLAIMED,
    RETRYABLE,
    ConversionRecord,
    Ledger,
    SendRecord,
)
from connectors.value_feed.settings import (
    MIN_CLICK_AGE_HOURS,
    RESTATEMENT_WINDOW_DAYS,
    FeedSettings,
)

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("user_id", "signup_at", "activated_at", "country")
CONSENT_COLUMNS = ("ad_user_data_consent", "ad_personalization_consent")
_GRANTED = {"granted", "true", "yes", "1", "consent_granted"}
_DENIED = {"denied", "false", "no", "0", "consent_denied"}


@dataclass(frozen=True)
class ShapedValues:
    """Values after the percentile cap and the floor."""

    values: pd.Series
    cap: float | None
    capped: int
    floored: int


@dataclass(frozen=True)
class ValueFigures:
    """Count, total, mean, median and largest of the values a run sends."""

    count: int
    total: float
    mean: float | None
    median: float | None
    largest: float | None


@dataclass
class FeedReport:
    """What one feed run decided and, when sending, what became of it."""

    run_id: str
    mode: str
    sink: str
    counts: Counter[str] = field(default_factory=Counter)
    planned: list[ConversionEvent] = field(default_factory=list)
    cap: float | None = None

    def as_dict(self) -> dict[str, int]:
        """Counts for the run record, sorted by name."""
        return {key: int(self.counts[key]) for key in sorted(self.counts)}

    def value_figures(self) -> ValueFigures:
        """The figures of the values due (first sends, retries, restatements).

        They are what a person checks before sending: a total or a mean a
        hundred times too large shows a unit mistake upstream.
        """
        values = np.array([event.value for event in self.planned], dtype=float)
        if values.size == 0:
            return ValueFigures(0, 0.0, None, None, None)
        return ValueFigures(
            count=int(values.size),
            total=round(float(values.sum()), 2),
            mean=round(float(values.mean()), 2),
            median=round(float(np.median(values)), 2),
            largest=round(float(values.max()), 2),
        )


def shape_values(
    values: pd.Series, *, cap_percentile: float | None, floor: float
) -> ShapedValues:
    """Cap values at a percentile of their own distribution and raise them to a floor.

    One user predicted at fifty times the median would otherwise teach the
    bidder that its campaign is worth fifty times more; the cap bounds that
    pull, the floor keeps every activation worth something.

    Parameters
    ----------
    values
        Value per user (account currency), indexed by user id.
    cap_percentile
        Percentile (0-100] of the finite values used as the cap; ``None``
        leaves values uncapped.
    floor
        Least value sent; it wins over a cap below it.

    Returns
    -------
    ShapedValues
        Values rounded to cents, the cap used, and how many were cut or raised.
    """
    finite = values[np.isfinite(values.to_numpy(dtype=float))].astype(float)
    cap: float | None = None
    if cap_percentile is not None and not finite.empty:
        cap = max(float(np.percentile(finite.to_numpy(), cap_percentile)), floor)
    shaped = finite.clip(lower=floor, upper=cap)
    return ShapedValues(
        values=shaped.round(2),
        cap=cap,
        capped=int((finite > cap).sum()) if cap is not None else 0,
        floored=int((finite < floor).sum()),
    )


def run_feed(
    users: pd.DataFrame,
    values: pd.Series,
    *,
    settings: FeedSettings,
    account: str,
    currency: str,
    ledger: Ledger,
    sink: ValueSink | None,
    now: dt.datetime,
    send: bool = False,
    mask: Callable[[str], str] | None = None,
) -> FeedReport:
    """Send each activated user's value once, and restate it while allowed.

    Parameters
    ----------
    users
        The users table: ``user_id``, ``signup_at``, ``activated_at`` and
        ``country``, plus optionally ``gclid``, ``email``, ``phone``,
        ``click_at``, ``ad_user_data_consent`` and ``ad_personalization_consent``.
    values
        Predicted value per user id (1-year value, or margin), account currency.
    settings
        The ``feed:`` section of the config.
    account
        The account name: part of every transaction id.
    currency
        ISO 4217 code of ``values``.
    ledger
        The sent-values ledger.
    sink
        Where values go; may be ``None`` for a dry run.
    now
        The run's clock (UTC-aware).
    send
        Upload; ``False`` (dry run) only counts what would go.
    mask
        Gives a text without the secrets it may quote; every error text of
        the API (a row's rejection, a failed request) passes through it
        before it is stored in the ledger or logged, as a server may echo a
        request header or a token. Texts are kept as they are when ``None``.

    Returns
    -------
    FeedReport
        The run id, the counts per decision and outcome, the events planned.

    Raises
    ------
    InputError
        The users table lacks a column or has an unreadable consent value.
    LoginError
        The login to Google failed: before the first batch nothing was
        claimed or sent; later, the batch it stopped is marked in doubt.
    ValueFeedError
        A request failed as a whole; the rows it carried are marked in doubt
        and the next run resends them under the same transaction ids.
    """
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    if send and sink is None:
        raise ValueFeedError("--send needs a sink; none was configured")
    _check_columns(users)
    sink_name = sink.name if sink is not None else settings.sink
    report = FeedReport(
        run_id=f"feed-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        mode="send" if send else "dry_run",
        sink=sink_name,
    )
    ledger.start_run(
        report.run_id, account=account, sink=sink_name, mode=report.mode, now=now
    )

    activated = users[users["activated_at"].notna() & (users["activated_at"] <= now)]
    predicted = values.reindex(activated["user_id"]).dropna()
    # The cap is a percentile of every activated user's value, so it does not
    # move with how many happen to be due today.
    shaped = shape_values(
        predicted,
        cap_percentile=settings.cap_percentile,
        floor=settings.value_floor,
    )
    report.cap = shaped.cap
    plan = _Planner(
        settings=settings,
        account=account,
        currency=currency,
        now=now,
        sends=ledger.latest_sends(),
        conversions=ledger.conversions(),
        restates=sink.supports_restatement if sink is not None else True,
        counts=report.counts,
    )
    report.planned = [
        event
        for row in activated.itertuples(index=False)
        if (event := plan.decide(row, shaped.values)) is not None
    ]
    # Counted among the values due, next to which they are shown.
    due = predicted[predicted.index.isin([e.user_id for e in report.planned])]
    due = due[np.isfinite(due.to_numpy(dtype=float))]
    report.counts["capped"] = (
        int((due > shaped.cap).sum()) if shaped.cap is not None else 0
    )
    report.counts["floored"] = int((due < settings.value_floor).sum())
    logger.info(
        "feed run %s: %d due (%d restatements), cap %s %s",
        report.run_id,
        len(report.planned),
        sum(e.revision > 0 for e in report.planned),
        "none" if shaped.cap is None else f"{shaped.cap:.2f}",
        currency,
    )

    status = "planned"
    try:
        if send:
            assert sink is not None
            # Logged in before anything is claimed: a refused or unreachable
            # login leaves no send in the ledger, only this failed run.
            sink.login()
            _deliver(report, settings, ledger, sink, now, mask or _unmasked)
            status = "sent"
    except BaseException:
        status = "failed"
        raise
    finally:
        ledger.finish_run(
            report.run_id, status=status, counts=report.as_dict(), now=now
        )
    return report


@dataclass
class _Planner:
    settings: FeedSettings
    account: str
    currency: str
    now: dt.datetime
    sends: dict[str, SendRecord]
    conversions: dict[str, ConversionRecord]
    restates: bool
    counts: Counter[str]

    def decide(self, row: Any, values: pd.Series) -> ConversionEvent | None:
        user_id = str(row.user_id)
        tid = transaction_id(self.account, self.settings.conversion_action_id, user_id)
        latest = self.sends.get(tid)
        if latest is None:
            return self._first(row, user_id, tid, values)
        if latest.status in RETRYABLE or self._stale(latest):
            return self._retry(row, user_id, tid, latest)
        if latest.status == CLAIMED:
            self.counts["in_flight"] += 1
            return None
        conversion = self.conversions.get(tid)
        if conversion is None or conversion.status != "sent":
            return None
        return self._restatement(row, user_id, tid, latest, conversion, values)

    def _first(
        self, row: Any, user_id: str, tid: str, values: pd.Series
    ) -> ConversionEvent | None:
        activated: dt.datetime = _ts(row.activated_at)
        if self.now - activated > dt.timedelta(days=self.settings.lookback_days):
            self.counts["too_old"] += 1
            return None
        if self._click_too_recent(row):
            self.counts["held_too_recent"] += 1
            return None
        value = values.get(user_id)
        if value is None or not math.isfinite(float(value)):
            self.counts["no_score"] += 1
            return None
        event = self._event(row, user_id, tid, 0, float(value), None)
        if event is None:
            self.counts["no_identifier"] += 1
            return None
        self.counts["due_first"] += 1
        return event

    def _retry(
        self, row: Any, user_id: str, tid: str, latest: SendRecord
    ) -> ConversionEvent | None:
        if latest.revision > 0 and self._too_late_to_restate(row):
            self.counts["restatement_too_late"] += 1
            return None
        if latest.revision == 0 and self._click_too_recent(row):
            self.counts["held_too_recent"] += 1
            return None
        event = self._event(
            row, user_id, tid, latest.revision, latest.value, latest.adjusted_at
        )
        if event is None:
            self.counts["no_identifier"] += 1
            return None
        self.counts["due_retry"] += 1
        return event

    def _restatement(
        self,
        row: Any,
        user_id: str,
        tid: str,
        latest: SendRecord,
        conversion: ConversionRecord,
        values: pd.Series,
    ) -> ConversionEvent | None:
        value = values.get(user_id)
        if value is None or conversion.sent_value is None:
            return None
        new, old = float(value), conversion.sent_value
        if abs(new - old) <= self.settings.restatement_threshold * max(old, 0.01):
            return None
        if self._too_late_to_restate(row):
            self.counts["restatement_too_late"] += 1
            return None
        if not self.restates:
            self.counts["restatement_unsupported"] += 1
            return None
        event = self._event(row, user_id, tid, latest.revision + 1, new, self.now)
        if event is None:
            return None
        self.counts["due_restatement"] += 1
        return event

    def _stale(self, latest: SendRecord) -> bool:
        lease = dt.timedelta(minutes=self.settings.claim_lease_minutes)
        return latest.status == CLAIMED and latest.claimed_at < self.now - lease

    def _click_too_recent(self, row: Any) -> bool:
        # The click precedes sign-up; without a click time, sign-up bounds it.
        click = _optional_ts(getattr(row, "click_at", None))
        clicked = click if click is not None else _ts(row.signup_at)
        return self.now - clicked < dt.timedelta(hours=MIN_CLICK_AGE_HOURS)

    def _too_late_to_restate(self, row: Any) -> bool:
        converted = _ts(row.activated_at)
        return self.now - converted >= dt.timedelta(days=RESTATEMENT_WINDOW_DAYS)

    def _event(
        self,
        row: Any,
        user_id: str,
        tid: str,
        revision: int,
        value: float,
        adjusted_at: dt.datetime | None,
    ) -> ConversionEvent | None:
        allowed = self.settings.identifiers
        user_data = _consent(row, "ad_user_data_consent", user_id)
        gclid = _text(getattr(row, "gclid", None)) if "gclid" in allowed else None
        email = phone = None
        # Contact data goes only where the user did not refuse its use for ads.
        if user_data != "DENIED":
            if "email" in allowed:
                email = hashed_email(_text(getattr(row, "email", None)))
            if "phone" in allowed:
                phone = hashed_phone(
                    _text(getattr(row, "phone", None)),
                    _text(getattr(row, "country", None)),
                )
        if gclid is None and email is None and phone is None:
            return None
        return ConversionEvent(
            transaction_id=tid,
            user_id=user_id,
            revision=revision,
            value=round(value, 2),
            currency=self.currency,
            conversion_time=_ts(row.activated_at),
            gclid=gclid,
            hashed_email=email,
            hashed_phone=phone,
            ad_user_data=user_data,
            ad_personalization=_consent(row, "ad_personalization_consent", user_id),
            adjusted_at=adjusted_at,
        )


def _deliver(
    report: FeedReport,
    settings: FeedSettings,
    ledger: Ledger,
    sink: ValueSink,
    now: dt.datetime,
    mask: Callable[[str], str],
) -> None:
    lease = dt.timedelta(minutes=settings.claim_lease_minutes)
    for batch in _batches(report.planned, settings.batch_size):
        claimed = ledger.claim_many(batch, report.run_id, now, lease=lease)
        report.counts["claimed_elsewhere"] += len(batch) - len(claimed)
        if not claimed:
            continue
        try:
            results = sink.upload(claimed)
        except Exception as exc:
            # Whatever stopped the request, its rows may or may not have
            # reached Google: resent later under the same transaction ids.
            detail = mask(str(exc))
            ledger.release(claimed, now, detail)
            report.counts["in_doubt"] += len(claimed)
            logger.warning(
                "feed run %s: a request of %d conversions failed; they will be "
                "resent under the same transaction ids: %s",
                report.run_id,
                len(claimed),
                detail,
            )
            raise
        results = [_masked(result, mask) for result in results]
        ledger.record(claimed, results, now)
        kinds = {(e.transaction_id, e.revision): e.kind for e in claimed}
        for result in results:
            kind = kinds[(result.transaction_id, result.revision)]
            report.counts[f"{kind}_{result.outcome.value}"] += 1
    logger.info("feed run %s finished: %s", report.run_id, report.as_dict())


def _unmasked(text: str) -> str:
    return text


def _masked(result: RowResult, mask: Callable[[str], str]) -> RowResult:
    """``result`` with its detail, the API's words, passed through ``mask``."""
    if not result.detail:
        return result
    return replace(result, detail=mask(result.detail))


def _batches(
    events: Sequence[ConversionEvent], size: int
) -> Iterator[Sequence[ConversionEvent]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def _check_columns(users: pd.DataFrame) -> None:
    missing = [name for name in REQUIRED_COLUMNS if name not in users.columns]
    if missing:
        raise InputError(
            f"users: the value feed needs column(s) {', '.join(missing)}; "
            f"the table has {', '.join(map(str, users.columns))}"
        )


def _consent(row: Any, column: str, user_id: str) -> Consent:
    raw = _text(getattr(row, column, None))
    if raw is None:
        return None
    word = raw.lower()
    if word in _GRANTED:
        return "GRANTED"
    if word in _DENIED:
        return "DENIED"
    raise InputError(
        f"users: column {column!r}, user {user_id!r}: value {raw!r} is not a "
        "consent status (GRANTED, DENIED, or empty for unknown)"
    )


def _text(value: object) -> str | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value).strip()
    return text or None


def _ts(value: object) -> dt.datetime:
    out = _optional_ts(value)
    if out is None:
        raise InputError(f"users: expected a timestamp, got {value!r}")
    return out


def _optional_ts(value: object) -> dt.datetime | None:
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    # Google takes conversion times to the second; nanoseconds (as pandas
    # keeps from a Parquet file) are dropped without a warning per row.
    return stamp.tz_convert("UTC").to_pydatetime(warn=False)
