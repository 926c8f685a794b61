"""Normalize and hash the user-provided identifiers sent with a conversion.

The rules are those of the Data Manager API's "Format user data" guide
(https://developers.google.com/data-manager/api/devguides/concepts/formatting),
which the Google Ads API's enhanced-conversions guide shares:

- email: drop every whitespace character, lower-case; for ``gmail.com`` and
  ``googlemail.com`` only, drop the dots of the local part and a ``+`` with
  everything after it. Other domains keep their dots and plus signs.
- phone: E.164 (a ``+``, the country calling code, digits only).
- both: SHA-256 of the normalized text, as lower-case hex.
"""

from __future__ import annotations

import hashlib
import re

import phonenumbers

_WHITESPACE = re.compile(r"\s+")
_GOOGLE_MAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def normalize_email(raw: str) -> str | None:
    """The email in Google's normalized form, or ``None`` when it is not an email.

    Examples
    --------
    >>> normalize_email(" Jane.Doe+ads@GoogleMail.com ")
    'janedoe@googlemail.com'
    >>> normalize_email("Jane.Doe+ads@Example.com")
    'jane.doe+ads@example.com'
    """
    text = _WHITESPACE.sub("", raw).lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain:
        return None
    if domain in _GOOGLE_MAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def normalize_phone(raw: str, region: str | None) -> str | None:
    """The phone number in E.164, or ``None`` when it cannot be read as one.

    A number written without its country code is read as a number of
    ``region`` (the user's ISO 3166 alpha-2 country), so ``06 12 34 56 78``
    in ``FR`` becomes ``+33612345678``.

    Examples
    --------
    >>> normalize_phone("(800) 555-0100", "US")
    '+18005550100'
    >>> normalize_phone("0044 20 7946 0958", "FR")
    '+442079460958'
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sha256_hex(normalized: str) -> str:
    """SHA-256 of the UTF-8 text, lower-case hex: the encoding Google accepts."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def hashed_email(raw: str | None) -> str | None:
    """Normalized, hashed email; ``None`` for an empty or malformed one."""
    if raw is None or not raw.strip():
        return None
    normalized = normalize_email(raw)
    return sha256_hex(normalized) if normalized is not None else None


def hashed_phone(raw: str | None, region: str | None) -> str | None:
    """Normalized (E.164), hashed phone; ``None`` for an empty or unreadable one."""
    if raw is None or not raw.strip():
        return None
    normalized = normalize_phone(raw, region)
    return sha256_hex(normalized) if normalized is not None else None
