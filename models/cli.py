"""Command-line commands of the pLTV model: train, score, evaluate."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from pydantic import ValidationError

from connectors.exceptions import ContractError, InputError
from connectors.files import CustomerTables, load_customer_tables
from connectors.quarantine import TableAudit
from connectors.sources import DataSettings, FileSource, QuarantineSettings
from models.estimator import LOSS_OPTIONS
from models.evaluation import (
    GATE_AGES,
    GOAL_METRICS,
    evaluate_holdout,
    labelled_users,
    split_users,
)
from models.exceptions import ModelError
from models.features import DEFAULT_AGES
from models.frames import prepare_events, prepare_revenue, prepare_users
from models.metrics import METRIC_NAMES
from models.pltv import (
    ARTEFACT_FILES,
    ARTEFACT_FORMAT,
    MAX_TRAIN_USERS,
    MIN_LABELLED_USERS,
    PLTVModel,
    holdout_gate,
    require_labelled_users,
)
from models.registry import CURRENT_FILE, DECISIONS_FILE, ModelRegistry, is_registry

logger = logging.getLogger(__name__)

model_app = typer.Typer(help="Train, score and evaluate the pLTV model.")

#: Exit status of ``model train`` when the model it saved failed its quality
#: gate. 1 is an error and 2 a bad option or input (click's usage errors), so
#: a script or scheduler can tell a refused model from a run that broke.
EXIT_GATE_FAILED = 3

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
CurrencyOption = Annotated[
    str | None,
    typer.Option(
        "--currency",
        help=(
            "ISO 4217 code of the amounts; revenue in another currency is "
            "quarantined (no exchange rates); default: the revenue's most "
            "frequent currency"
        ),
    ),
]
NaiveZoneOption = Annotated[
    str | None,
    typer.Option(
        "--naive-time-zone",
        help=(
            "IANA zone of timestamps written without one (e.g. Europe/Paris); "
            "default: such rows are quarantined"
        ),
    ),
]
QuarantineOption = Annotated[
    Path,
    typer.Option(
        "--quarantine",
        help=(
            "folder for the rows set aside and why, one file per table, "
            "in a subfolder per command and time; written only if a row is "
            "set aside"
        ),
    ),
]
MaxBadShareOption = Annotated[
    float,
    typer.Option(
        "--max-bad-share",
        min=0.0,
        max=1.0,
        help="largest share of a table's rows quarantined before the command stops",
    ),
]

#: Where quarantined rows go unless --quarantine says otherwise.
DEFAULT_QUARANTINE = Path("quarantine")
#: The share of bad rows a daily run accepts by default.
DEFAULT_MAX_BAD_SHARE = QuarantineSettings().max_share


@dataclass(frozen=True)
class InputChecks:
    """How the model commands check their files: a run's rules, set by options."""

    currency: str | None = None
    naive_time_zone: str | None = None
    quarantine: Path = DEFAULT_QUARANTINE
    max_bad_share: float = DEFAULT_MAX_BAD_SHARE


def read_inputs(
    command: str,
    users: Path,
    revenue: Path,
    events: Path | None,
    checks: InputChecks,
) -> CustomerTables:
    """Read the tables through the checks of a daily run, and report the quarantine.

    Rows that break a rule of :func:`connectors.files.load_customer_tables`
    (a run's contracts and cross-table rules) are quarantined to
    ``checks.quarantine``; each table with such rows gets one line on stderr
    with the count, the first bad row and the quarantine file.

    Raises
    ------
    typer.BadParameter
        A file is missing, unreadable or of another format, or an option is
        unusable.
    typer.Exit
        A table lacks a column, or its bad rows exceed ``checks.max_bad_share``
        (status 1, the message naming the first bad row's file, column, line
        and value).
    """
    for path in (users, revenue, events):
        if path is not None and not path.exists():
            raise typer.BadParameter(f"{path}: no such file")
    currency = checks.currency
    if currency is not None:
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise typer.BadParameter(
                f"--currency {currency!r} is not an ISO 4217 code such as EUR",
                param_hint="--currency",
            )
        currency = currency.upper()
    try:
        data = DataSettings(
            users=FileSource(path=users),
            revenue=FileSource(path=revenue),
            events=FileSource(path=events) if events is not None else None,
            naive_time_zone=checks.naive_time_zone,
            quarantine=QuarantineSettings(
                max_share=checks.max_bad_share, directory=checks.quarantine
            ),
        )
    except ValidationError as error:
        raise typer.BadParameter(
            f"--naive-time-zone {checks.naive_time_zone!r}: "
            + "; ".join(str(e["msg"]) for e in error.errors()),
            param_hint="--naive-time-zone",
        ) from None
    label = f"model-{command}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%SZ}"
    try:
        tables = load_customer_tables(
            data, currency=currency, run_label=label, share_setting="--max-bad-share"
        )
    except ContractError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from error
    except InputError as error:
        raise typer.BadParameter(str(error)) from error
    for name, audit in tables.audits.items():
        if audit.quarantined:
            typer.echo(
                _quarantine_line(name, audit, tables.first_bad.get(name)), err=True
            )
    return tables


def _quarantine_line(name: str, audit: TableAudit, first: str | None) -> str:
    """What was set aside from one table, and where the details are."""
    repeats = (
        f", {audit.duplicates:,} exact repeat(s) of a row kept"
        if audit.duplicates
        else ""
    )
    shown = f"; first: {first}" if first else ""
    return (
        f"warning: {name}: {audit.quarantined:,} of {audit.rows_in:,} row(s) "
        f"quarantined ({audit.bad:,} bad{repeats}){shown} Quarantined rows: "
        f"{audit.file}"
    )


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


def _require_signups(users: pd.DataFrame, as_of: pd.Timestamp, path: Path) -> None:
    """Stop (status 1) when no user signed up by ``as_of``: nothing to fit or score."""
    earliest = users["signup_at"].min()
    if not earliest <= as_of:
        typer.echo(
            f"error: {path}: users: no user signed up by {as_of} (signup_at); "
            f"the earliest sign-up is {earliest}",
            err=True,
        )
        raise typer.Exit(code=1)


#: Days between the newest revenue row and the scoring date past which
#: ``model score`` warns that the revenue file seems to stop early.
REVENUE_GAP_WARNING_DAYS = 30


def _warn_if_revenue_ends_early(
    path: Path, revenue: pd.DataFrame, as_of: pd.Timestamp
) -> None:
    """Warn when the revenue file ends long before the scoring date.

    Revenue after the file's end is unknown, so every user is valued as if
    they had spent nothing since: scores quietly fall towards the revenue
    seen so far.
    """
    stamps = pd.to_datetime(revenue["occurred_at"], utc=True, errors="coerce")
    newest = stamps.max()
    if pd.isna(newest):
        return
    gap = (as_of.normalize() - newest.normalize()).days
    if gap > REVENUE_GAP_WARNING_DAYS:
        typer.echo(
            f"warning: {path}: the newest revenue (occurred_at) is on "
            f"{newest:%Y-%m-%d}, {gap} days before --as-of {as_of:%Y-%m-%d}; "
            "revenue after it is not in the file, so users are valued as if "
            "they spent nothing since",
            err=True,
        )


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


def _artefact_folder(path: Path) -> Path:
    """``path`` if a model may be saved there: a new or empty folder, or one
    holding an earlier model, outside any registry (checked before training)."""
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(
            f"{path} is a file; --out names the folder to save the model in",
            param_hint="--out",
        )
    folder = path.absolute()
    for root in (folder, folder.parent):
        if is_registry(root):
            where = (
                f"{path} is a model registry"
                if root == folder
                else f"{path} is inside the model registry {root}"
            )
            marker = CURRENT_FILE if (root / CURRENT_FILE).is_file() else DECISIONS_FILE
            raise typer.BadParameter(
                f"{where} (it holds {marker}): a model saved there would bypass "
                "the registry's gate and mix with its versions. Give --out a new "
                "or empty folder; the scheduled retraining (valuebid schedule) "
                "adds models to the registry through the gate, and valuebid model "
                f"score --model {root} scores with its current model.",
                param_hint="--out",
            )
    if not folder.is_dir():
        return path
    others = sorted(p.name for p in folder.iterdir() if p.name not in ARTEFACT_FILES)
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise typer.BadParameter(
            f"{path} holds {shown}, which is not part of a saved model: give "
            "--out a new or empty folder, or the folder of an earlier model to "
            "replace it",
            param_hint="--out",
        )
    metadata = folder / ARTEFACT_FILES[0]
    if metadata.exists() and _artefact_format(metadata) != ARTEFACT_FORMAT:
        raise typer.BadParameter(
            f"{metadata} is not the metadata of a pLTV model: give --out a new "
            "or empty folder, or the folder of an earlier model to replace it",
            param_hint="--out",
        )
    return path


def _artefact_format(metadata: Path) -> object:
    try:
        meta = json.loads(metadata.read_text())
    except (OSError, ValueError):
        return None
    return meta.get("format") if isinstance(meta, dict) else None


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.name.lower().endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        # Values are money: cents, not the binary noise of a sum
        # (3.3000000000000003) or a model's eleven decimals, in a file people
        # read. Parquet keeps full precision for programs.
        frame.to_csv(path, index=False, float_format="%.2f")


def _fail(
    error: ModelError, files: Mapping[str, Path | None] | None = None
) -> typer.Exit:
    """Print the error, naming the file of the table it is about, if any."""
    message = str(error)
    if files:
        table = re.split(r"[.:\s]", message, maxsplit=1)[0]
        path = files.get(table)
        if path is not None:
            message = f"{path}: {message}"
    typer.echo(f"error: {message}", err=True)
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
    max_train_users: Annotated[
        int,
        typer.Option(
            min=0,
            help=(
                "labelled users to train on at most, drawn at random: 0 for "
                "all, otherwise at least 200"
            ),
        ),
    ] = MAX_TRAIN_USERS,
    currency: CurrencyOption = None,
    naive_time_zone: NaiveZoneOption = None,
    quarantine: QuarantineOption = DEFAULT_QUARANTINE,
    max_bad_share: MaxBadShareOption = DEFAULT_MAX_BAD_SHARE,
) -> None:
    """Train a model on the users with a full year of history and save it.

    The files are checked as a daily run checks them: bad rows are
    quarantined (see --quarantine). Exit status 3 (after saving the model and
    printing FAILED) when the model fails its quality gate; 1 on an error
    (too few labelled users, bad rows beyond --max-bad-share); 2 on a bad
    option or a missing or unreadable file.
    """
    if loss not in LOSS_OPTIONS:
        raise typer.BadParameter(f"--loss must be one of {', '.join(LOSS_OPTIONS)}")
    if 0 < max_train_users < MIN_LABELLED_USERS:
        raise typer.BadParameter(
            f"--max-train-users must be 0 (all) or at least {MIN_LABELLED_USERS}, "
            f"got {max_train_users}"
        )
    out = _artefact_folder(out)
    checks = InputChecks(currency, naive_time_zone, quarantine, max_bad_share)
    tables = read_inputs("train", users, revenue, events, checks)
    stamp = _parse_as_of(as_of, tables.revenue)
    _require_signups(tables.users, stamp, users)
    try:
        model = PLTVModel(loss=loss, max_train_users=max_train_users or None).fit(
            tables.users, tables.revenue, stamp, tables.events
        )
    except ModelError as error:
        raise _fail(
            error, {"users": users, "revenue": revenue, "events": events}
        ) from error
    path = model.save(out)
    typer.echo(f"model {model.version} saved to {path}")
    ages = ", ".join(map(str, model.gate_ages))
    typer.echo(
        f"  holdout means over ages {ages} (total error as absolute value; "
        "per age: valuebid model evaluate):"
    )
    for metric in METRIC_NAMES:
        typer.echo(f"  holdout {metric}: {model.metrics[metric]:.3f}")
    typer.echo(_gate_verdict(model.gate_failures, saved=True))
    if model.gate_failures:
        raise typer.Exit(code=EXIT_GATE_FAILED)


#: Who makes a model current: neither model train (its --out is never a
#: registry) nor model evaluate (it saves nothing) can.
_BECOMES_CURRENT = (
    "models become current only when valuebid run (with no current model) or "
    "the scheduled retraining trains them into the registry, where they must "
    "also rank at least as well as the current model"
)


def _gate_verdict(failures: Sequence[str], *, saved: bool) -> str:
    """The gate's verdict; ``saved`` when it is about a model just saved."""
    if not failures:
        model = "this saved model is not current" if saved else "nothing is saved"
        return f"  quality gate: passed; {model}: {_BECOMES_CURRENT}"
    return (
        "  quality gate: FAILED; a run scoring with this model holds every "
        "target: " + "; ".join(failures)
    )


def _goal_verdict(shortfalls: Sequence[str]) -> list[str]:
    """The benchmark goal's outcome, labelled apart from the gate."""
    state = f"not met, {len(shortfalls)} shortfall(s)" if shortfalls else "met"
    return [
        f"  benchmark goal (stricter than the quality gate; not required): {state}",
        "    beat every baseline at every age on " + ", ".join(GOAL_METRICS),
        *(f"    - {shortfall}" for shortfall in shortfalls),
    ]


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
    currency: CurrencyOption = None,
    naive_time_zone: NaiveZoneOption = None,
    quarantine: QuarantineOption = DEFAULT_QUARANTINE,
    max_bad_share: MaxBadShareOption = DEFAULT_MAX_BAD_SHARE,
) -> None:
    """Score every user signed up by the as-of date.

    A model trained with product events needs --events: it is refused
    without it rather than scoring every user as having done none of them.
    A users file without an extra column the model learnt is refused too;
    values of a numeric one that are not numbers score as missing, with a
    warning per column.
    A user without revenue is scored from the rest of what is known. The
    files are checked as a daily run checks them (see --quarantine). Values
    are written in cents to CSV, in full to Parquet. Exit status 1 on an error
    (bad rows beyond --max-bad-share, a model that does not fit the files); 2
    on a bad option or a missing or unreadable file.
    """
    out = _output_path(out)
    try:
        fitted = _model_at(model)
    except ModelError as error:
        raise _fail(error) from error
    if events is None and fitted.event_features:
        raise typer.BadParameter(
            f"model {fitted.version} was trained with product events and uses "
            f"the features {', '.join(fitted.event_features)}: pass --events "
            "FILE, the events table, or every user scores as if they had done "
            "none of them",
            param_hint="--events",
        )
    checks = InputChecks(currency, naive_time_zone, quarantine, max_bad_share)
    tables = read_inputs("score", users, revenue, events, checks)
    stamp = _parse_as_of(as_of, tables.revenue)
    _require_signups(tables.users, stamp, users)
    try:
        fitted.require_user_columns(
            tables.users,
            source=str(users),
            retrain=(
                "retrain without them (valuebid model train --users FILE ... "
                "--out DIR) and score with that model"
            ),
        )
        scores = fitted.predict(
            tables.users,
            tables.revenue,
            stamp,
            tables.events,
            warn=lambda line: typer.echo(f"warning: {users}: {line}", err=True),
        )
    except ModelError as error:
        raise _fail(
            error, {"users": users, "revenue": revenue, "events": events}
        ) from error
    _write(scores, out)
    typer.echo(f"{len(scores)} users scored with model {fitted.version} into {out}")
    _warn_if_revenue_ends_early(revenue, tables.revenue, stamp)
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
    currency: CurrencyOption = None,
    naive_time_zone: NaiveZoneOption = None,
    quarantine: QuarantineOption = DEFAULT_QUARANTINE,
    max_bad_share: MaxBadShareOption = DEFAULT_MAX_BAD_SHARE,
) -> None:
    """Fit on earlier sign-ups, measure on the held-out ones, next to baselines.

    Ends with the quality gate's verdict, as model train states it, then the
    stricter benchmark goal, which no model needs to meet. Like model train,
    needs at least 200 users with a 365-day value.
    """
    if split not in ("time", "random"):
        raise typer.BadParameter("--split must be time or random")
    try:
        eval_ages = [int(a) for a in ages.split(",") if a.strip()]
    except ValueError as error:
        raise typer.BadParameter(f"--ages {ages!r}: expected integers") from error
    checks = InputChecks(currency, naive_time_zone, quarantine, max_bad_share)
    tables = read_inputs("evaluate", users, revenue, events, checks)
    stamp = _parse_as_of(as_of, tables.revenue)
    _require_signups(tables.users, stamp, users)
    try:
        prepared = prepare_users(tables.users)
        prepared = prepared.loc[prepared["signup_at"] <= stamp]
        money = prepare_revenue(tables.revenue, prepared)
        money = money.loc[money["occurred_at"] <= stamp]
        acts = prepare_events(tables.events, prepared)
        labelled = labelled_users(prepared, stamp)
        # The same floor as model train: on fewer users a table of metrics
        # and a gate verdict would only measure noise.
        require_labelled_users(len(labelled), stamp)
        train_users, test_users = split_users(
            labelled,
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
        raise _fail(
            error, {"users": users, "revenue": revenue, "events": events}
        ) from error
    # The gate averages fixed ages: judged only when all of them were measured.
    gate_failures = (
        holdout_gate(report, GATE_AGES) if set(GATE_AGES) <= set(eval_ages) else None
    )
    shortfalls = report.beats_baselines(eval_ages)
    if as_json:
        payload = json.loads(report.to_json())
        payload["gate_ages"] = list(GATE_AGES)
        payload["gate_failures"] = gate_failures
        payload["goal_shortfalls"] = shortfalls
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(report.table())
        typer.echo(
            _gate_verdict(gate_failures, saved=False)
            if gate_failures is not None
            else "  quality gate: not judged; it averages ages "
            f"{', '.join(map(str, GATE_AGES))}: include them in --ages"
        )
        typer.echo("\n".join(_goal_verdict(shortfalls)))
    logger.debug("evaluation %s", json.dumps(report.flat(eval_ages)))
