import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from models.cli import EXIT_GATE_FAILED, _gate_verdict, model_app
from models.pltv import PLTVModel

runner = CliRunner()
# The error box is as wide as the terminal: wide enough for a temporary path.
WIDE = {"COLUMNS": "300"}


def _files(tables, tmp_path):
    users, revenue, _events = tables
    users.to_csv(tmp_path / "users.csv", index=False)
    revenue.to_parquet(tmp_path / "revenue.parquet", index=False)
    return tmp_path / "users.csv", tmp_path / "revenue.parquet"


def test_train_over_an_earlier_model_then_score(
    fitted, tables, as_of, tmp_path
) -> None:
    users, revenue = _files(tables, tmp_path)
    common = ["--users", str(users), "--revenue", str(revenue)]
    earlier = fitted.save(tmp_path / "m")
    result = runner.invoke(
        model_app,
        [
            "train",
            *common,
            "--out",
            str(earlier),
            "--as-of",
            str(as_of.date()),
            "--max-train-users",
            "0",
        ],
    )
    saved = PLTVModel.load(earlier)
    # 0 trains on every labelled user (sampling: tests/models/test_pltv.py).
    assert saved.metadata["n_labelled"] == 600
    assert saved.metadata["n_trained"] == 600
    assert saved.max_train_users is None
    assert saved.version != fitted.version
    assert f"model {saved.version} saved to {earlier}" in result.output
    assert "holdout normalized_gini" in result.output
    # On these synthetic users both baselines rank better than the model (mean
    # normalized Gini 0.50 against 0.53 and 0.56), so the gate fails: the model
    # is saved all the same, and the exit status says it failed.
    assert saved.gate_failures, "this test needs a world whose model fails its gate"
    assert "quality gate: FAILED" in result.output
    assert result.exit_code == EXIT_GATE_FAILED, result.output
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        model_app,
        [
            "score",
            "--model",
            str(tmp_path / "m"),
            *common,
            "--as-of",
            "2024-09-01",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert list(scores.columns) == [
        "user_id",
        "age_days",
        "pltv_365",
        "pltv_1095",
        "pltv_1825",
    ]


def test_evaluate_json(tables, tmp_path) -> None:
    users, revenue = _files(tables, tmp_path)
    result = runner.invoke(
        model_app,
        [
            "evaluate",
            "--users",
            str(users),
            "--revenue",
            str(revenue),
            "--ages",
            "7,30",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"split", "n_train", "n_test", "ages"} <= set(report)
    assert [a["age_days"] for a in report["ages"]] == [7, 30]
    assert set(report["ages"][0]["scores"]) == {
        "model",
        "observed_x_factor",
        "bgnbd_gamma_gamma",
    }
    # The gate averages ages 7, 30 and 90: without age 90 it is not judged.
    assert report["gate_ages"] == [7, 30, 90]
    assert report["gate_failures"] is None
    assert isinstance(report["goal_shortfalls"], list)


def test_evaluate_states_the_gate_verdict_apart_from_the_benchmark_goal(
    tables, as_of, tmp_path
) -> None:
    users, revenue = _files(tables, tmp_path)
    command = ["evaluate", "--users", str(users), "--revenue", str(revenue)]
    command += ["--as-of", str(as_of.date())]

    text = runner.invoke(model_app, command)
    as_json = runner.invoke(model_app, [*command, "--json"])

    assert text.exit_code == 0, text.output
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert isinstance(report["gate_failures"], list)
    verdicts = [line for line in text.output.splitlines() if "quality gate:" in line]
    assert verdicts == [_gate_verdict(report["gate_failures"], saved=False)]
    # The strict goal is missed on this world, and every miss is listed under
    # its own label, after the gate's verdict.
    assert report["goal_shortfalls"]
    label = "benchmark goal (stricter than the quality gate; not required): not met"
    head, goal = text.output.split(label)
    assert "quality gate:" in head
    for shortfall in report["goal_shortfalls"]:
        assert f"    - {shortfall}\n" in goal


def _registry(tmp_path):
    registry = tmp_path / "registry"
    (registry / "pltv-20240101-abc").mkdir(parents=True)
    (registry / "pltv-20240101-abc" / "metadata.json").write_text("{}")
    (registry / "CURRENT").write_text("pltv-20240101-abc\n")
    return registry


def _unrelated(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "q3.html").write_text("<html></html>")
    return folder


def _other_metadata(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "metadata.json").write_text('{"format": "another-tool"}')
    return folder


def _a_file(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize(
    ("make_out", "named", "says"),
    [
        (_registry, "registry", "is a model registry"),
        (lambda t: _registry(t) / "new", "registry", "inside the model registry"),
        (_unrelated, "reports", "holds q3.html"),
        (_other_metadata, "other", "is not the metadata of a pLTV model"),
        (_a_file, "model.txt", "is a file"),
    ],
    ids=["registry", "inside-registry", "unrelated-files", "other-metadata", "file"],
)
def test_train_refuses_an_out_folder_it_would_spoil_before_reading(
    make_out, named, says, tmp_path
) -> None:
    out = make_out(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(
        model_app,
        [
            "train",
            "--users",
            str(tmp_path / "missing-users.csv"),
            "--revenue",
            str(tmp_path / "missing-revenue.csv"),
            "--out",
            str(out),
        ],
        env=WIDE,
    )

    assert result.exit_code == 2, result.output
    words = " ".join(result.output.replace("│", " ").split())
    assert says in words
    assert named in words
    assert "no such file" not in words
    assert sorted(tmp_path.rglob("*")) == before


def test_train_refuses_a_sample_below_the_training_minimum(tmp_path) -> None:
    result = runner.invoke(
        model_app,
        [
            "train",
            *("--users", str(tmp_path / "missing-users.csv")),
            *("--revenue", str(tmp_path / "missing-revenue.csv")),
            *("--out", str(tmp_path / "m")),
            *("--max-train-users", "50"),
        ],
        env=WIDE,
    )
    assert result.exit_code == 2, result.output
    words = " ".join(result.output.replace("│", " ").split())
    assert "--max-train-users must be 0 (all) or at least 200, got 50" in words


def test_train_accepts_an_empty_folder_and_an_earlier_model(fitted, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (empty, fitted.save(tmp_path / "earlier")):
        result = runner.invoke(
            model_app,
            [
                "train",
                "--users",
                str(tmp_path / "missing-users.csv"),
                "--revenue",
                str(tmp_path / "missing-revenue.csv"),
                "--out",
                str(out),
            ],
            env=WIDE,
        )
        # Past the --out check, the missing users file is the first complaint.
        assert result.exit_code == 2
        words = " ".join(result.output.replace("│", " ").split())
        assert "missing-users.csv: no such file" in words


def test_score_with_a_missing_model(tables, tmp_path) -> None:
    users, revenue = _files(tables, tmp_path)
    result = runner.invoke(
        model_app,
        [
            "score",
            "--model",
            str(tmp_path / "none"),
            "--users",
            str(users),
            "--revenue",
            str(revenue),
            "--as-of",
            "2024-09-01",
            "--out",
            str(tmp_path / "s.csv"),
        ],
    )
    assert result.exit_code == 1
    assert f"{tmp_path / 'none'}: no such model directory" in result.output


def test_score_with_a_data_folder_for_a_model(tables, tmp_path) -> None:
    users, revenue = _files(tables, tmp_path)
    result = runner.invoke(
        model_app,
        [
            "score",
            "--model",
            str(tmp_path),
            "--users",
            str(users),
            "--revenue",
            str(revenue),
            "--as-of",
            "2024-09-01",
            "--out",
            str(tmp_path / "s.csv"),
        ],
    )
    assert result.exit_code == 1
    assert "not a model directory (it has no metadata.json)" in result.output


def test_score_from_a_registry_folder_uses_its_current_model(
    tables, fitted, tmp_path
) -> None:
    users, revenue = _files(tables, tmp_path)
    events = _events_file(tables, tmp_path)
    registry = tmp_path / "registry"
    fitted.save(registry / fitted.version)
    (registry / "CURRENT").write_text(fitted.version + "\n")
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        model_app,
        [
            "score",
            "--model",
            str(registry),
            "--users",
            str(users),
            "--revenue",
            str(revenue),
            "--events",
            str(events),
            "--as-of",
            "2024-09-01",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"with model {fitted.version}" in result.output
    assert len(pd.read_csv(out)) > 0


def _events_file(tables, tmp_path):
    _users, _revenue, events = tables
    events.to_csv(tmp_path / "events.csv", index=False)
    return tmp_path / "events.csv"


def _score(
    fitted,
    tables,
    tmp_path,
    users_name: str,
    as_of: str,
    out: str = "s.csv",
    *,
    with_events: bool = True,
):
    users, revenue, _events = tables
    users.to_csv(tmp_path / users_name, index=False)
    revenue.to_parquet(tmp_path / "revenue.parquet", index=False)
    model = fitted.save(tmp_path / "model")
    events = ["--events", str(_events_file(tables, tmp_path))] if with_events else []
    return runner.invoke(
        model_app,
        [
            "score",
            "--model",
            str(model),
            "--users",
            str(tmp_path / users_name),
            "--revenue",
            str(tmp_path / "revenue.parquet"),
            *events,
            "--as-of",
            as_of,
            "--out",
            str(tmp_path / out),
        ],
    )


def test_score_refuses_a_model_trained_with_events_without_them(
    fitted, tables, as_of, tmp_path
) -> None:
    assert fitted.event_features == ["count:invite", "first_day:invite"]

    day = f"{as_of:%Y-%m-%d}"

    refused = _score(fitted, tables, tmp_path, "users.csv", day, with_events=False)

    assert refused.exit_code == 2
    words = " ".join(refused.output.replace("│", " ").split())
    assert (
        f"model {fitted.version} was trained with product events and uses the "
        "features count:invite, first_day:invite: pass --events FILE"
    ) in words
    assert not (tmp_path / "s.csv").exists()
    given = _score(fitted, tables, tmp_path, "users.csv", day)
    assert given.exit_code == 0, given.output


def test_score_needs_no_events_for_a_model_trained_without_them(
    tables, as_of, tmp_path
) -> None:
    users, revenue, _events = tables
    plain = PLTVModel(ages=(0, 30)).fit(users, revenue, as_of)

    result = _score(
        plain, tables, tmp_path, "users.csv", f"{as_of:%Y-%m-%d}", with_events=False
    )

    assert plain.event_features == []
    assert result.exit_code == 0, result.output


def test_score_reads_a_compressed_csv(fitted, tables, as_of, tmp_path) -> None:
    result = _score(fitted, tables, tmp_path, "users.csv.gz", f"{as_of:%Y-%m-%d}")

    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "s.csv")) > 0


def test_score_warns_when_the_revenue_file_ends_long_before_the_as_of_date(
    fitted, tables, tmp_path
) -> None:
    users, revenue, events = tables
    stamps = pd.to_datetime(revenue["occurred_at"], utc=True)
    # The newest payment late in its day: the days between are counted by date.
    newest = stamps.max().normalize() + pd.Timedelta(hours=15)
    revenue = revenue.assign(occurred_at=stamps.where(stamps < stamps.max(), newest))
    tables = (users, revenue, events)
    late = newest + pd.Timedelta(days=400)

    far = _score(fitted, tables, tmp_path, "users.csv", f"{late:%Y-%m-%d}")
    near = _score(
        fitted, tables, tmp_path, "users.csv", f"{newest:%Y-%m-%d}", out="n.csv"
    )

    assert far.exit_code == 0, far.output
    assert (
        f"revenue.parquet: the newest revenue (occurred_at) is on {newest:%Y-%m-%d}, "
        f"400 days before --as-of {late:%Y-%m-%d}"
    ) in far.stderr
    assert near.exit_code == 0, near.output
    assert "warning" not in near.stderr


def test_score_before_every_sign_up_names_the_users_file(
    fitted, tables, tmp_path
) -> None:
    result = _score(fitted, tables, tmp_path, "users.csv", "2000-01-01")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {tmp_path / 'users.csv'}: users: no user signed up by "
        "2000-01-01 00:00:00+00:00 (signup_at); the earliest sign-up is "
    )
    assert not (tmp_path / "s.csv").exists()


def test_an_as_of_date_that_is_not_iso_is_refused(fitted, tables, tmp_path) -> None:
    result = _score(fitted, tables, tmp_path, "users.csv", "04/12/2026")

    assert result.exit_code == 2
    assert "not an ISO 8601 date" in result.output
    assert not (tmp_path / "s.csv").exists()


def test_scores_are_written_in_the_format_their_name_asks_for(
    fitted, tables, as_of, tmp_path
) -> None:
    day = f"{as_of:%Y-%m-%d}"
    for name in ("s.parquet", "s.csv.gz"):
        result = _score(fitted, tables, tmp_path, "users.csv", day, out=name)
        assert result.exit_code == 0, result.output
    compressed = pd.read_csv(tmp_path / "s.csv.gz")
    # The CSV holds cents, the Parquet file full precision.
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "s.parquet"),
        compressed,
        check_exact=False,
        atol=0.005,
        rtol=0,
    )

    refused = _score(fitted, tables, tmp_path, "users.csv", day, out="s.xlsx")
    assert refused.exit_code == 2
    # The error box wraps long lines.
    words = " ".join(refused.output.replace("│", " ").split())
    assert "--out must end in .csv, .csv.gz, .parquet" in words
    assert not (tmp_path / "s.xlsx").exists()

    nowhere = _score(fitted, tables, tmp_path, "users.csv", day, out="no/s.csv")
    assert nowhere.exit_code == 2
    words = " ".join(nowhere.output.replace("│", " ").split())
    assert "does not exist" in words
    assert not (tmp_path / "no").exists()


def test_the_gate_verdict_is_stated_and_a_failed_model_warns_when_scoring(
    fitted, tables, as_of, tmp_path
) -> None:
    saved = list(fitted.gate_failures)
    try:
        fitted.gate_failures = []
        trained = _gate_verdict(fitted.gate_failures, saved=True)
        evaluated = _gate_verdict(fitted.gate_failures, saved=False)
        # Neither command can make a model current, and the verdict says so.
        assert trained.startswith("  quality gate: passed; this saved model is not")
        assert evaluated.startswith("  quality gate: passed; nothing is saved")
        for passed in (trained, evaluated):
            assert "may become current" not in passed
            assert "only when valuebid run (with no current model) or" in passed
        fitted.gate_failures = ["mean normalized_gini 0.400 below a baseline"]
        fitted.metadata["gate_failures"] = fitted.gate_failures
        verdict = _gate_verdict(fitted.gate_failures, saved=True)
        assert "quality gate: FAILED; a run scoring with this model holds" in verdict
        assert "mean normalized_gini 0.400 below a baseline" in verdict

        result = _score(fitted, tables, tmp_path, "users.csv", f"{as_of:%Y-%m-%d}")
    finally:
        fitted.gate_failures = saved
        fitted.metadata["gate_failures"] = saved
    assert result.exit_code == 0, result.output
    assert "failed its quality gate: mean normalized_gini 0.400" in result.output


def test_evaluate_refuses_too_few_labelled_users_as_train_does(
    tables, as_of, tmp_path
) -> None:
    users, revenue, events = tables
    few = users.head(50)
    _files(
        (few, revenue.loc[revenue["user_id"].isin(few["user_id"])], events), tmp_path
    )
    before = sorted(tmp_path.iterdir())
    common = ["--users", str(tmp_path / "users.csv")]
    common += ["--revenue", str(tmp_path / "revenue.parquet")]
    common += ["--as-of", str(as_of.date())]

    evaluated = runner.invoke(model_app, ["evaluate", *common])
    trained = runner.invoke(model_app, ["train", *common, "--out", str(tmp_path / "m")])

    assert evaluated.exit_code == 1
    assert trained.exit_code == 1
    refusal = evaluated.output.strip()
    assert refusal.startswith("error: 50 user(s) signed up by ")
    assert refusal.endswith("at least 200 are needed")
    assert refusal == trained.output.strip()
    assert "quality gate" not in evaluated.output
    assert sorted(tmp_path.iterdir()) == before


def _checked_score(fitted, tables, as_of, tmp_path, *options: str):
    """Score CSV copies of ``tables``, quarantining into ``tmp_path / "q"``."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    paths = [folder / f"{name}.csv" for name in ("users", "revenue", "events")]
    for table, path in zip(tables, paths, strict=True):
        table.to_csv(path, index=False)
    model = fitted.save(tmp_path / "model")
    result = runner.invoke(
        model_app,
        [
            "score",
            *("--model", str(model)),
            *("--users", str(paths[0])),
            *("--revenue", str(paths[1])),
            *("--events", str(paths[2])),
            *("--as-of", f"{as_of:%Y-%m-%d}"),
            *("--out", str(tmp_path / "s.csv")),
            *("--quarantine", str(tmp_path / "q")),
            *options,
        ],
    )
    return result, paths


def _quarantined(tmp_path, table: str) -> pd.DataFrame:
    (path,) = (tmp_path / "q").glob(f"model-score-*/{table}.csv")
    return pd.read_csv(path, dtype="string")


def _lightest_buyer(revenue) -> str:
    """A user with few revenue rows, so that quarantining them stays below 1 %."""
    counts = revenue["user_id"].value_counts()
    return str(counts.index[-1])


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        (
            "occurred_at",
            "2000-01-01T00:00:00Z",
            "is on a day before its user's sign-up day",
        ),
        # Among other times, a run's check calls this one "not a timestamp".
        ("occurred_at", "0001-01-01T00:00:00Z", "is not"),
        ("currency", "EURO", "is not an ISO 4217 code"),
        ("amount", "-500000", "is a refund of 500,000.00 EUR, more than user"),
    ],
    ids=["before-signup", "unstorable-time", "bad-currency", "refund-over-paid"],
)
def test_score_quarantines_a_bad_revenue_row_as_a_run_does(
    column, value, reason, fitted, tables, as_of, tmp_path
) -> None:
    users, revenue, events = tables
    revenue = revenue.astype({column: "object"})
    revenue.loc[4, column] = value

    result, (_, revenue_file, _) = _checked_score(
        fitted, (users, revenue, events), as_of, tmp_path
    )

    assert result.exit_code == 0, result.output
    # line 6: the header is line 1, and row 4 is the fifth data row.
    assert (
        f"warning: revenue: 1 of {len(revenue):,} row(s) quarantined (1 bad); "
        f"first: {revenue_file}: column {column!r}, line 6: value {value!r} "
        f"{reason}"
    ) in result.stderr
    (details,) = (tmp_path / "q").glob("model-score-*/revenue.csv")
    assert f"Quarantined rows: {details}" in result.stderr
    quarantined = _quarantined(tmp_path, "revenue")
    assert quarantined[["quarantine_line", "quarantine_value"]].values.tolist() == [
        ["6", value]
    ]
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(users)


def test_score_stops_on_bad_rows_above_the_share_allowed(
    fitted, tables, as_of, tmp_path
) -> None:
    users, revenue, events = tables
    revenue = revenue.astype({"occurred_at": "object"})
    revenue.loc[4, "occurred_at"] = "2000-01-01T00:00:00Z"

    result, (_, revenue_file, _) = _checked_score(
        fitted, (users, revenue, events), as_of, tmp_path, "--max-bad-share", "0"
    )

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {revenue_file}: column 'occurred_at', line 6: value "
        "'2000-01-01T00:00:00Z' is on a day before its user's sign-up day"
    )
    assert "and --max-bad-share is 0: no bad row is accepted" in result.stderr
    assert not (tmp_path / "s.csv").exists()


def test_score_quarantines_an_activation_before_sign_up_as_a_run_does(
    fitted, tables, as_of, tmp_path
) -> None:
    users, revenue, events = tables
    user = _lightest_buyer(revenue)
    row = int(users.index[users["user_id"] == user][0])
    users = users.astype({"activated_at": "object"})
    users.loc[row, "activated_at"] = "2020-01-01T00:00:00Z"

    result, (users_file, _, _) = _checked_score(
        fitted, (users, revenue, events), as_of, tmp_path
    )

    assert result.exit_code == 0, result.output
    assert (
        f"warning: users: 1 of {len(users):,} row(s) quarantined (1 bad); first: "
        f"{users_file}: column 'activated_at', line {row + 2}: value "
        "'2020-01-01T00:00:00Z' is before the user's sign-up"
    ) in result.stderr
    assert _quarantined(tmp_path, "users")["user_id"].tolist() == [user]
    # Its revenue goes with it, as in a run, pointing at the user's own row.
    revenue_reasons = _quarantined(tmp_path, "revenue")["quarantine_reason"]
    assert revenue_reasons.str.startswith(
        "has revenue but its user's row was quarantined ("
    ).all()
    assert "activated_at is before the user's sign-up" in revenue_reasons.iloc[0]
    scores = pd.read_csv(tmp_path / "s.csv", dtype={"user_id": "string"})
    assert user not in set(scores["user_id"])
    assert len(scores) == len(users) - 1


def test_score_values_a_user_without_revenue_from_features_alone(
    fitted, tables, as_of, tmp_path
) -> None:
    users, revenue, events = tables
    refunded, absent = revenue["user_id"].value_counts().index[-2:]
    # One user's only revenue is a refund of money never paid: quarantined,
    # which leaves them with no revenue, like the user who never paid.
    revenue = revenue.loc[~revenue["user_id"].isin([refunded, absent])]
    refund = {"user_id": refunded, "amount": -30.0, "currency": "EUR"}
    signup = users.loc[users["user_id"] == refunded, "signup_at"].iloc[0]
    refund |= {"occurred_at": signup + pd.Timedelta(days=3), "order_id": "r1"}
    revenue = pd.concat([revenue, pd.DataFrame([refund])], ignore_index=True)

    result, _ = _checked_score(fitted, (users, revenue, events), as_of, tmp_path)

    assert result.exit_code == 0, result.output
    assert "warning: revenue: 1 of" in result.stderr
    assert f"more than user '{refunded}' had paid by then" in result.stderr
    scores = pd.read_csv(tmp_path / "s.csv", dtype={"user_id": "string"})
    scored = scores.set_index("user_id").loc[[refunded, absent]]
    assert scored["pltv_365"].notna().all()
    assert (scored["pltv_365"] >= 0).all()
    assert len(scores) == len(users)


def test_score_quarantines_an_unreadable_timestamp_naming_it(
    fitted, tables, as_of, tmp_path
) -> None:
    users, revenue, events = tables
    user = _lightest_buyer(revenue)
    row = int(users.index[users["user_id"] == user][0])
    users = users.astype({"signup_at": "object"})
    users.loc[row, "signup_at"] = "not-a-date"

    result, (users_file, _, _) = _checked_score(
        fitted, (users, revenue, events), as_of, tmp_path
    )

    assert result.exit_code == 0, result.output
    assert (
        f"first: {users_file}: column 'signup_at', line {row + 2}: value "
        "'not-a-date' is not a timestamp"
    ) in result.stderr


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_an_as_of_date_before_every_sign_up_names_the_users_file(
    command, tables, tmp_path
) -> None:
    users, revenue = _files(tables, tmp_path)
    extra = ["--out", str(tmp_path / "m")] if command == "train" else []

    result = runner.invoke(
        model_app,
        [
            command,
            *("--users", str(users), "--revenue", str(revenue)),
            *("--as-of", "2000-01-01"),
            *extra,
        ],
    )

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {users}: users: no user signed up by 2000-01-01 00:00:00+00:00 "
        "(signup_at); the earliest sign-up is 2024-"
    )
    assert not (tmp_path / "m").exists()


def test_scores_are_written_without_binary_noise(tmp_path) -> None:
    from models.cli import _write

    frame = pd.DataFrame({"user_id": ["u1"], "pltv_365": [1.1 + 2.2]})
    assert frame["pltv_365"].iloc[0] != 3.3

    _write(frame, tmp_path / "s.csv")

    assert (tmp_path / "s.csv").read_text().splitlines()[1] == "u1,3.30"


def test_score_refuses_a_users_file_without_a_column_the_model_learnt(
    fitted, tables, as_of, tmp_path
) -> None:
    users, revenue, events = tables
    dropped = (users.drop(columns="seats"), revenue, events)

    result = _score(fitted, dropped, tmp_path, "users.csv", f"{as_of:%Y-%m-%d}")

    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"error: {tmp_path / 'users.csv'}: model {fitted.version} was trained "
        "with the users column(s) seats, which this users table lacks; restore "
        "them, or retrain without them (valuebid model train --users FILE ... "
        "--out DIR) and score with that model\n"
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "s.csv").exists()


def test_score_warns_once_per_numeric_extra_with_values_that_are_not_numbers(
    fitted, tables, as_of, tmp_path
) -> None:
    users, revenue, events = tables
    spoilt = users.assign(seats=users["seats"].astype(object))
    spoilt.loc[[4, 7], "seats"] = ["gold", "silver"]

    result = _score(
        fitted, (spoilt, revenue, events), tmp_path, "users.csv", f"{as_of:%Y-%m-%d}"
    )

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: {tmp_path / 'users.csv'}: users column 'seats': 2 value(s) "
        "are not numbers (first: 'gold'); the model reads numbers there, so "
        "they are scored as missing"
    ]
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(users)


def test_check_refuses_users_without_a_column_the_current_model_learnt(
    fitted, tables, tmp_path
) -> None:
    """A run would stop on it: valuebid check says so first, naming the column."""
    from optimizer.cli import app

    users, revenue, events = tables
    assert "seats" in fitted.extra_user_columns
    users.drop(columns="seats").to_parquet(tmp_path / "users.parquet", index=False)
    revenue.to_parquet(tmp_path / "revenue.parquet", index=False)
    events.to_parquet(tmp_path / "events.parquet", index=False)
    (tmp_path / "stats.csv").write_text(
        "date,campaign_id,campaign_name,cost,conversions,conversion_value,"
        "bidding_strategy_type,target_cpa,target_roas\n"
        "2024-07-17,c1,Search FR,100,5,200,TARGET_CPA,20,\n",
        encoding="utf-8",
    )
    config = tmp_path / "valuebid.yaml"
    config.write_text(
        "account: {name: acme, currency: EUR}\n"
        "markets: {FR: {cac_max: 100}}\n"
        "default_market: FR\n"
        "data:\n"
        "  users: users.parquet\n"
        "  revenue: revenue.parquet\n"
        "  events: events.parquet\n"
        "  campaign_stats: stats.csv\n"
        "  quarantine: {max_share: 1}\n"
        "model: {directory: models}\n",
        encoding="utf-8",
    )
    fitted.save(tmp_path / "models" / fitted.version)
    (tmp_path / "models" / "CURRENT").write_text(fitted.version + "\n")

    result = runner.invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert f"model {fitted.version} was trained with the users column(s) seats" in said
    assert "Traceback" not in result.output
