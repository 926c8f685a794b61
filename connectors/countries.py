"""ISO 3166 alpha-2 country codes, for warnings about users' ``country``.

The list is the one the time-zone database ships (``iso3166.tab`` of the
``tzdata`` package), so it follows the standard without a copy kept here.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

# Codes people write for a country whose ISO code is another.
_COMMON_MISTAKES = {"UK": "GB", "EN": "GB", "EL": "GR"}


@cache
def iso_country_codes() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 code, as the time-zone database lists them."""
    table = resources.files("tzdata.zoneinfo").joinpath("iso3166.tab")
    codes = {
        line.split("\t", 1)[0].strip()
        for line in table.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    return frozenset(codes)


def unknown_countries(country: pd.Series) -> dict[str, int]:
    """Users per value of ``country`` that is not an ISO 3166 alpha-2 code.

    Missing values are not counted: a user's country is optional.
    """
    known = iso_country_codes()
    values = country.dropna().astype(str)
    counts = values[~values.isin(known)].value_counts()
    return {str(code): int(n) for code, n in counts.items()}


def country_hint(code: str) -> str:
    """What to write instead of ``code``, when it is a common mistake."""
    fix = _COMMON_MISTAKES.get(code.upper())
    return f" (use {fix!r})" if fix else ""
