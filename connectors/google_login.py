"""Logging in to Google APIs: an OAuth access token before the first request.

The official clients refresh an expired access token inside their first
call, where a failed refresh surfaces as a raw ``google.auth`` traceback or,
through gRPC, as an "unavailable" service that looks like an API outage.
:func:`log_in` gets the token first and turns a failure into one
:class:`~connectors.exceptions.LoginError` that names the API, the token
endpoint and the setting to check, and never a secret.

The token endpoint is Google's unless a ``token_uri`` setting moves it (a
proxy, or a test server on this machine): with only the API ``endpoint``
moved, the login still goes to Google.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import google.auth.exceptions
from google.auth.credentials import Credentials
from google.auth.transport.requests import Request

from connectors.exceptions import LoginError

logger = logging.getLogger(__name__)

#: Where Google's OAuth clients exchange a refresh token for an access token.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_REASON_CHARS = 200
#: The fields of a Google key file (service account or authorized user) that
#: log in on their own: whoever reads one can act as the account.
_KEY_FILE_SECRETS = ("private_key", "client_secret", "refresh_token")

#: Seconds one token request may take. google.auth waits 120 s by default,
#: so a token endpoint that takes the connection and never answers held a
#: retried login for ten minutes.
LOGIN_TIMEOUT_SECONDS = 30.0


class _TimedRequest(Request):
    """A token request that gives up after :data:`LOGIN_TIMEOUT_SECONDS`."""

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        limit = LOGIN_TIMEOUT_SECONDS if timeout is None else timeout
        return super().__call__(  # type: ignore[no-untyped-call]
            url, method, body, headers, limit, **kwargs
        )


def check_token_uri(value: str | None) -> str | None:
    """Validate a configured token endpoint: https, or http on this machine only.

    The refresh token and client secret travel in the request, so plain http
    is refused unless the endpoint is a loopback address.

    Raises
    ------
    ValueError
        The value is not such a URL, or carries a user name or password.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
        has_userinfo = parts.username is not None or parts.password is not None
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{value!r} is not an http(s) URL of a token endpoint")
    if has_userinfo:
        raise ValueError("a token endpoint URL must not hold a user name or password")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise ValueError(
            f"{value!r} would send OAuth secrets unencrypted: use https, or "
            "http only on this machine (127.0.0.1, ::1, localhost)"
        )
    return text


def key_file_secrets(path: Path) -> tuple[str, ...]:
    """The secret values of a Google key file, for masking; none if unreadable.

    A service account key holds a private key; an authorized-user file a
    client secret and a refresh token. A file that cannot be read or is not
    a JSON object gives none: what loads it fails with its own error.
    """
    try:
        info = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return ()
    if not isinstance(info, dict):
        return ()
    found = (info.get(name) for name in _KEY_FILE_SECRETS)
    return tuple(value for value in found if isinstance(value, str) and value)


def with_token_uri(credentials: Credentials, token_uri: str) -> Credentials:
    """The same credentials, refreshed at ``token_uri``.

    Raises
    ------
    ValueError
        This kind of credentials has no token endpoint to move (e.g. a
        compute engine's metadata server).
    """
    move = getattr(credentials, "with_token_uri", None)
    if move is None:
        raise ValueError(
            f"{type(credentials).__name__} credentials take no token endpoint"
        )
    moved: Credentials = move(token_uri)
    return moved


def log_in(
    credentials: Credentials,
    *,
    api: str,
    token_setting: str,
    credentials_hint: str,
    secrets: Iterable[str | None] = (),
) -> None:
    """Get an access token now, unless ``credentials`` hold a valid one.

    Parameters
    ----------
    credentials
        The OAuth credentials the API client uses (refreshed in place).
    api
        The API logged in to, as the message names it.
    token_setting
        The setting that moves the token endpoint, e.g. ``feed.token_uri``.
    credentials_hint
        Where the credentials come from, as the message names them.
    secrets
        Values that must never appear in the message; they are masked.

    Raises
    ------
    LoginError
        The token endpoint could not be reached (``transient``) or refused
        the credentials.
    """
    if credentials.valid:
        return
    hidden = tuple(secrets)
    try:
        credentials.refresh(_TimedRequest())  # type: ignore[no-untyped-call]
    except google.auth.exceptions.TransportError as exc:
        what = (
            f"gave no answer within {LOGIN_TIMEOUT_SECONDS:g} s"
            if _timed_out(exc)
            else "could not be reached"
        )
        message = (
            f"login to {api} failed: its OAuth token endpoint "
            f"{_endpoint(credentials)} {what} "
            f"({_transport_reason(exc, hidden)}). Check this machine's network and "
            f"proxy, and {token_setting} if the endpoint is not Google's."
        )
        raise LoginError(_mask(message, hidden), api=api, transient=True) from exc
    except google.auth.exceptions.GoogleAuthError as exc:
        message = (
            f"login to {api} failed: its OAuth token endpoint "
            f"{_endpoint(credentials)} refused the credentials "
            f"({_refusal_reason(exc, hidden)}). Check {credentials_hint}."
        )
        raise LoginError(_mask(message, hidden), api=api) from exc
    logger.debug("logged in to %s", api)


def _endpoint(credentials: Credentials) -> str:
    """The token endpoint, without any query string, as messages show it."""
    uri = getattr(credentials, "_token_uri", None)
    if not isinstance(uri, str) or not uri:
        return "(the credentials' own)"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _linked(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or wraps, once each."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            *current.args,
        ):
            if isinstance(linked, BaseException):
                stack.append(linked)


def _timed_out(exc: BaseException) -> bool:
    """Whether the endpoint took the connection but did not answer in time."""
    return any(isinstance(linked, TimeoutError) for linked in _linked(exc))


def _transport_reason(exc: BaseException, secrets: Iterable[str | None]) -> str:
    """The deepest operating-system reason (e.g. "Connection refused"), if any."""
    found: str | None = None
    for linked in _linked(exc):
        if isinstance(linked, OSError) and linked.strerror:
            found = linked.strerror
    return found or _short(_mask(str(exc), secrets))


def _refusal_reason(exc: BaseException, secrets: Iterable[str | None]) -> str:
    first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    # Masked before it is cut: a secret cut in two no longer matches its mask.
    return _short(_mask(first, secrets))


def _short(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > _REASON_CHARS:
        line = line[: _REASON_CHARS - 3] + "..."
    return line or "no detail"


def _mask(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
