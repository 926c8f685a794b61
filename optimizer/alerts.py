"""Alerts: a Slack-compatible JSON webhook told of failures and big changes.

An alert that cannot be delivered is logged and dropped: announcing an
outcome must never change it. The webhook URL is a secret (anyone holding it
can post to the channel), so it is never logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from typing import Protocol

from config.schema import AlertSettings, check_webhook_url

logger = logging.getLogger(__name__)


class AlertSink(Protocol):
    """Where alerts go."""

    def send(self, text: str) -> None:
        """Deliver one alert; never raise."""


class NoAlerts:
    """The sink used when no webhook is configured."""

    def send(self, text: str) -> None:
        """Drop the alert (it is in the log already)."""


class WebhookAlerts:
    """Post each alert as ``{"text": ...}`` JSON to an incoming webhook.

    Parameters
    ----------
    url
        The webhook URL (http or https).
    timeout_seconds
        How long one post may take before it is given up.

    Raises
    ------
    ValueError
        The URL is not http or https, or names no host (see
        :func:`config.schema.check_webhook_url`; the config is checked so
        when it is read).
    """

    def __init__(self, url: str, timeout_seconds: float = 10.0) -> None:
        self._url = check_webhook_url(url)
        self._timeout = timeout_seconds

    def send(self, text: str) -> None:
        """Post the alert; a delivery failure is logged, not raised."""
        body = json.dumps({"text": text}).encode("utf-8")
        request = urllib.request.Request(
            self._url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                status = response.status
        except (OSError, http.client.HTTPException, ValueError) as exc:
            logger.warning("alert not delivered: %s", _without_url(exc))
            return
        logger.debug("alert delivered (HTTP %d)", status)


def alerts_from(settings: AlertSettings) -> AlertSink:
    """The sink the alert settings ask for."""
    if settings.webhook_url is None:
        return NoAlerts()
    return WebhookAlerts(
        settings.webhook_url.get_secret_value(), settings.timeout_seconds
    )


#: Set on an error whose alert went out, so that no caller announces it again.
_ALERTED = "valuebid_alerted"


def alert_failure(sink: AlertSink, error: BaseException, text: str) -> None:
    """Announce ``error`` with ``text``, once however many callers see it fail.

    The cycle announces its own failure with the account and the day; the
    scheduler, seeing the same error leave the job, then stays silent. An
    alert that cannot be sent is logged: it never replaces ``error``, which
    the caller is about to raise.
    """
    if getattr(error, _ALERTED, False):
        return
    setattr(error, _ALERTED, True)
    try:
        sink.send(text)
    except Exception as exc:
        logger.error("failure alert not delivered: %s", _without_url(exc))


def _without_url(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return type(exc).__name__
