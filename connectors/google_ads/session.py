"""A Google Ads client with valuebid's retry policy and error boundary.

Every call the connector makes goes through ``GoogleAdsSession.call``:
unavailable, timed-out and quota-exhausted calls are retried with bounded
exponential backoff (Google Ads API guide, "Error handling": these are the
transient errors, and quota errors need backoff); every other failure is
raised at once as ``GoogleAdsError``, keeping the request id.

Before each call the session holds a valid OAuth access token
(:meth:`GoogleAdsSession.login`): a token endpoint that cannot be reached is
retried like an unavailable call, and a failed login is raised as
``LoginError``, not as an API failure of the call it preceded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, TypeVar

import google.auth
import google.auth.exceptions
import grpc
import proto
from google.ads.googleads import client as google_ads_client_module
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.errors import GoogleAdsException
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import Credentials
from google.oauth2 import credentials as oauth2_credentials
from google.oauth2 import service_account

from connectors.exceptions import (
    ApiErrorDetail,
    GoogleAdsConfigError,
    GoogleAdsError,
    GoogleAdsTransientError,
    LoginError,
)
from connectors.google_ads.settings import (
    GoogleAdsCredentials,
    GoogleAdsSettings,
    RetrySettings,
    load_credentials,
    newest_api_version,
)
from connectors.google_login import GOOGLE_TOKEN_URI, log_in, with_token_uri

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
ADWORDS_SCOPE = "https://www.googleapis.com/auth/adwords"
GOOGLE_ADS_API = "the Google Ads API"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and delays for transient errors; the delay doubles up to a cap."""

    max_attempts: int = 5
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 30.0

    @classmethod
    def from_settings(cls, settings: RetrySettings) -> RetryPolicy:
        return cls(
            max_attempts=settings.max_attempts,
            initial_delay=settings.initial_delay_seconds,
            multiplier=settings.multiplier,
            max_delay=settings.max_delay_seconds,
        )

    def delays(self) -> Iterator[float]:
        """The waits between attempts: one fewer than ``max_attempts``."""
        delay = self.initial_delay
        for _ in range(self.max_attempts - 1):
            yield min(delay, self.max_delay)
            delay *= self.multiplier


@dataclass
class GoogleAdsSession:
    """A ``GoogleAdsClient`` plus the retry policy and sleep used around it."""

    client: Any
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    login_hint: str = "the credentials given to the client"
    secrets: tuple[str, ...] = field(default=(), repr=False)
    _services: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def api_version(self) -> str:
        return str(self.client.version or newest_api_version())

    def service(self, name: str) -> Any:
        """The client's service ``name`` (e.g. ``"CampaignService"``), cached."""
        if name not in self._services:
            self._services[name] = self.client.get_service(
                name, version=self.api_version
            )
        return self._services[name]

    def message_class(self, module: str, name: str) -> Any:
        """A proto-plus message class of this session's API version."""
        return getattr(
            import_module(f"google.ads.googleads.{self.api_version}.{module}"), name
        )

    def login(self) -> None:
        """Get an OAuth access token now, unless a valid one is held.

        An unreachable token endpoint is retried with the session's backoff;
        credentials the endpoint refuses are not.

        Raises
        ------
        LoginError
            The login failed; the message names the setting to check.
        """
        credentials = getattr(self.client, "credentials", None)
        if credentials is None:
            return
        delays = self.retry.delays()
        while True:
            try:
                log_in(
                    credentials,
                    api=GOOGLE_ADS_API,
                    token_setting="google_ads.token_uri",
                    credentials_hint=self.login_hint,
                    secrets=self.secrets,
                )
                return
            except LoginError as exc:
                delay = next(delays, None) if exc.transient else None
                if delay is None:
                    raise
                logger.warning("%s Retrying in %.1f s.", exc, delay)
                self.sleep(delay)

    def call(self, action: str, attempt: Callable[[], T]) -> T:
        """Log in, run ``attempt``, retry transient failures; wrap the final one.

        Raises
        ------
        LoginError
            The OAuth login failed, before or between attempts.
        GoogleAdsTransientError
            If every attempt failed with a transient status.
        GoogleAdsError
            At the first non-transient failure.
        """
        delays = self.retry.delays()
        attempt_number = 1
        while True:
            self.login()
            try:
                return attempt()
            except (GoogleAdsException, api_exceptions.GoogleAPICallError) as exc:
                error: Exception = exc
            except grpc.RpcError as exc:
                error = exc

            code = status_code(error)
            if code not in TRANSIENT_CODES:
                raise to_google_ads_error(action, error) from error
            delay = next(delays, None)
            if delay is None:
                raise to_google_ads_error(action, error, transient=True) from error

            logger.warning(
                "%s: %s, attempt %d of %d, retrying in %.1f s",
                action,
                code.name if code else "error",
                attempt_number,
                self.retry.max_attempts,
                delay,
            )
            self.sleep(delay)
            attempt_number += 1

    def unary_with_request_id(
        self,
        service_name: str,
        method: str,
        request: Any,
        customer_id: str,
    ) -> tuple[Any, str | None]:
        """Call a unary method and return its response with the request id.

        The generated client methods return only the message, while the
        request id, which Google support needs for each rejected change, is
        in the response metadata; calling the transport's method keeps every
        interceptor of the client (developer token, errors, logging).
        """
        stub = getattr(self.service(service_name).transport, method)
        # The routing header the generated method would add.
        metadata = ("x-goog-request-params", f"customer_id={customer_id}")
        wrapped = request if isinstance(request, proto.Message) else None
        if wrapped is None:
            request_class = self.message_class(*_REQUEST_CLASSES[method])
            wrapped = request_class.wrap(request)
        response, call = stub.with_call(wrapped, metadata=(metadata,))
        if isinstance(response, proto.Message):
            response = type(response).pb(response)
        return response, _request_id(call.initial_metadata()) or _request_id(
            call.trailing_metadata()
        )


_REQUEST_CLASSES = {
    "mutate_campaigns": ("services.types.campaign_service", "MutateCampaignsRequest"),
    "mutate_bidding_strategies": (
        "services.types.bidding_strategy_service",
        "MutateBiddingStrategiesRequest",
    ),
}


def open_session(
    settings: GoogleAdsSettings,
    *,
    credentials: Credentials | None = None,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> GoogleAdsSession:
    """Build the client from ``settings``; no request is sent.

    Parameters
    ----------
    settings
        The ``google_ads:`` configuration section.
    credentials
        Ready OAuth credentials; when omitted they are built from the
        installed-app or service-account keys and refreshed on first use.
    environ
        Where ``GOOGLE_ADS_*`` variables are read; the process environment
        by default.
    sleep
        Called with each backoff delay, in seconds.

    Raises
    ------
    GoogleAdsConfigError
        If the developer token or the OAuth keys are missing or unreadable.
    """
    resolved = load_credentials(settings, environ, require_oauth=credentials is None)
    oauth = (
        credentials
        if credentials is not None
        else oauth_credentials(resolved, token_uri=settings.token_uri)
    )
    client = google_ads_client(
        resolved,
        oauth,
        endpoint=settings.endpoint,
        version=settings.api_version,
        use_proto_plus=False,
    )
    return GoogleAdsSession(
        client=client,
        retry=RetryPolicy.from_settings(settings.retry),
        sleep=sleep,
        login_hint=resolved.login_hint(),
        secrets=resolved.secrets(),
    )


def google_ads_client(
    resolved: GoogleAdsCredentials,
    credentials: Credentials,
    *,
    endpoint: str | None,
    version: str,
    use_proto_plus: bool,
) -> GoogleAdsClient:
    """A ``GoogleAdsClient`` honouring every resolved key; nothing is sent.

    Parameters
    ----------
    resolved
        The keys of a ``google-ads.yaml`` or the ``GOOGLE_ADS_*`` variables:
        developer token, login and linked customer ids, http proxy.
    credentials
        The OAuth credentials the calls carry.
    endpoint
        ``host:port`` of the API; Google's when ``None``.
    version
        The Google Ads API version, e.g. ``"v26"``.
    use_proto_plus
        Whether messages are proto-plus wrappers or raw protobuf.
    """
    return GoogleAdsClient(
        credentials=credentials,
        developer_token=resolved.developer_token.get_secret_value(),
        endpoint=endpoint,
        login_customer_id=resolved.login_customer_id,
        linked_customer_id=resolved.linked_customer_id,
        http_proxy=_proxy_to_add(resolved),
        version=version,
        use_proto_plus=use_proto_plus,
    )


# The client library keeps channel options, the proxy among them, in one list
# shared by every client of the process, and appends the proxy each time a
# client is built with one. A daily job builds new clients every run, so the
# proxy is added once only, and a second, different proxy in the same process
# is refused rather than silently ignored or mixed.
_PROXY_OPTION = "grpc.http_proxy"


def _proxy_to_add(resolved: GoogleAdsCredentials) -> str | None:
    if resolved.http_proxy is None:
        return None
    proxy = resolved.http_proxy.get_secret_value()
    shared = getattr(google_ads_client_module, "_GRPC_CHANNEL_OPTIONS", [])
    present = {value for key, value in shared if key == _PROXY_OPTION}
    if not present:
        return proxy
    if present == {proxy}:
        return None
    raise GoogleAdsConfigError(
        f"http_proxy in the {resolved.source} differs from the proxy an earlier "
        "Google Ads client of this process routes through; the client library "
        "keeps one proxy per process: give every google-ads.yaml the same "
        "http_proxy, or run them in separate processes"
    )


def as_session(client_or_session: Any) -> GoogleAdsSession:
    """Accept either a session or a bare ``GoogleAdsClient``."""
    if isinstance(client_or_session, GoogleAdsSession):
        return client_or_session
    if isinstance(client_or_session, GoogleAdsClient):
        return GoogleAdsSession(client=client_or_session)
    raise TypeError(
        f"expected a GoogleAdsSession or GoogleAdsClient, got "
        f"{type(client_or_session).__name__}"
    )


def oauth_credentials(
    resolved: GoogleAdsCredentials, *, token_uri: str | None = None
) -> Credentials:
    """OAuth credentials from resolved keys; refreshed on first use, not here.

    Parameters
    ----------
    resolved
        The installed-app keys, the service account key file, or the
        machine's application default credentials.
    token_uri
        The token endpoint; Google's (or the key file's) when ``None``.

    Raises
    ------
    GoogleAdsConfigError
        The service account key file or the application default credentials
        cannot be loaded.
    """
    if resolved.use_application_default_credentials:
        try:
            found, _ = google.auth.default(scopes=[ADWORDS_SCOPE])
            return with_token_uri(found, token_uri) if token_uri else found
        except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            raise GoogleAdsConfigError(
                f"application default credentials unusable: {exc}"
            ) from exc
    if resolved.json_key_file_path is not None:
        try:
            account: Credentials = (
                service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                    str(resolved.json_key_file_path),
                    subject=resolved.impersonated_email,
                    scopes=[ADWORDS_SCOPE],
                )
            )
        except (OSError, ValueError) as exc:
            raise GoogleAdsConfigError(
                f"cannot load the service account key {resolved.json_key_file_path}"
            ) from exc
        return with_token_uri(account, token_uri) if token_uri else account
    assert resolved.client_secret is not None and resolved.refresh_token is not None
    installed: Credentials = oauth2_credentials.Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=resolved.refresh_token.get_secret_value(),
        client_id=resolved.client_id,
        client_secret=resolved.client_secret.get_secret_value(),
        token_uri=token_uri or GOOGLE_TOKEN_URI,
        scopes=[ADWORDS_SCOPE],
    )
    return installed


def status_code(error: BaseException) -> grpc.StatusCode | None:
    """The gRPC status of a failed call, whichever layer raised it."""
    if isinstance(error, GoogleAdsException):
        code = error.error.code()
        return code if isinstance(code, grpc.StatusCode) else None
    if isinstance(error, api_exceptions.GoogleAPICallError):
        code = error.grpc_status_code
        return code if isinstance(code, grpc.StatusCode) else None
    if isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
        code = error.code()
        return code if isinstance(code, grpc.StatusCode) else None
    return None


def to_google_ads_error(
    action: str, error: BaseException, *, transient: bool = False
) -> GoogleAdsError:
    """Translate a client-library failure into valuebid's ``GoogleAdsError``."""
    code = status_code(error)
    request_id: str | None = None
    details: tuple[ApiErrorDetail, ...] = ()
    if isinstance(error, GoogleAdsException):
        request_id = error.request_id or None
        details = failure_details(error.failure)
        summary = details[0].message if details else str(error)
    elif isinstance(error, api_exceptions.GoogleAPICallError):
        summary = str(error.message)
    elif isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
        request_id = _request_id(error.trailing_metadata())
        summary = str(error.details())
    else:
        summary = str(error)

    status = code.name if code is not None else None
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    message = f"{action} failed: {status or 'error'}: {summary}{more}"
    error_class = GoogleAdsTransientError if transient else GoogleAdsError
    return error_class(message, request_id=request_id, status=status, errors=details)


def failure_details(failure: Any) -> tuple[ApiErrorDetail, ...]:
    """Each error of a ``GoogleAdsFailure``: code, message and field path."""
    if failure is None:
        return ()
    if isinstance(failure, proto.Message):
        failure = type(failure).pb(failure)
    return tuple(
        ApiErrorDetail(
            code=error_code_name(error.error_code),
            message=error.message,
            field_path=field_path(error.location.field_path_elements),
        )
        for error in failure.errors
    )


def error_code_name(error_code: Any) -> str:
    """``"range_error.TOO_HIGH"`` for an ``ErrorCode`` message."""
    category = error_code.WhichOneof("error_code")
    if category is None:
        return "unknown"
    descriptor = error_code.DESCRIPTOR.fields_by_name[category]
    value = descriptor.enum_type.values_by_number.get(getattr(error_code, category))
    return f"{category}.{value.name if value is not None else 'UNKNOWN'}"


def field_path(elements: Any) -> str:
    """``operations[2].update.target_roas.target_roas`` from path elements."""
    parts = []
    for element in elements:
        if element.HasField("index"):
            parts.append(f"{element.field_name}[{element.index}]")
        else:
            parts.append(element.field_name)
    return ".".join(parts)


def _request_id(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "request-id":
            return str(value)
    return None
