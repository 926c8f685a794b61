"""Settings of the Google Ads connector: accounts, credentials, retries.

The credentials themselves (developer token, OAuth client and refresh token)
come from a ``google-ads.yaml`` file or the ``GOOGLE_ADS_*`` environment
variables, the two places the official client documents; they are held as
``SecretStr`` so that no repr, log line or error message shows them.
"""

from __future__ import annotations

import os
import pkgutil
import re
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import google.ads.googleads
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from connectors.exceptions import GoogleAdsConfigError
from connectors.google_login import check_token_uri

ENV_PREFIX = "GOOGLE_ADS_"
CONFIGURATION_FILE_ENV = "GOOGLE_ADS_CONFIGURATION_FILE_PATH"
_INSTALLED_APP_KEYS = ("client_id", "client_secret", "refresh_token")
_CREDENTIAL_KEYS = (
    "developer_token",
    *_INSTALLED_APP_KEYS,
    "json_key_file_path",
    "impersonated_email",
    "login_customer_id",
    "linked_customer_id",
    "http_proxy",
    "use_application_default_credentials",
)
_VERSION_PACKAGE = re.compile(r"v(\d+)")


def newest_api_version() -> str:
    """The newest Google Ads API version the installed client library ships."""
    versions = [
        int(match[1])
        for module in pkgutil.iter_modules(google.ads.googleads.__path__)
        if module.ispkg and (match := _VERSION_PACKAGE.fullmatch(module.name))
    ]
    if not versions:
        raise GoogleAdsConfigError("the google-ads package ships no API version")
    return f"v{max(versions)}"


def normalize_customer_id(value: object) -> str:
    """Return a customer id as its 10 digits, accepting the ``123-456-7890`` form.

    Raises
    ------
    GoogleAdsConfigError
        If ``value`` is not ten digits once the dashes are removed.
    """
    text = str(value).strip().replace("-", "") if isinstance(value, str | int) else ""
    if isinstance(value, bool) or not (text.isdigit() and len(text) == 10):
        raise GoogleAdsConfigError(
            f"customer id {value!r} is not a Google Ads customer id: expected "
            "10 digits, e.g. 1234567890 or 123-456-7890"
        )
    return text


CustomerId = Annotated[str, BeforeValidator(normalize_customer_id)]


class CampaignMarketRule(BaseModel):
    """How the campaigns of one market are recognised.

    A campaign belongs to the market when its id is listed, else when its name
    matches ``name_pattern``, else when every country it targets is one of
    ``countries`` (by default the market's own key, if that is a country code).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_ids: list[str] = Field(default_factory=list)
    name_pattern: str | None = None
    countries: list[str] = Field(default_factory=list)

    @field_validator("campaign_ids", mode="before")
    @classmethod
    def _campaign_ids_are_digits(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        ids = [str(item).strip() for item in value]
        for item in ids:
            if not item.isdigit():
                raise ValueError(f"campaign id {item!r} is not a number")
        return ids

    @field_validator("name_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(
                    f"name_pattern {value!r} is not a regex: {exc}"
                ) from exc
        return value

    @field_validator("countries")
    @classmethod
    def _countries_are_codes(cls, value: list[str]) -> list[str]:
        codes = [code.strip().upper() for code in value]
        for code in codes:
            if not (len(code) == 2 and code.isalpha()):
                raise ValueError(f"country {code!r} is not an ISO 3166 alpha-2 code")
        return codes


class RetrySettings(BaseModel):
    """Bounded exponential backoff for unavailable, timed-out or quota errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=5, ge=1, le=10)
    initial_delay_seconds: float = Field(default=1.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    max_delay_seconds: float = Field(default=30.0, gt=0)


class GoogleAdsSettings(BaseModel):
    """The ``google_ads:`` section of the valuebid configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_ids: list[CustomerId] = Field(min_length=1)
    login_customer_id: CustomerId | None = None
    credentials_file: Path | None = None
    endpoint: str | None = None
    token_uri: str | None = Field(
        default=None,
        description="OAuth token endpoint the login goes to; Google's when "
        "unset. Moving only the endpoint leaves the login with Google.",
    )
    api_version: str = Field(default_factory=newest_api_version)
    retry: RetrySettings = Field(default_factory=RetrySettings)

    @field_validator("customer_ids")
    @classmethod
    def _each_customer_once(cls, value: list[str]) -> list[str]:
        # Each account is read separately; one listed twice would have its
        # campaign stats read twice.
        repeated = sorted({c for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(
                f"customer_ids lists {', '.join(repeated)} more than once "
                "(with or without dashes); list each account once"
            )
        return value

    @field_validator("token_uri")
    @classmethod
    def _token_uri_is_safe(cls, value: str | None) -> str | None:
        return check_token_uri(value)

    @field_validator("api_version")
    @classmethod
    def _version_is_shipped(cls, value: str) -> str:
        shipped = {
            module.name
            for module in pkgutil.iter_modules(google.ads.googleads.__path__)
            if _VERSION_PACKAGE.fullmatch(module.name)
        }
        if value not in shipped:
            raise ValueError(
                f"api_version {value!r} is not shipped by the installed google-ads "
                f"package (it has {', '.join(sorted(shipped))})"
            )
        return value


class GoogleAdsCredentials(BaseModel):
    """What the client needs to log in and reach the API, from a file or the env.

    Besides the login keys: the manager account making the calls
    (``login_customer_id``), the account they are made on behalf of
    (``linked_customer_id``, for a third-party app analytics link) and the
    http proxy the API calls go through (``http_proxy``), as the official
    client reads them.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    developer_token: SecretStr
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    json_key_file_path: Path | None = None
    impersonated_email: str | None = None
    login_customer_id: CustomerId | None = None
    linked_customer_id: CustomerId | None = None
    http_proxy: SecretStr | None = None
    use_application_default_credentials: bool = False
    source: str

    @field_validator("http_proxy", mode="before")
    @classmethod
    def _http_proxy_is_a_url(cls, value: object) -> str | None:
        return None if value is None else check_http_proxy(str(value))

    def login_hint(self) -> str:
        """The keys a refused login points at, named as the user wrote them."""
        name_of: Callable[[str], str] = (
            _env_name if self.source == "environment" else str
        )
        if self.use_application_default_credentials:
            return (
                "this machine's application default credentials "
                f"({name_of('use_application_default_credentials')} in the "
                f"{self.source})"
            )
        if self.json_key_file_path is not None:
            return (
                f"the service account key {self.json_key_file_path} "
                f"({name_of('json_key_file_path')}) and "
                f"{name_of('impersonated_email')} in the {self.source}"
            )
        client_id, secret, refresh = (name_of(k) for k in _INSTALLED_APP_KEYS)
        return (
            f"{client_id}, {secret} and {refresh} in the {self.source} (a "
            "refresh token stops working once revoked or left unused for six months)"
        )

    def secrets(self) -> tuple[str, ...]:
        """The secret values, the proxy's password included, for masking."""
        values = [
            secret.get_secret_value()
            for secret in (self.developer_token, self.client_secret, self.refresh_token)
            if secret is not None
        ]
        if self.http_proxy is not None:
            proxy = urllib.parse.urlsplit(self.http_proxy.get_secret_value())
            if proxy.password:
                values.append(proxy.password)
        return tuple(values)


def check_http_proxy(url: str) -> str:
    """Check that ``url`` names an http proxy as ``http://[user:password@]host:port``.

    gRPC tunnels through http proxies only, and skips a proxy it cannot parse
    or whose scheme is not ``http``, calling the API directly; so anything else
    is refused here rather than ignored there.

    Raises
    ------
    ValueError
        The URL is not of that form. The message never repeats the URL, which
        may hold the proxy's password.
    """
    text = url.strip()
    try:
        parts = urllib.parse.urlsplit(text)
        usable = (
            parts.scheme == "http"
            and bool(parts.hostname)
            and parts.port is not None
            and parts.path in ("", "/")
            and not parts.query
            and not parts.fragment
        )
    except ValueError:
        usable = False
    if not usable:
        raise ValueError(
            "not an http proxy URL: expected http://host:port or "
            "http://user:password@host:port (gRPC reaches proxies over http only)"
        )
    return text


def load_credentials(
    settings: GoogleAdsSettings,
    environ: Mapping[str, str] | None = None,
    *,
    require_oauth: bool = True,
) -> GoogleAdsCredentials:
    """Resolve credentials from ``settings.credentials_file`` or the environment.

    The file named in the settings wins; then a file named by
    ``GOOGLE_ADS_CONFIGURATION_FILE_PATH``; then the ``GOOGLE_ADS_*``
    variables. Nothing is sent anywhere: a missing key fails here. With
    ``require_oauth`` false only the developer token is required (the caller
    brings its own OAuth credentials).

    Raises
    ------
    GoogleAdsConfigError
        If the file is unreadable, or the developer token or both OAuth flows
        (installed app: client id, secret and refresh token; service account:
        key file) are incomplete. The message names the keys, never a value.
    """
    env = os.environ if environ is None else environ
    path = settings.credentials_file or (
        Path(env[CONFIGURATION_FILE_ENV]) if env.get(CONFIGURATION_FILE_ENV) else None
    )
    if path is not None:
        return credentials_from_file(
            path,
            login_customer_id=settings.login_customer_id,
            require_oauth=require_oauth,
        )
    values = {
        key: env[_env_name(key)] for key in _CREDENTIAL_KEYS if env.get(_env_name(key))
    }
    return _resolve(
        values, "environment", _env_name, settings.login_customer_id, require_oauth
    )


def credentials_from_file(
    path: Path, *, login_customer_id: str | None = None, require_oauth: bool = True
) -> GoogleAdsCredentials:
    """Read the credentials of a ``google-ads.yaml`` file; nothing is sent.

    Parameters
    ----------
    path
        The file.
    login_customer_id
        The manager account, overriding the file's.
    require_oauth
        Require the OAuth keys (installed app or service account) as well as
        the developer token.

    Raises
    ------
    GoogleAdsConfigError
        The file is unreadable, or a required key is missing or invalid. The
        message names the keys, never a value.
    """
    return _resolve(
        _read_credentials_file(path),
        f"credentials file {path}",
        str,
        login_customer_id,
        require_oauth,
    )


def check_credentials_file(settings: GoogleAdsSettings) -> None:
    """Read the file ``google_ads.credentials_file`` names as a run would.

    Nothing is sent: the file must exist, be readable YAML and hold the keys
    a run logs in with. Without a file named in the settings there is
    nothing to check (the credentials then come from the environment).

    Parameters
    ----------
    settings
        The ``google_ads:`` section of the config.

    Raises
    ------
    GoogleAdsConfigError
        The file is unreadable or a key is missing or invalid; the message
        names ``google_ads.credentials_file`` and the file's absolute path,
        never a value.
    """
    if settings.credentials_file is None:
        return
    try:
        credentials_from_file(
            settings.credentials_file.absolute(),
            login_customer_id=settings.login_customer_id,
        )
    except GoogleAdsConfigError as exc:
        raise GoogleAdsConfigError(f"google_ads.credentials_file: {exc}") from exc


def _shown(path: Path) -> str:
    """``path``, and the absolute path it stands for when it is relative."""
    if path.is_absolute():
        return str(path)
    return f"{path} (resolved to {path.absolute()})"


def _resolve(
    values: dict[str, Any],
    source: str,
    name_of: Callable[[str], str],
    login_customer_id: str | None,
    require_oauth: bool,
) -> GoogleAdsCredentials:
    missing = _missing_keys(values, require_oauth)
    if missing:
        raise GoogleAdsConfigError(
            f"Google Ads credentials incomplete in the {source}: set "
            f"{' and '.join(name_of(k) for k in missing)}"
        )
    if login_customer_id is not None:
        values["login_customer_id"] = login_customer_id
    try:
        return GoogleAdsCredentials(**values, source=source)
    except ValidationError as exc:
        fields = ", ".join(
            f"{name_of(str(e['loc'][0]))}: {e['msg']}" for e in exc.errors()
        )
        raise GoogleAdsConfigError(
            f"Google Ads credentials in the {source} are invalid: {fields}"
        ) from None


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


def _read_credentials_file(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GoogleAdsConfigError(
            f"cannot read Google Ads credentials file {_shown(path)}: {exc.strerror}"
        ) from exc
    except yaml.YAMLError as exc:
        raise GoogleAdsConfigError(
            f"Google Ads credentials file {_shown(path)} is not valid YAML"
        ) from exc
    if not isinstance(document, dict):
        raise GoogleAdsConfigError(
            f"Google Ads credentials file {_shown(path)} must hold a mapping of keys"
        )
    return {
        key: str(document[key])
        for key in _CREDENTIAL_KEYS
        if document.get(key) not in (None, "")
    }


def _missing_keys(values: Mapping[str, Any], require_oauth: bool) -> list[str]:
    missing = [] if values.get("developer_token") else ["developer_token"]
    if not require_oauth or values.get("json_key_file_path"):
        return missing
    if str(values.get("use_application_default_credentials", "")).lower() in (
        "true",
        "1",
        "yes",
    ):
        return missing
    return missing + [key for key in _INSTALLED_APP_KEYS if not values.get(key)]
