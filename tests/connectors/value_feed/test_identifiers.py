"""Hashed identifiers follow Google's "Format user data" rules.

Source of the rules: Data Manager API guide "Format user data",
https://developers.google.com/data-manager/api/devguides/concepts/formatting
(the Google Ads API enhanced-conversions guide gives the same ones). The
expected normalized strings below are written by hand from those rules; the
expected digests were computed once with coreutils ``sha256sum`` of the
normalized text (no trailing newline).
"""

from __future__ import annotations

import pytest

from connectors.value_feed.identifiers import (
    hashed_email,
    hashed_phone,
    normalize_email,
    normalize_phone,
)

JANEDOE_GMAIL = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
JANE_EXAMPLE = "edcd734b50394ce7a26ff7fe1408eeac189753375b54286c93049c72767a7b40"
US_PHONE = "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"
FR_PHONE = "42d573cfc315801d4cd8eddd5416b416a0bf298b9b9e12d6b07442c91db42bd8"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        # Lower case, whitespace gone (leading, trailing and inside).
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("jane doe@example.com", "janedoe@example.com"),
        # gmail.com / googlemail.com: dots and the +suffix of the local part go.
        ("Jane.Doe+ads@gmail.com", "janedoe@gmail.com"),
        ("j.a.n.e.doe@GoogleMail.com", "janedoe@googlemail.com"),
        # Other domains keep dots and plus signs.
        ("Jane.Doe+ads@Example.com", "jane.doe+ads@example.com"),
    ],
)
def test_email_normalization(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize("raw", ["not-an-email", "@gmail.com", "jane@localhost"])
def test_malformed_email_is_not_sent(raw: str) -> None:
    assert normalize_email(raw) is None
    assert hashed_email(raw) is None


def test_email_digest_is_sha256_hex_of_the_normalized_text() -> None:
    assert hashed_email(" Jane.Doe+ads@GMAIL.com") == JANEDOE_GMAIL
    assert hashed_email("Jane.Doe+Ads@Example.com") == JANE_EXAMPLE


@pytest.mark.parametrize(
    ("raw", "region", "normalized"),
    [
        ("(800) 555-0100", "US", "+18005550100"),
        ("+1 800 555 0100", "FR", "+18005550100"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("0033 6 12 34 56 78", "DE", "+33612345678"),
    ],
)
def test_phone_normalization_is_e164(raw: str, region: str, normalized: str) -> None:
    assert normalize_phone(raw, region) == normalized


def test_phone_digest_is_sha256_hex_of_e164() -> None:
    assert hashed_phone("(800) 555-0100", "US") == US_PHONE
    assert hashed_phone("06 12 34 56 78", "FR") == FR_PHONE


@pytest.mark.parametrize("raw", ["12", "call me", ""])
def test_unreadable_phone_is_not_sent(raw: str) -> None:
    assert hashed_phone(raw, "FR") is None
