"""Time and peak memory of each stage of the daily cycle, per size of the account.

For each size (users of the scaled PLG scenario, 10,000 campaigns) it builds
the world once (``benchmarks/scale_plg.py``), then measures each stage in a
fresh child process, so one stage's heap never inflates the next one's peak:

- ``floor``: the input files read into pandas and nothing else (pyarrow);
- ``read``: ``load_inputs``, the checked read every run does;
- ``train``: fitting the pLTV model (the retraining job, not the daily run);
  the model is registered, and every later stage uses it;
- ``features``: the model's features of every user, as scoring builds them;
- ``score``: ``model.predict`` on every user (features included);
- ``plan``: ``plan_campaigns`` for every campaign;
- ``read+score``: read, features and predict in one process, end to end;
- ``cycle``: ``run_cycle`` in dry-run, from the files to the recorded plan.

A stage that needs earlier results (inputs, scores) makes them first,
untimed. Time is wall-clock. Peak memory is the child's peak resident set
during the stage (Linux ``VmHWM``, reset just before the stage starts, so
what the prerequisites held counts and their own peaks do not); ``held`` is
the resident set when the stage started.

Usage::

    python benchmarks/stages.py --users 100000 1000000 [--dir /tmp/valuebid-bench]
        [--stages floor read ...] [--profile score]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for folder in (HERE.parent, HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

RUN_DATE = dt.date(2026, 12, 1)
STAGES = ("floor", "read", "train", "features", "score", "plan", "read+score", "cycle")
#: Stages run only when asked for: planning one campaign at a time, the
#: definition the grouped planner is tested against (tests/optimizer), and
#: training on every labelled user instead of the configured sample.
EXTRA_STAGES = ("plan-one-by-one", "train-all")
TABLES = ("users", "revenue", "events", "campaign_stats")


# -- memory of this process ---------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak() -> bool:
    """Reset this process's peak resident set; False where Linux does not allow it."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def peak_mib(reset: bool) -> float:
    """Peak resident set since the reset (or since the start), MiB."""
    if reset:
        return _status_kib("VmHWM") / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the stages, each run in a child --------------------------------------------


class World:
    """One scaled world on disk: its settings, clock and the loaders stages share."""

    def __init__(self, directory: Path) -> None:
        from zoneinfo import ZoneInfo

        import pandas as pd

        from config.loader import load_settings

        self.directory = directory
        self.settings = load_settings(directory / "valuebid.yaml")
        zone = ZoneInfo(self.settings.account.time_zone)
        midnight = dt.datetime.combine(RUN_DATE, dt.time(), zone)
        self.as_of = pd.Timestamp(midnight).tz_convert("UTC")

    def inputs(self) -> Any:
        from connectors.files import load_inputs

        return load_inputs(
            self.settings.data,
            currency=self.settings.account.currency,
            now=self.as_of,
            state_dir=None,
        )

    def model(self) -> Any:
        from models.registry import ModelRegistry

        model = ModelRegistry(self.settings.model.directory).current()
        if model is None:
            raise SystemExit("no trained model: run the train stage first")
        return model

    def scores(self, model: Any, inputs: Any) -> Any:
        scores = model.predict(inputs.users, inputs.revenue, self.as_of, inputs.events)
        margin = self.settings.economics.gross_margin or 1.0
        scores["value"] = scores["pltv_365"] * margin
        return scores


def features_of(model: Any, inputs: Any, as_of: Any) -> Any:
    """The feature matrix ``model.predict`` builds, built the same way."""
    from models.features import build_features, scoring_snapshots
    from models.pltv import _prepare

    prepared, money, acts = _prepare(inputs.users, inputs.revenue, inputs.events, as_of)
    snapshots = scoring_snapshots(prepared, as_of)
    return build_features(snapshots, prepared, money, acts, model._schema)


def run_stage(name: str, world: World) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(set-up, timed work) of one stage; the set-up's result feeds the work."""
    if name == "floor":
        import pyarrow.parquet as pq

        def read_files() -> Any:
            return {
                table: pq.read_table(
                    world.directory / "data" / f"{table}.parquet"
                ).to_pandas()
                for table in TABLES
            }

        return (lambda: None), read_files
    if name == "read":
        return (lambda: None), world.inputs
    if name == "read+score":

        def end_to_end() -> Any:
            inputs = world.inputs()
            return world.scores(world.model(), inputs)

        return (lambda: None), end_to_end
    if name == "cycle":
        from optimizer.cycle import run_cycle

        world.model()
        return (lambda: None), lambda: run_cycle(world.settings, run_date=RUN_DATE)

    state: dict[str, Any] = {}

    def setup() -> None:
        state["inputs"] = world.inputs()
        if not name.startswith("train"):
            state["model"] = world.model()
        if name.startswith("plan"):
            state["scores"] = world.scores(state["model"], state["inputs"])

    def work() -> Any:
        inputs = state["inputs"]
        if name.startswith("train"):
            from models.pltv import PLTVModel
            from models.registry import ModelRegistry

            cap = world.settings.model.max_train_users if name == "train" else None
            model = PLTVModel(max_train_users=cap).fit(
                inputs.users, inputs.revenue, world.as_of, inputs.events
            )
            if name == "train-all":
                return model
            registry = ModelRegistry(world.settings.model.directory)
            if not registry.register(model):
                # Timing needs a model in place; its quality is not measured here.
                (registry.root / "CURRENT").write_text(model.version + "\n")
                print(f"gate refused {model.version}, made current for the benchmark")
            return model
        if name == "features":
            return features_of(state["model"], inputs, world.as_of)
        if name == "score":
            return world.scores(state["model"], inputs)
        # The one-by-one definition measures the campaigns only; the planner
        # also builds each plan row, so their ratio understates the speed-up.
        plan: Callable[..., Any]
        if name == "plan-one-by-one":
            from tests.optimizer.reference_planner import reference_gather_facts

            plan = reference_gather_facts
        else:
            from optimizer.planner import plan_campaigns

            plan = plan_campaigns
        return plan(
            world.settings,
            inputs,
            state["scores"],
            as_of=world.as_of,
            run_date=RUN_DATE,
            last_changes={},
        )

    return setup, work


def measure(name: str, directory: Path, profile: bool) -> dict[str, Any]:
    """Run one stage in this (fresh) process; return its figures."""
    world = World(directory)
    setup, work = run_stage(name, world)
    setup()
    reset = reset_peak()
    held = _status_kib("VmRSS") / 1024
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = work()
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    figures: dict[str, Any] = {
        "stage": name,
        "seconds": seconds,
        "peak_mib": peak_mib(reset),
        "held_mib": held,
        "rows": len(result) if hasattr(result, "__len__") else None,
    }
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        figures["profile"] = out.getvalue()
    return figures


def in_child(name: str, directory: Path, profile: bool) -> dict[str, Any]:
    """Run :func:`measure` in a fresh interpreter; a failure is reported, not raised."""
    command = [sys.executable, __file__, "--measure", name, "--world", str(directory)]
    if profile:
        command.append("--profile-this")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"stage": name, "failed": f"exit {done.returncode}: {tail}"}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- the report -------------------------------------------------------------------


def borrow_model(directory: Path, source: Path) -> None:
    """Make the current model of the world ``source`` current in ``directory``.

    Training is the retraining job, not the daily run; at the largest sizes
    the daily stages are timed with a model trained on a smaller world of the
    same scenario (the features and trees are the same kind either way).
    """
    from config.loader import load_settings
    from models.registry import ModelRegistry

    model = ModelRegistry(load_settings(source / "valuebid.yaml").model.directory)
    current = model.current()
    if current is None:
        raise SystemExit(f"{source} has no current model to borrow")
    target = ModelRegistry(load_settings(directory / "valuebid.yaml").model.directory)
    current.save(target.root / current.version)
    (target.root / "CURRENT").write_text(current.version + "\n")
    print(f"  model {current.version} borrowed from {source.name}", flush=True)


def world_for(base: Path, users: int) -> Path:
    """The scaled world of ``users`` users under ``base``, built when missing."""
    from scale_plg import build_scaled

    directory = base / f"plg-{users}"
    if not (directory / "valuebid.yaml").exists():
        world = build_scaled(directory, users)
        print(
            f"  built in {world.seconds:.0f} s: {world.users:,} users, "
            f"{world.revenue:,} revenue rows, {world.events:,} product events, "
            f"{world.campaigns:,} campaigns"
        )
    return directory


def report(
    users: int,
    base: Path,
    stages: list[str],
    profile: set[str],
    model_from: int | None = None,
) -> None:
    """Measure the stages for one size and print them."""
    print(f"\n== {users:,} users ==", flush=True)
    directory = world_for(base, users)
    if model_from is not None:
        borrow_model(directory, base / f"plg-{model_from}")
    sizes = {
        table: (directory / "data" / f"{table}.parquet").stat().st_size
        for table in TABLES
    }
    print(f"  Parquet on disk: {sum(sizes.values()) / 2**20:,.0f} MiB", flush=True)
    results: dict[str, dict[str, Any]] = {}
    for name in stages:
        figures = in_child(name, directory, name in profile)
        results[name] = figures
        if "failed" in figures:
            print(f"  {name:<15} FAILED {figures['failed']}", flush=True)
            continue
        print(
            f"  {name:<15} {figures['seconds']:8.1f} s"
            f"   peak {figures['peak_mib']:7.0f}"
            f" MiB   held at start {figures['held_mib']:6.0f} MiB",
            flush=True,
        )
        if "profile" in figures:
            print(figures["profile"])
    summary(results)


def summary(results: dict[str, dict[str, Any]]) -> None:
    """The ratios the goals are stated in."""

    def seconds(name: str) -> float | None:
        figures = results.get(name, {})
        value = figures.get("seconds")
        return float(value) if value is not None else None

    floor, end, cycle, plan, one_by_one = (
        seconds(n) for n in ("floor", "read+score", "cycle", "plan", "plan-one-by-one")
    )
    if floor and end:
        print(f"  read+score / floor: {end / floor:.1f}x (goal: at most 3x)")
    if floor and cycle:
        print(f"  cycle / floor: {cycle / floor:.1f}x")
    if plan and cycle:
        print(f"  plan / cycle: {100 * plan / cycle:.1f} % (goal: under 2 %)")
    if plan and one_by_one:
        print(f"  measuring campaigns one by one / grouped: {one_by_one / plan:.0f}x")
    end_peak = results.get("read+score", {}).get("peak_mib")
    if end_peak:
        print(f"  read+score peak: {end_peak / 1024:.2f} GiB (goal at 1M: under 4 GiB)")


def main() -> None:
    """Measure the sizes asked for, or one stage when asked by a parent."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/valuebid-bench"))
    every = STAGES + EXTRA_STAGES
    parser.add_argument("--stages", nargs="+", choices=every, default=list(STAGES))
    parser.add_argument(
        "--profile", nargs="*", choices=every, default=[], help="cProfile these."
    )
    parser.add_argument(
        "--model-from",
        type=int,
        metavar="USERS",
        help="Use the current model of the world of this many users.",
    )
    parser.add_argument("--measure", choices=every)
    parser.add_argument("--world", type=Path)
    parser.add_argument("--profile-this", action="store_true")
    args = parser.parse_args()

    if args.measure:
        import logging

        logging.disable(logging.INFO)
        print(json.dumps(measure(args.measure, args.world, args.profile_this)))
        return

    print(
        f"{dt.date.today()}: python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    )
    for users in args.users:
        report(users, args.dir, args.stages, set(args.profile), args.model_from)


if __name__ == "__main__":
    main()
