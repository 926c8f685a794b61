"""pLTV model against its baselines on the real CDNOW purchase histories.

``--scenario plg`` runs the same on the synthetic PLG account instead, where
most users never pay.

Sign-up is each customer's first purchase; the whole file is one acquisition
cohort (first quarter of 1997) followed to the end of June 1998, so every
customer has a full 365-day value. Two holdouts:

- time: the latest 30 % of sign-ups (by sign-up day) are held out;
- random: 30 % of customers drawn at random, one run per seed.

Metrics are on the value between the snapshot age and day 365. Each age is
checked against the goal (higher normalized Gini and Spearman than every
baseline, lower decile MAPE, total error within 5 %), and each run against
the quality gate a retrained model must pass (:meth:`HoldoutReport.gate`).

Usage::

    python benchmarks/pltv_benchmark.py [--scenario cdnow|plg] [--data PATH]
        [--seeds 3] [--loss auto]
        [--draws 200] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.estimator import LOSS_OPTIONS
from models.evaluation import (
    BASELINES,
    GATE_AGES,
    HoldoutReport,
    Split,
    evaluate_holdout,
    labelled_users,
    split_users,
)
from models.features import DEFAULT_AGES
from models.frames import prepare_events, prepare_revenue, prepare_users
from models.metrics import HIGHER_IS_BETTER, METRIC_NAMES, score_all
from optimizer.demo import cdnow_tables
from optimizer.scenarios import plg

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "cdnow"
    / "CDNOW_master.txt"
)
AS_OF = pd.Timestamp("1998-06-30", tz="UTC")
PLG_RUN_DATE = dt.date(2026, 12, 1)

logger = logging.getLogger("pltv_benchmark")


def load_cdnow(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CDNOW master file as canonical users and revenue tables."""
    return cdnow_tables(path)


def _mean_table(reports: list[HoldoutReport]) -> str:
    """Per-age means (and sd over runs when there are several)."""
    head = f"{'age':>4} {'who':<18}" + "".join(f"{m:>17}" for m in METRIC_NAMES)
    lines = [head]
    for index, result in enumerate(reports[0].ages):
        for who in result.scores:
            cells = ""
            for metric in METRIC_NAMES:
                values = np.array([r.ages[index].scores[who][metric] for r in reports])
                cell = f"{values.mean():.3f}"
                if len(values) > 1:
                    cell += f"±{values.std(ddof=1):.3f}"
                cells += f"{cell:>17}"
            lines.append(f"{result.age_days:>4} {who:<18}{cells}")
    return "\n".join(lines)


def _verdicts(reports: list[HoldoutReport]) -> list[str]:
    """Goal check on the mean over runs: ranking, calibration and total error."""
    out = []
    for index, result in enumerate(reports[0].ages):

        def mean(who: str, metric: str, i: int = index) -> float:
            return float(np.mean([r.ages[i].scores[who][metric] for r in reports]))

        misses = []
        for who in result.scores:
            if who == "model":
                continue
            for metric in ("normalized_gini", "spearman"):
                if mean("model", metric) <= mean(who, metric):
                    misses.append(f"{metric} vs {who}")
            if mean("model", "decile_mape") >= mean(who, "decile_mape"):
                misses.append(f"decile_mape vs {who}")
        if abs(mean("model", "total_error")) > 0.05:
            misses.append("total error outside ±5 %")
        verdict = "meets the goal" if not misses else "misses: " + ", ".join(misses)
        out.append(f"age {result.age_days}: {verdict}")
    for report in reports:
        failures = report.gate(GATE_AGES)
        gate = "passes" if not failures else "fails: " + "; ".join(failures)
        out.append(f"quality gate ({report.split}): {gate}")
    return out


def _resampled_margins(report: HoldoutReport, draws: int, seed: int = 0) -> list[str]:
    """How sure each goal comparison is, by resampling the held-out users.

    Users are drawn with replacement (the same draw at every age) and every
    metric is recomputed on the draw. Each line gives the model's margin over
    a baseline (positive means the model is better) with its 5-95 %
    interval; an interval that holds zero is a tie within sampling noise.
    """
    predictions = report.predictions
    if predictions is None or draws <= 0:
        return []
    rng = np.random.default_rng(seed)
    users = predictions["user_id"].unique()
    picks = [rng.integers(0, len(users), len(users)) for _ in range(draws)]
    out = []
    for result in report.ages:
        rows = predictions.loc[predictions["age_days"] == result.age_days]
        rows = rows.set_index("user_id").reindex(users)
        actual = rows["actual"].to_numpy()
        columns = {"model": rows["predicted"].to_numpy()}
        columns |= {who: rows[who].to_numpy() for who in BASELINES}
        scores: dict[str, list[dict[str, float]]] = {who: [] for who in columns}
        for pick in picks:
            for who, predicted in columns.items():
                scores[who].append(score_all(actual[pick], predicted[pick]))
        for who in BASELINES:
            for metric in ("normalized_gini", "spearman", "decile_mape"):
                sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
                margin = sign * (
                    result.scores["model"][metric] - result.scores[who][metric]
                )
                spread = sign * np.array(
                    [
                        ours[metric] - theirs[metric]
                        for ours, theirs in zip(
                            scores["model"], scores[who], strict=True
                        )
                    ]
                )
                low, high = np.nanpercentile(spread, [5, 95])
                verdict = "tie" if low <= 0 <= high else "clear"
                out.append(
                    f"age {result.age_days:>2} {metric:<15} vs {who:<18} "
                    f"margin {margin:+.3f}  [{low:+.3f}, {high:+.3f}]  {verdict}"
                )
        errors = np.array([s["total_error"] for s in scores["model"]])
        low, high = np.percentile(errors, [5, 95])
        out.append(
            f"age {result.age_days:>2} total_error     model "
            f"{result.scores['model']['total_error']:+.3f}  [{low:+.3f}, {high:+.3f}]"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both holdouts and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario",
        choices=("cdnow", "plg"),
        default="cdnow",
        help="the real CDNOW histories, or the synthetic PLG account (its "
        "default seed, run on 2026-12-01) whose users mostly never pay",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--loss", choices=LOSS_OPTIONS, default="auto")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--draws",
        type=int,
        default=200,
        help="resamples of the time holdout's users for the margins' intervals",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    started = time.perf_counter()
    as_of = AS_OF
    raw_events = None
    if args.scenario == "plg":
        world = plg.generate(PLG_RUN_DATE)
        users, revenue, raw_events = world.users, world.revenue, world.events
        as_of = pd.Timestamp(PLG_RUN_DATE, tz="UTC")
    else:
        users, revenue = load_cdnow(args.data)
    prepared = prepare_users(users)
    money = prepare_revenue(revenue, prepared)
    events = prepare_events(raw_events, prepared)
    labelled = labelled_users(prepared, as_of)
    money = money.loc[money["occurred_at"] <= as_of]

    runs: dict[str, list[HoldoutReport]] = {"time": [], "random": []}
    splits: list[tuple[Split, int]] = [("time", 0)]
    splits += [("random", seed) for seed in range(args.seeds)]
    for split, seed in splits:
        train, test = split_users(labelled, split, 0.3, seed)
        runs[split].append(
            evaluate_holdout(
                train,
                test,
                money,
                events,
                split=split,
                ages=DEFAULT_AGES,
                eval_ages=GATE_AGES,
                loss=args.loss,
                random_state=seed,
            )
        )
    elapsed = time.perf_counter() - started

    if args.json:
        payload = {k: [json.loads(r.to_json()) for r in v] for k, v in runs.items()}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return 0
    for name, reports in runs.items():
        if not reports:
            continue
        first = reports[0]
        sys.stdout.write(
            f"\n{name} holdout: {first.n_train} train / {first.n_test} test users, "
            f"{len(reports)} run(s), loss={args.loss} "
            f"({', '.join(sorted({r.loss for r in reports}))})\n"
        )
        sys.stdout.write(_mean_table(reports) + "\n")
        for line in _verdicts(reports):
            sys.stdout.write(f"  {line}\n")
        if name == "time" and args.draws > 0:
            sys.stdout.write(
                f"\nmargins of the model on the time holdout, 5-95 % over "
                f"{args.draws} resamples of its users:\n"
            )
            for line in _resampled_margins(first, args.draws):
                sys.stdout.write(f"  {line}\n")
    sys.stdout.write(f"\n{elapsed:.0f} s in all\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
