"""Sink: the Data Manager API (IngestionService.IngestEvents), Google's route for
new adopters of offline conversion import.

The API accepts a request synchronously and processes its events later; its
processing errors (too recent click, unknown click, duplicate transaction id)
are reported per request, in aggregate, by RetrieveRequestStatus. So every
row of an accepted request is recorded as sent with the request id, and
deduplication rests on the transaction id, which Google uses to drop a
repeated event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.ads import datamanager_v1 as dm
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import Credentials
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from google.protobuf import timestamp_pb2

from connectors.exceptions import ValueFeedError
from connectors.google_login import log_in, with_token_uri
from connectors.value_feed.events import ConversionEvent, Outcome, RowResult
from connectors.value_feed.settings import MAX_BATCH, FeedSettings

logger = logging.getLogger(__name__)

DATAMANAGER_SCOPE = "https://www.googleapis.com/auth/datamanager"

_CONSENT = {
    "GRANTED": dm.ConsentStatus.CONSENT_GRANTED,
    "DENIED": dm.ConsentStatus.CONSENT_DENIED,
    None: dm.ConsentStatus.CONSENT_STATUS_UNSPECIFIED,
}


class DataManagerSink:
    """Uploads first values through the official ``google-ads-datamanager`` client.

    Parameters
    ----------
    client
        A configured ``IngestionServiceClient``.
    customer_id
        The Google Ads account that owns the conversion action.
    conversion_action_id
        The activation conversion action.
    login_customer_id
        The manager account making the call, if any.
    login_hint
        Where the client's credentials come from, as a failed login names them.
    """

    name = "data_manager"
    # The Data Manager API documents no restatement of an ingested event's
    # value; restatements are counted as unsupported rather than re-ingested.
    supports_restatement = False

    def __init__(
        self,
        client: dm.IngestionServiceClient,
        customer_id: str,
        conversion_action_id: str,
        login_customer_id: str | None = None,
        *,
        login_hint: str = "the credentials given to the client",
    ) -> None:
        self._client = client
        self._login_hint = login_hint
        destination = dm.Destination(
            operating_account=dm.ProductAccount(
                account_id=customer_id,
                account_type=dm.ProductAccount.AccountType.GOOGLE_ADS,
            ),
            product_destination_id=conversion_action_id,
        )
        if login_customer_id:
            destination.login_account = dm.ProductAccount(
                account_id=login_customer_id,
                account_type=dm.ProductAccount.AccountType.GOOGLE_ADS,
            )
        self._destination = destination
        self._customer_id = customer_id

    @classmethod
    def from_settings(cls, settings: FeedSettings) -> DataManagerSink:
        """Build the client from a service-account key file or the machine's ADC.

        Nothing is sent: the login happens at the first :meth:`login` or
        upload, at ``feed.token_uri`` when set, else at the token endpoint
        the key file names.

        Raises
        ------
        ValueFeedError
            No usable credentials, or credentials whose token endpoint
            ``feed.token_uri`` cannot move.
        """
        import google.auth

        credentials: Credentials
        where = (
            f"the key file feed.credentials names ({settings.credentials})"
            if settings.credentials is not None
            else "this machine's application default credentials (feed.credentials "
            "unset)"
        )
        try:
            if settings.credentials is not None:
                credentials = _key_file_credentials(settings.credentials.expanduser())
            else:
                credentials, _ = google.auth.default(scopes=[DATAMANAGER_SCOPE])
            if settings.token_uri:
                credentials = with_token_uri(credentials, settings.token_uri)
        except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
            raise ValueFeedError(
                f"feed.credentials: no usable credentials for the Data Manager "
                f"API in {where}: {exc}"
            ) from exc
        options: dict[str, Any] = {}
        if settings.endpoint:
            options["api_endpoint"] = settings.endpoint
        client = dm.IngestionServiceClient(
            credentials=credentials, client_options=options or None
        )
        return cls(
            client,
            settings.customer_id,
            settings.conversion_action_id,
            settings.login_customer_id,
            login_hint=where,
        )

    def login(self) -> None:
        """Get an OAuth access token now, unless a valid one is held.

        The token is got on the credentials the client's transport holds: for
        a service account key the client signs its own tokens, and contacts no
        token endpoint, so neither does this.

        Raises
        ------
        LoginError
            The token endpoint could not be reached or refused the credentials.
        """
        credentials = getattr(self._client.transport, "_credentials", None)
        if not isinstance(credentials, Credentials):
            return
        log_in(
            credentials,
            api="the Data Manager API",
            token_setting="feed.token_uri",
            credentials_hint=self._login_hint,
            secrets=_secrets_of(credentials),
        )

    def upload(self, events: Sequence[ConversionEvent]) -> list[RowResult]:
        """Ingest first values; every row of an accepted request is sent."""
        if len(events) > MAX_BATCH:
            raise ValueError(f"{len(events)} events exceed the {MAX_BATCH} limit")
        if any(e.revision > 0 for e in events):
            raise ValueFeedError("the Data Manager sink does not send restatements")
        self.login()
        request = dm.IngestEventsRequest(
            destinations=[self._destination],
            events=[_event(e) for e in events],
            encoding=dm.Encoding.HEX,
        )
        try:
            response = self._client.ingest_events(request=request)
        except api_exceptions.GoogleAPICallError as exc:
            raise ValueFeedError(
                f"IngestEvents for account {self._customer_id} failed: {exc}"
            ) from exc
        logger.debug("IngestEvents accepted %d events: %s", len(events), response)
        return [
            RowResult(
                e.transaction_id,
                e.revision,
                Outcome.SENT,
                request_id=response.request_id,
            )
            for e in events
        ]

    def request_errors(self, request_id: str) -> dict[str, int]:
        """Processing errors of an accepted request, by reason: empty when clean.

        Raises
        ------
        LoginError
            The login failed.
        ValueFeedError
            The status could not be read.
        """
        self.login()
        try:
            response = self._client.retrieve_request_status(
                request=dm.RetrieveRequestStatusRequest(request_id=request_id)
            )
        except api_exceptions.GoogleAPICallError as exc:
            raise ValueFeedError(
                f"RetrieveRequestStatus {request_id} failed: {exc}"
            ) from exc
        counts: dict[str, int] = {}
        for status in response.request_status_per_destination:
            for error in status.error_info.error_counts:
                name = dm.ProcessingErrorReason(error.reason).name
                counts[name] = counts.get(name, 0) + int(error.record_count)
        return counts


def check_key_file(path: Path) -> None:
    """Load the key file ``feed.credentials`` names as the sink would; nothing is sent.

    Raises
    ------
    ValueFeedError
        It cannot be read, is not JSON, or is not a usable key of a kind the
        sink loads; the message names ``feed.credentials`` and the file's
        absolute path, never a value of the file.
    """
    import google.auth.exceptions

    shown = path.absolute()
    try:
        _key_file_credentials(shown)
    except OSError as exc:
        raise ValueFeedError(
            f"feed.credentials: cannot read key file {shown}: {exc.strerror}"
        ) from exc
    except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
        raise ValueFeedError(
            f"feed.credentials: key file {shown} is not a usable key for the "
            f"Data Manager API: {exc}"
        ) from exc


def _key_file_credentials(path: Path) -> Credentials:
    """Credentials of a service-account key or an authorized-user file.

    Only these two kinds are loaded, by their own loaders: a key file of
    another kind (an external account, say) could make the client run
    commands or reach hosts the file names.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It is not JSON, is of another kind, or lacks a field.
    """
    info = json.loads(path.read_text(encoding="utf-8"))
    kind = info.get("type") if isinstance(info, dict) else None
    loaded: Credentials
    if kind == "service_account":
        loaded = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[DATAMANAGER_SCOPE]
        )
    elif kind == "authorized_user":
        loaded = user_credentials.Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
            info, scopes=[DATAMANAGER_SCOPE]
        )
    else:
        raise ValueError(
            f"its type is {kind!r}; use a service account key (service_account) "
            "or an authorized-user file (authorized_user), or leave "
            "feed.credentials unset for the application default credentials"
        )
    return loaded


def _secrets_of(credentials: Credentials) -> tuple[str, ...]:
    """The secrets user credentials hold (a key file's private key never shows)."""
    found = (
        getattr(credentials, name, None) for name in ("refresh_token", "client_secret")
    )
    return tuple(value for value in found if isinstance(value, str))


def _event(event: ConversionEvent) -> dm.Event:
    out = dm.Event(
        transaction_id=event.transaction_id,
        event_timestamp=_timestamp(event),
        currency=event.currency,
        conversion_value=event.value,
        event_source=dm.EventSource.WEB,
        consent=dm.Consent(
            ad_user_data=_CONSENT[event.ad_user_data],
            ad_personalization=_CONSENT[event.ad_personalization],
        ),
    )
    if event.gclid:
        out.ad_identifiers = dm.AdIdentifiers(gclid=event.gclid)
    identifiers = []
    if event.hashed_email:
        identifiers.append(dm.UserIdentifier(email_address=event.hashed_email))
    if event.hashed_phone:
        identifiers.append(dm.UserIdentifier(phone_number=event.hashed_phone))
    if identifiers:
        out.user_data = dm.UserData(user_identifiers=identifiers)
    return out


def _timestamp(event: ConversionEvent) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(event.conversion_time)
    return stamp
