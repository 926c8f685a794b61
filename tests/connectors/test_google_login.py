"""Logging in with real google.auth credentials against loopback token endpoints."""

from __future__ import annotations

import socket
import threading

import pytest
from google.oauth2.credentials import Credentials

from connectors import google_login
from connectors.exceptions import LoginError
from connectors.google_login import check_token_uri, log_in, with_token_uri
from tests.fakes.token_endpoint import ACCESS_TOKEN, closed_token_uri, token_endpoint

CLIENT_SECRET = "client-secret-not-real-4242"
REFRESH_TOKEN = "1//refresh-token-not-real-4242"


def user_credentials(token_uri: str) -> Credentials:
    return Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=REFRESH_TOKEN,
        client_id="client-id.apps.example",
        client_secret=CLIENT_SECRET,
        token_uri=token_uri,
    )


def login(credentials: Credentials) -> None:
    log_in(
        credentials,
        api="the Example API",
        token_setting="example.token_uri",
        credentials_hint="the keys in example.yaml",
        secrets=(CLIENT_SECRET, REFRESH_TOKEN),
    )


@pytest.mark.parametrize(
    "value",
    [
        "https://oauth2.googleapis.com/token",
        "http://127.0.0.1:8080/token",
        "http://localhost:9/token",
        "http://[::1]:9/token",
    ],
)
def test_a_token_endpoint_is_https_or_on_this_machine(value: str) -> None:
    assert check_token_uri(value) == value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://oauth.example.com/token", "unencrypted"),
        ("https://user:pw@oauth.example.com/token", "user name or password"),
        ("oauth.example.com/token", "is not an http"),
        ("ftp://127.0.0.1/token", "is not an http"),
    ],
)
def test_other_token_endpoints_are_refused(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_token_uri(value)


def test_an_unreachable_endpoint_is_a_transient_login_error() -> None:
    uri = closed_token_uri()

    with pytest.raises(LoginError) as raised:
        login(user_credentials(uri))

    message = str(raised.value)
    assert raised.value.transient
    assert message.startswith("login to the Example API failed")
    assert f"{uri} could not be reached (Connection refused)" in message
    assert "example.token_uri" in message
    assert "\n" not in message


def test_refused_credentials_name_where_they_come_from_and_no_secret() -> None:
    with token_endpoint(refuse=True) as endpoint, pytest.raises(LoginError) as raised:
        login(user_credentials(endpoint.url))

    message = str(raised.value)
    assert not raised.value.transient
    assert "refused the credentials (invalid_grant" in message
    assert "Check the keys in example.yaml." in message
    # The endpoint echoed the request back; the message masks the secrets.
    assert REFRESH_TOKEN in str(endpoint.requests)
    assert REFRESH_TOKEN not in message and CLIENT_SECRET not in message


def test_a_valid_token_is_used_until_it_expires() -> None:
    with token_endpoint() as endpoint:
        credentials = user_credentials(endpoint.url)
        login(credentials)
        login(credentials)

    assert credentials.token == ACCESS_TOKEN
    assert len(endpoint.requests) == 1
    assert endpoint.requests[0]["grant_type"] == "refresh_token"


def test_a_token_endpoint_that_never_answers_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A listener that takes the connection and never replies: without a
    # bound of its own the login would wait google.auth's two minutes.
    monkeypatch.setattr(google_login, "LOGIN_TIMEOUT_SECONDS", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}/token"

        errors: list[BaseException] = []

        def attempt() -> None:
            try:
                login(user_credentials(uri))
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        # Far above the bound set here, far below the two-minute default.
        worker.join(30)
        assert not worker.is_alive(), "the login kept waiting on a silent endpoint"

    assert len(errors) == 1 and isinstance(errors[0], LoginError)
    assert errors[0].transient
    assert f"{uri} gave no answer within 0.5 s" in str(errors[0])


@pytest.mark.parametrize("id_length", range(20, 200, 9))
def test_no_part_of_a_secret_survives_the_cut_of_a_long_refusal(
    id_length: int,
) -> None:
    # The refusal quotes the request; a long client id pushes the secrets
    # to where the reason is cut, and a cut secret must not show either.
    credentials = Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token="QZX-refresh-secret-0000",
        client_id="c" * id_length,
        client_secret="QZY-client-secret-0000",
    )
    with token_endpoint(refuse=True) as endpoint, pytest.raises(LoginError) as raised:
        log_in(
            with_token_uri(credentials, endpoint.url),
            api="the Example API",
            token_setting="example.token_uri",
            credentials_hint="the keys in example.yaml",
            secrets=("QZX-refresh-secret-0000", "QZY-client-secret-0000"),
        )

    assert "QZ" not in str(raised.value)
