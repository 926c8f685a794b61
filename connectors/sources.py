"""Where each canonical table is read from: files, globs, SQL tables or queries.

These models are the ``data:`` section of the config. A table's source is
written either as a bare path (the simple form) or as a mapping::

    data:
      users: exports/users.csv              # one file
      revenue: {path: "exports/revenue-*.csv.gz"}   # a glob of files
      events: {table: analytics.events}     # a table at data.url
      campaign_stats:
        url: postgresql+psycopg://reader@127.0.0.1/dwh
        query: select * from ads.campaign_daily
      url: sqlite:///warehouse.db           # default URL of SQL sources
      fx: {path: fx_rates.csv}              # currency, rate
      quarantine: {max_share: 0.01}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

#: Rows per chunk when reading; bounds the memory one chunk takes.
DEFAULT_CHUNK_ROWS = 100_000


#: The password of a URL's user, up to the last ``@`` (a password may hold one).
_URL_PASSWORD = re.compile(r"(?P<head>://[^/@:\s]*:)\S*@")


def shown_url(url: str) -> str:
    """``url`` as messages show it: ``user:***@host``, even when it does not parse."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _URL_PASSWORD.sub(r"\g<head>***@", url)


def check_database_url(url: str) -> str:
    """Check that ``url`` parses as a SQLAlchemy URL.

    Raises
    ------
    ValueError
        It does not. The message does not repeat the URL, which may hold a
        password; see :func:`shown_url` for how it may be shown.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError):
        msg = (
            "not a SQLAlchemy URL (expected dialect+driver://user:password@host/"
            "database, or sqlite:///path)"
        )
        raise ValueError(msg) from None
    return url


#: A SQLAlchemy URL, checked when the config is read.
DatabaseUrl = Annotated[str, AfterValidator(check_database_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSource(_Strict):
    """A CSV or Parquet file, or a glob of them; compressed files are read too."""

    path: Path
    encoding: str = "UTF-8"

    def describe(self) -> str:
        """The source as messages name it."""
        return str(self.path)


class SqlSource(_Strict):
    """A table or a query behind a SQLAlchemy URL."""

    url: DatabaseUrl | None = Field(
        default=None, description="SQLAlchemy URL; defaults to data.url."
    )
    table: str | None = Field(
        default=None, description="Table name, optionally schema-qualified."
    )
    query: str | None = Field(default=None, description="A SELECT returning the rows.")
    incremental_column: str | None = Field(
        default=None,
        description=(
            "A column that grows as rows are loaded or changed (e.g. loaded_at); "
            "when set, each run reads only rows past the last one seen and keeps "
            "the earlier ones in the state folder."
        ),
    )
    chunk_rows: Annotated[int, Field(ge=1)] = DEFAULT_CHUNK_ROWS

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            msg = "give exactly one of 'table' or 'query'"
            raise ValueError(msg)
        return self

    def describe(self) -> str:
        """The source as messages name it (never with a password)."""
        what = f"table {self.table}" if self.table else "query"
        return f"{_safe_url(self.url)} {what}" if self.url else what


def _simple_form(value: Any) -> Any:
    if isinstance(value, str | Path):
        return {"path": value}
    return value


Source = Annotated[FileSource | SqlSource, BeforeValidator(_simple_form)]


def _is_currency_code(code: str) -> bool:
    """Three ASCII letters, in either case: exports such as Stripe's write ``usd``."""
    return len(code) == 3 and code.isascii() and code.isalpha()


class FxSettings(_Strict):
    """The exchange rates into the account currency.

    The table has columns ``currency`` and ``rate`` (account-currency units
    per one unit of ``currency``), and optionally ``date`` (the day a rate
    starts to apply). Revenue in a currency the table lacks is refused.
    """

    source: Source | None = None
    rates: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)

    @field_validator("rates")
    @classmethod
    def _codes(cls, value: dict[str, float]) -> dict[str, float]:
        codes: dict[str, float] = {}
        for code, rate in value.items():
            if not _is_currency_code(code):
                msg = f"currency {code!r} is not an ISO 4217 code like 'USD'"
                raise ValueError(msg)
            if code.upper() in codes:
                msg = f"currency {code.upper()!r} is given twice"
                raise ValueError(msg)
            codes[code.upper()] = rate
        return codes


class QuarantineSettings(_Strict):
    """What happens to rows that break their contract."""

    max_share: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.01,
        description=(
            "Largest share of a table's rows that may be quarantined before the "
            "run fails; 0 refuses any bad row."
        ),
    )
    directory: Path | None = Field(
        default=None, description="Where quarantine files go; default state folder."
    )


class DataSettings(_Strict):
    """Where the canonical input tables are read from, and how they are checked."""

    users: Source
    revenue: Source
    campaign_stats: Source | None = Field(
        default=None,
        description="Campaign stats; unset reads them from the google_ads accounts.",
    )
    events: Source | None = None
    url: DatabaseUrl | None = Field(
        default=None, description="Default SQLAlchemy URL of SQL sources."
    )
    naive_time_zone: str | None = Field(
        default=None,
        description="Zone of timestamps written without one; unset rejects them.",
    )
    max_amount: Annotated[float, Field(gt=0)] = Field(
        default=10_000_000.0,
        description="Largest single payment or refund believed, account currency.",
    )
    fx: FxSettings = FxSettings()
    quarantine: QuarantineSettings = QuarantineSettings()

    @field_validator("naive_time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                msg = f"unknown IANA time zone {value!r} (e.g. 'Europe/Paris')"
                raise ValueError(msg) from exc
        return value

    @model_validator(mode="after")
    def _sql_sources_have_url(self) -> DataSettings:
        for name, source in self.sources().items():
            if isinstance(source, SqlSource) and not (source.url or self.url):
                msg = f"data.{name} reads SQL but neither it nor data.url has a url"
                raise ValueError(msg)
        return self

    def sources(self) -> dict[str, FileSource | SqlSource]:
        """Each configured table's source, by canonical table name."""
        found: dict[str, FileSource | SqlSource] = {
            "users": self.users,
            "revenue": self.revenue,
        }
        if self.campaign_stats is not None:
            found["campaign_stats"] = self.campaign_stats
        if self.events is not None:
            found["events"] = self.events
        return found

    def url_of(self, source: SqlSource) -> str:
        """The URL a SQL source connects to."""
        url = source.url or self.url
        if url is None:
            raise ValueError("a SQL source has no url")
        return url


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable url)"
