"""Secrets kept out of what the tool stores, sends and prints.

Every secret the config leads to (see :func:`settings_secrets`), and every
URL password, is masked as ``***`` in the failure messages stored on a run
or in the value feed's ledger, the alerts sent, the command's errors and
the log lines written (see :class:`SecretMask`). The tool's own messages
already leave secrets out; this is the second guard, for text a server or
a library sends back, which may quote a header or a token.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config.schema import Settings
from connectors.exceptions import GoogleAdsConfigError
from connectors.google_ads.settings import (
    GoogleAdsCredentials,
    credentials_from_file,
    load_credentials,
)
from connectors.google_login import key_file_secrets

#: Longest failure message stored on a run; the full one is in the log.
MAX_STORED_ERROR = 2000

#: Shorter values are not masked: no real token is this short, and masking a
#: one-letter placeholder would garble every word holding that letter. A URL
#: password of any length is masked by its place in the URL.
MIN_MASKED_SECRET = 8
#: The key file Google's clients log in with when none is given.
_ADC_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^\s/@:]*:)[^\s/@]+@")


def without_secrets(text: str, settings: Settings) -> str:
    """``text`` as it may be stored or sent: no password, no secret it leads to.

    The tool's messages already leave secrets out (credentials are held
    hidden, database URLs are shown without their password); this is a
    second guard for what is kept in the state database or announced. Every
    URL password becomes ``***``, and so does every secret
    :func:`settings_secrets` finds. The text is cut to
    :data:`MAX_STORED_ERROR` characters.

    Parameters
    ----------
    text
        The message to store.
    settings
        The config whose secrets are removed.

    Returns
    -------
    str
        The message without them.
    """
    text = mask_secrets(text, settings_secrets(settings))
    if len(text) > MAX_STORED_ERROR:
        text = text[: MAX_STORED_ERROR - 1] + "…"
    return text


def settings_secrets(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> frozenset[str]:
    """Every secret value the config leads to, for masking.

    The config's own: a database URL's password, a hidden value (a webhook's
    URL, whose path is its secret), and the password and query string of a
    web URL held as plain text (a token endpoint, which messages name). Then
    those of the
    credentials the tool logs in with: the Google Ads credentials the
    ``google_ads`` section resolves (its file, the file
    ``GOOGLE_ADS_CONFIGURATION_FILE_PATH`` names, or the ``GOOGLE_ADS_*``
    variables) and the service account key they may name; a
    ``conversion_upload`` feed's ``google-ads.yaml``; a ``data_manager``
    feed's key file, or without one the file ``GOOGLE_APPLICATION_CREDENTIALS``
    names. Credentials that cannot be read are left out: whatever reads them
    fails with its own error, which names no value.

    Parameters
    ----------
    settings
        The config.
    environ
        The environment the clients read; the process's when ``None``.

    Returns
    -------
    frozenset of str
        The secret values, none empty.
    """
    env = os.environ if environ is None else environ
    found = _config_secrets(settings)
    logins: list[GoogleAdsCredentials] = []
    if settings.google_ads is not None:
        with contextlib.suppress(GoogleAdsConfigError):
            logins.append(
                load_credentials(settings.google_ads, env, require_oauth=False)
            )
    feed = settings.feed
    if feed is not None and feed.sink == "conversion_upload" and feed.credentials:
        with contextlib.suppress(GoogleAdsConfigError):
            path = feed.credentials.expanduser()
            logins.append(credentials_from_file(path, require_oauth=False))
    for login in logins:
        found.update(login.secrets())
        if login.json_key_file_path is not None:
            found.update(key_file_secrets(login.json_key_file_path))
    if feed is not None and feed.sink == "data_manager":
        key_file = feed.credentials or (
            Path(env[_ADC_ENV]) if env.get(_ADC_ENV) else None
        )
        if key_file is not None:
            found.update(key_file_secrets(key_file))
    return frozenset(found - {""})


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets``, and every URL password, as ``***``.

    A secret is also masked percent-encoded, as a form body quotes it. Values
    shorter than :data:`MIN_MASKED_SECRET` characters are left.

    Unlike :func:`without_secrets`, the text is kept whole (a traceback in a
    log, say); ``secrets`` are usually :func:`settings_secrets`.
    """
    kept = {secret for secret in secrets if len(secret) >= MIN_MASKED_SECRET}
    # A token endpoint that echoes a refused request quotes its form body,
    # where a refresh token's slashes (``1//...``) are percent-encoded.
    kept |= {
        encoded
        for secret in list(kept)
        for encoded in (
            urllib.parse.quote(secret, safe=""),
            urllib.parse.quote_plus(secret, safe=""),
        )
    }
    for secret in sorted(kept, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


class SecretMask(logging.Filter):
    """Mask secret values in a record's message, exception and stack.

    Attached to a logger, or to a handler to reach every record it writes:
    an exception may quote what was read or sent back (a token in a refused
    call, say), and a library logs it whole. The traceback is formatted
    here, masked, and kept in place of the exception.

    Parameters
    ----------
    secrets
        The values to mask, usually :func:`settings_secrets`.
    """

    def __init__(self, secrets: Collection[str]) -> None:
        super().__init__()
        self._secrets = secrets
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; it is always kept."""
        record.msg = mask_secrets(record.getMessage(), self._secrets)
        record.args = None
        if record.exc_info:
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info, self._secrets)
        return True


def _config_secrets(value: object) -> set[str]:
    if isinstance(value, SecretStr):
        return {value.get_secret_value()} - {""}
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return set().union(*(_config_secrets(getattr(value, f)) for f in fields))
    if isinstance(value, Mapping):
        return set().union(*(_config_secrets(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(_config_secrets(v) for v in value))
    if isinstance(value, str) and "://" in value:
        if value.lower().startswith(("http://", "https://")):
            # A web URL held as plain text (a token endpoint, say) is shown
            # in messages; only what may carry a key in it is a secret. A
            # webhook's whole URL is its secret, and is held hidden above.
            parts = urllib.parse.urlsplit(value)
            return {p for p in (parts.password, parts.query) if p}
        try:
            password = make_url(value).password
        except ArgumentError:
            return set()
        return {str(password)} if password else set()
    return set()


def secrets_mask(settings: Settings) -> Callable[[str], str]:
    """A function giving a text with every secret of ``settings`` masked.

    The secrets are found once, here (see :func:`settings_secrets`), and each
    call masks them and every URL password (see :func:`mask_secrets`),
    keeping the text whole.

    Parameters
    ----------
    settings
        The config whose secrets are masked.

    Returns
    -------
    Callable[[str], str]
        The masking function.
    """
    secrets = settings_secrets(settings)

    def mask(text: str) -> str:
        return mask_secrets(text, secrets)

    return mask
