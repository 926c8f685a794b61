"""Sink: the Google Ads ConversionUploadService, for accounts still allowed to use it.

First values go as click conversions (UploadClickConversions); restatements
as RESTATEMENT adjustments of the same order id
(ConversionAdjustmentUploadService). Both with ``partial_failure`` on, so one
bad row does not sink its batch; each failed row's error is mapped to an
:class:`~connectors.value_feed.events.Outcome`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.errors import GoogleAdsException
from google.api_core import exceptions as api_exceptions

from connectors.exceptions import GoogleAdsConfigError, ValueFeedError
from connectors.google_login import log_in
from connectors.value_feed.events import ConversionEvent, Outcome, RowResult
from connectors.value_feed.settings import MAX_BATCH, FeedSettings

logger = logging.getLogger(__name__)

API_VERSION = "v26"

_CLICK_OUTCOMES = {
    "CLICK_CONVERSION_ALREADY_EXISTS": Outcome.ALREADY_EXISTS,
    "TOO_RECENT_EVENT": Outcome.TOO_RECENT,
    "EXPIRED_EVENT": Outcome.EXPIRED,
    "EVENT_NOT_FOUND": Outcome.UNKNOWN_CLICK,
    "CLICK_NOT_FOUND": Outcome.UNKNOWN_CLICK,
    "UNPARSEABLE_GCLID": Outcome.UNKNOWN_CLICK,
    "INVALID_CUSTOMER_FOR_CLICK": Outcome.UNKNOWN_CLICK,
}
_ADJUSTMENT_OUTCOMES = {
    "RESTATEMENT_ALREADY_EXISTS": Outcome.ALREADY_EXISTS,
    "TOO_RECENT_CONVERSION": Outcome.TOO_RECENT,
    "CONVERSION_EXPIRED": Outcome.EXPIRED,
    "CONVERSION_NOT_FOUND": Outcome.UNKNOWN_CLICK,
}


class ConversionUploadSink:
    """Uploads conversions and restatements through the official ``google-ads`` client.

    Parameters
    ----------
    client
        A configured ``GoogleAdsClient`` (developer token, credentials,
        login customer id, endpoint).
    customer_id
        The account that owns the conversion action.
    conversion_action_id
        The activation conversion action.
    login_hint
        Where the client's credentials come from, as a failed login names them.
    secrets
        Secret values a failed login's message must mask.
    """

    name = "conversion_upload"
    supports_restatement = True

    def __init__(
        self,
        client: GoogleAdsClient,
        customer_id: str,
        conversion_action_id: str,
        *,
        login_hint: str = "the credentials given to the client",
        secrets: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._customer_id = customer_id
        self._action = (
            f"customers/{customer_id}/conversionActions/{conversion_action_id}"
        )
        self._login_hint = login_hint
        self._secrets = tuple(secrets)

    @classmethod
    def from_settings(cls, settings: FeedSettings) -> ConversionUploadSink:
        """Build the client from the ``google-ads.yaml`` the config points to.

        Nothing is sent: the login happens at the first :meth:`login` or
        upload, against ``feed.token_uri`` when set.

        Raises
        ------
        ValueFeedError
            ``feed.credentials`` is unset, unreadable, lacks a key or holds an
            invalid one (``linked_customer_id``, ``http_proxy``).
        """
        from connectors.google_ads import (
            credentials_from_file,
            google_ads_client,
            oauth_credentials,
        )

        if settings.credentials is None:
            raise ValueFeedError(
                "feed.credentials: the conversion_upload sink needs the path of a "
                "google-ads.yaml file"
            )
        try:
            resolved = credentials_from_file(
                settings.credentials.expanduser(),
                login_customer_id=settings.login_customer_id,
            )
            credentials = oauth_credentials(resolved, token_uri=settings.token_uri)
        except GoogleAdsConfigError as exc:
            raise ValueFeedError(f"feed.credentials: {exc}") from exc
        client = google_ads_client(
            resolved,
            credentials,
            endpoint=settings.endpoint,
            version=API_VERSION,
            use_proto_plus=True,
        )
        return cls(
            client,
            settings.customer_id,
            settings.conversion_action_id,
            login_hint=f"{resolved.login_hint()}, the file feed.credentials names",
            secrets=resolved.secrets(),
        )

    def login(self) -> None:
        """Get an OAuth access token now, unless a valid one is held.

        Raises
        ------
        LoginError
            The token endpoint could not be reached or refused the credentials.
        """
        log_in(
            self._client.credentials,
            api="the Google Ads API (conversion upload)",
            token_setting="feed.token_uri",
            credentials_hint=self._login_hint,
            secrets=self._secrets,
        )

    def upload(self, events: Sequence[ConversionEvent]) -> list[RowResult]:
        """Send first values and restatements; one result per event, in order."""
        if len(events) > MAX_BATCH:
            raise ValueError(f"{len(events)} events exceed the {MAX_BATCH} limit")
        self.login()
        firsts = [e for e in events if e.revision == 0]
        restatements = [e for e in events if e.revision > 0]
        results: dict[tuple[str, int], RowResult] = {}
        if firsts:
            for result in self._upload_clicks(firsts):
                results[(result.transaction_id, result.revision)] = result
        if restatements:
            for result in self._upload_restatements(restatements):
                results[(result.transaction_id, result.revision)] = result
        return [results[(e.transaction_id, e.revision)] for e in events]

    def _upload_clicks(self, events: Sequence[ConversionEvent]) -> list[RowResult]:
        service = self._client.get_service("ConversionUploadService")
        conversions = [self._click(e) for e in events]
        response = self._call(
            "UploadClickConversions",
            lambda: service.upload_click_conversions(
                customer_id=self._customer_id,
                conversions=conversions,
                partial_failure=True,
            ),
        )
        errors = self._row_errors(response, "conversion_upload_error")
        return _results(events, errors, _CLICK_OUTCOMES)

    def _upload_restatements(
        self, events: Sequence[ConversionEvent]
    ) -> list[RowResult]:
        service = self._client.get_service("ConversionAdjustmentUploadService")
        adjustments = [self._restatement(e) for e in events]
        response = self._call(
            "UploadConversionAdjustments",
            lambda: service.upload_conversion_adjustments(
                customer_id=self._customer_id,
                conversion_adjustments=adjustments,
                partial_failure=True,
            ),
        )
        errors = self._row_errors(response, "conversion_adjustment_upload_error")
        return _results(events, errors, _ADJUSTMENT_OUTCOMES)

    def _click(self, event: ConversionEvent) -> Any:
        conversion = self._client.get_type("ClickConversion")
        conversion.conversion_action = self._action
        conversion.conversion_date_time = google_ads_time(event.conversion_time)
        conversion.conversion_value = event.value
        conversion.currency_code = event.currency
        conversion.order_id = event.transaction_id
        if event.gclid:
            conversion.gclid = event.gclid
        for field, digest in (
            ("hashed_email", event.hashed_email),
            ("hashed_phone_number", event.hashed_phone),
        ):
            if digest:
                identifier = self._client.get_type("UserIdentifier")
                setattr(identifier, field, digest)
                conversion.user_identifiers.append(identifier)
        consent_status = self._client.enums.ConsentStatusEnum
        if event.ad_user_data is not None:
            conversion.consent.ad_user_data = consent_status[event.ad_user_data]
        if event.ad_personalization is not None:
            conversion.consent.ad_personalization = consent_status[
                event.ad_personalization
            ]
        return conversion

    def _restatement(self, event: ConversionEvent) -> Any:
        assert event.adjusted_at is not None
        adjustment = self._client.get_type("ConversionAdjustment")
        adjustment.conversion_action = self._action
        adjustment.order_id = event.transaction_id
        adjustment.adjustment_type = (
            self._client.enums.ConversionAdjustmentTypeEnum.RESTATEMENT
        )
        adjustment.adjustment_date_time = google_ads_time(event.adjusted_at)
        adjustment.restatement_value.adjusted_value = event.value
        adjustment.restatement_value.currency_code = event.currency
        return adjustment

    def _call(self, method: str, call: Any) -> Any:
        try:
            return call()
        except GoogleAdsException as exc:
            messages = "; ".join(error.message for error in exc.failure.errors)
            raise ValueFeedError(
                f"{method} for customer {self._customer_id} failed "
                f"(request id {exc.request_id}): {messages}"
            ) from exc
        except api_exceptions.GoogleAPICallError as exc:
            raise ValueFeedError(
                f"{method} for customer {self._customer_id} failed: {exc}"
            ) from exc

    def _row_errors(self, response: Any, code_field: str) -> dict[int, tuple[str, str]]:
        """Row index to (error code name, message) from a partial failure."""
        status = response.partial_failure_error
        if not status.details:
            return {}
        failure_type = type(self._client.get_type("GoogleAdsFailure"))
        errors: dict[int, tuple[str, str]] = {}
        for detail in status.details:
            failure = failure_type.deserialize(detail.value)
            for error in failure.errors:
                index = _row_index(error)
                if index is None or index in errors:
                    continue
                code = getattr(error.error_code, code_field)
                name = code.name if code else str(error.error_code).strip()
                errors[index] = (name, error.message)
        return errors


def _row_index(error: Any) -> int | None:
    for element in error.location.field_path_elements:
        if element.field_name in ("conversions", "conversion_adjustments"):
            return int(element.index)
    return None


def _results(
    events: Sequence[ConversionEvent],
    errors: dict[int, tuple[str, str]],
    outcomes: dict[str, Outcome],
) -> list[RowResult]:
    out = []
    for index, event in enumerate(events):
        if index not in errors:
            out.append(RowResult(event.transaction_id, event.revision, Outcome.SENT))
            continue
        code, message = errors[index]
        outcome = outcomes.get(code, Outcome.REJECTED)
        if outcome is Outcome.REJECTED:
            logger.warning(
                "conversion %s revision %d rejected: %s %s",
                event.transaction_id,
                event.revision,
                code,
                message,
            )
        out.append(
            RowResult(
                event.transaction_id, event.revision, outcome, f"{code}: {message}"
            )
        )
    return out


def google_ads_time(moment: dt.datetime) -> str:
    """``yyyy-mm-dd hh:mm:ss+00:00``, the form the conversion upload fields take."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S+00:00")
