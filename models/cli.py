"""Command-line commands of the pLTV model: train, score, evaluate."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from models.estimator import LOSS_OPTIONS
from models.evaluation import (
    GATE_AGES,
    evaluate_holdout,
    labelled_users,
    split_users,
)
from models.exceptions import ModelError
from models.features import DEFAULT_AGES
from models.frames import prepare_events, prepare_revenue, prepare_users
from models.metrics import METRIC_NAMES
from models.pltv import PLTVModel
from models.registry import ModelRegistry

logger = logging.getLogger(__name__)

model_app = typer.Typer(help="Train, score and evaluate the pLTV model.")

TIMESTAMP_COLUMNS = {
    "users": ("signup_at", "activated_at"),
    "revenue": ("occurred_at",),
    "events": ("occurred_at",),
}
_STRING_COLUMNS = {"user_id": "string", "order_id": "string", "campaign_id": "string"}

UsersOption = Annotated[Path, typer.Option("--users", help="users table (CSV/Parquet)")]
RevenueOption = Annotated[
    Path, typer.Option("--revenue", help="revenue table (CSV/Parquet)")
]
EventsOption = Annotated[
    Path | None, typer.Option("--events", help="optional events table")
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="YYYY-MM-DD (UTC); default: the latest revenue date",
    ),
]


_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")


def read_table(path: Path, table: str) -> pd.DataFrame:
    """Read a canonical CSV or Parquet file, timestamp columns parsed to UTC.

    Raises
    ------
    typer.BadParameter
        The file is missing, of another format, or holds a bad timestamp; the
        message names the file, the column and the value.
    """
    if not path.exists():
        raise typer.BadParameter(f"{path}: no such file")
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes[-1:] == [".parquet"]:
        frame = pd.read_parquet(path)
    elif ".csv" in suffixes and suffixes[-1] in (".csv", *_COMPRESSED):
        frame = pd.read_csv(path, dtype=_STRING_COLUMNS)
    else:
        raise typer.BadParameter(
            f"{path}: expected a .csv file (optionally .gz, .bz2, .zip, .xz or "
            ".zst) or a .parquet file"
        )
    for column in TIMESTAMP_COLUMNS[table]:
        if column not in frame.columns:
            continue
        values = frame[column]
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
        bad = parsed.isna() & values.notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise typer.BadParameter(
                f"{path}: column {column!r} row {row + 1}: "
                f"{values.iloc[row]!r} is not a timestamp"
            )
        frame[column] = parsed
    return frame


def _parse_as_of(value: str | None, revenue: pd.DataFrame) -> pd.Timestamp:
    if value is None:
        return pd.Timestamp(revenue["occurred_at"].max())
    try:
        # ISO 8601 only: a free parse reads 04/12/2026 as April 12th.
        stamp = pd.Timestamp(pd.to_datetime(value, format="ISO8601"))
    except ValueError as error:
        raise typer.BadParameter(
            f"--as-of {value!r} is not an ISO 8601 date (YYYY-MM-DD, or "
            "YYYY-MM-DDTHH:MM:SS with an optional zone)"
        ) from error
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


OUTPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def _output_path(path: Path) -> Path:
    """``path`` if the scores can be written there: a known format, in a folder
    that exists (checked before scoring, so a long scoring is not lost)."""
    if not path.name.lower().endswith(OUTPUT_SUFFIXES):
        raise typer.BadParameter(
            f"{path}: --out must end in {', '.join(OUTPUT_SUFFIXES)}",
            param_hint="--out",
        )
    if not path.parent.is_dir():
        raise typer.BadParameter(
            f"{path}: folder {path.parent} does not exist", param_hint="--out"
        )
    return path


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.name.lower().endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def _fail(error: ModelError) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code=1)


@model_app.command()
def train(
    users: UsersOption,
    revenue: RevenueOption,
    out: Annotated[Path, typer.Option("--out", help="directory of the artefact")],
    events: EventsOption = None,
    as_of: AsOfOption = None,
    loss: Annotated[
        str, typer.Option(help="auto, relative, poisson or hurdle")
    ] = "auto",
) -> None:
    """Train a model on the users with a full year of history and save it."""
    if loss not in LOSS_OPTIONS:
        raise typer.BadParameter(f"--loss must be one of {', '.join(LOSS_OPTIONS)}")
    user_table = read_table(users, "users")
    revenue_table = read_table(revenue, "revenue")
    event_table = read_table(events, "events") if events else None
    try:
        model = PLTVModel(loss=loss).fit(
            user_table, revenue_table, _parse_as_of(as_of, revenue_table), event_table
        )
    except ModelError as error:
        raise _fail(error) from error
    path = model.save(out)
    typer.echo(f"model {model.version} saved to {path}")
    ages = ", ".join(map(str, model.gate_ages))
    typer.echo(
        f"  holdout means over ages {ages} (total error as absolute value; "
        "per age: valuebid model evaluate):"
    )
    for metric in METRIC_NAMES:
        typer.echo(f"  holdout {metric}: {model.metrics[metric]:.3f}")
    typer.echo(_gate_verdict(model))


def _gate_verdict(model: PLTVModel) -> str:
    if not model.gate_failures:
        return "  quality gate: passed (it may become current)"
    return (
        "  quality gate: FAILED; a run scoring with this model holds every "
        "target: " + "; ".join(model.gate_failures)
    )


def _model_at(directory: Path) -> PLTVModel:
    """The model in a version folder, or the current one of a registry folder."""
    if (directory / "CURRENT").exists():
        current = ModelRegistry(directory).current()
        if current is not None:
            return current
    return PLTVModel.load(directory)


@model_app.command()
def score(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            help="a model version's folder, or a registry folder (its current model)",
        ),
    ],
    users: UsersOption,
    revenue: RevenueOption,
    as_of: Annotated[
        str, typer.Option("--as-of", help="scoring date, YYYY-MM-DD (UTC)")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="output file: .csv, .csv.gz or .parquet")
    ],
    events: EventsOption = None,
) -> None:
    """Score every user signed up by the as-of date."""
    out = _output_path(out)
    user_table = read_table(users, "users")
    revenue_table = read_table(revenue, "revenue")
    event_table = read_table(events, "events") if events else None
    try:
        fitted = _model_at(model)
        scores = fitted.predict(
            user_table, revenue_table, _parse_as_of(as_of, revenue_table), event_table
        )
    except ModelError as error:
        raise _fail(error) from error
    _write(scores, out)
    typer.echo(f"{len(scores)} users scored with model {fitted.version} into {out}")
    if fitted.gate_failures:
        typer.echo(
            f"warning: model {fitted.version} failed its quality gate: "
            + "; ".join(fitted.gate_failures),
            err=True,
        )


@model_app.command()
def evaluate(
    users: UsersOption,
    revenue: RevenueOption,
    events: EventsOption = None,
    as_of: AsOfOption = None,
    split: Annotated[str, typer.Option(help="time or random")] = "time",
    holdout_share: Annotated[float, typer.Option(help="share held out")] = 0.3,
    ages: Annotated[
        str, typer.Option(help="ages reported, comma-separated")
    ] = ",".join(map(str, GATE_AGES)),
    seed: Annotated[int, typer.Option(help="seed of the random split")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Fit on earlier sign-ups, measure on the held-out ones, next to baselines."""
    if split not in ("time", "random"):
        raise typer.BadParameter("--split must be time or random")
    try:
        eval_ages = [int(a) for a in ages.split(",") if a.strip()]
    except ValueError as error:
        raise typer.BadParameter(f"--ages {ages!r}: expected integers") from error
    user_table = read_table(users, "users")
    revenue_table = read_table(revenue, "revenue")
    event_table = read_table(events, "events") if events else None
    stamp = _parse_as_of(as_of, revenue_table)
    try:
        prepared = prepare_users(user_table)
        prepared = prepared.loc[prepared["signup_at"] <= stamp]
        money = prepare_revenue(revenue_table, prepared)
        money = money.loc[money["occurred_at"] <= stamp]
        acts = prepare_events(event_table, prepared)
        train_users, test_users = split_users(
            labelled_users(prepared, stamp),
            "random" if split == "random" else "time",
            holdout_share,
            seed,
        )
        report = evaluate_holdout(
            train_users,
            test_users,
            money,
            acts,
            split=split,
            ages=sorted({*DEFAULT_AGES, *eval_ages}),
            eval_ages=eval_ages,
            random_state=seed,
        )
    except ModelError as error:
        raise _fail(error) from error
    typer.echo(report.to_json() if as_json else report.table())
    if not as_json:
        failures = report.beats_baselines(eval_ages)
        verdict = "beats every baseline" if not failures else "; ".join(failures)
        typer.echo(f"model: {verdict}")
    logger.debug("evaluation %s", json.dumps(report.flat(eval_ages)))
