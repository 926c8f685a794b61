"""The pLTV model: each user's value at 1, 3 and 5 years from early signals.

The 365-day value is the revenue observed so far plus a gradient-boosted
prediction of the value still to come (:mod:`models.estimator`), trained on
snapshots of labelled users at several ages. The 3- and 5-year values scale
the 365-day value by the user's segment LTV curve (:mod:`models.curves`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from models.batching import BATCH_USERS, user_batches
from models.curves import LTVCurves, curves_from_prepared
from models.estimator import FutureValueRegressor, LossOption
from models.evaluation import (
    GATE_AGES,
    GATE_RANKING,
    MODEL,
    HoldoutReport,
    choose_loss,
    evaluate_holdout,
    labelled_users,
    split_users,
    training_set,
)
from models.exceptions import (
    InputDataError,
    ModelLoadError,
    ScoringError,
    TrainingError,
)
from models.features import (
    DEFAULT_AGES,
    HORIZON_DAYS,
    FeatureSchema,
    build_features,
    learn_schema,
    non_numeric_values,
    scoring_snapshots,
    value_until,
)
from models.frames import (
    USER_COLUMNS,
    elapsed_days,
    prepare_events,
    prepare_revenue,
    prepare_users,
    signup_of,
)
from models.metrics import score_all

logger = logging.getLogger(__name__)

ARTEFACT_FORMAT = "valuebid-pltv"
# Bump when features, metadata or the pickled objects change shape.
SCHEMA_VERSION = 2
OUTPUT_COLUMNS = ("user_id", "age_days", "pltv_365", "pltv_1095", "pltv_1825")
MIN_LABELLED_USERS = 200
# Training rows are users times ages (22 by default), and every fit (holdout,
# shape choice, final) walks them all; a random sample of this many labelled
# users bounds the cost of a large account while keeping far more users than
# a seven-leaf booster can tell apart. Uniform sampling keeps totals unbiased.
MAX_TRAIN_USERS = 100_000
# Fewest held-out users the current model never trained on for the two
# models to be compared on the same rows.
MIN_PAIRED_USERS = 100
# When the current model cannot be scored on this model's holdout (older
# artefact, other columns, too few users it never saw), the two are compared
# on their own holdouts, and this much worse is a tie: two holdouts of a few
# thousand users differ by about this much.
GATE_TOLERANCE = 0.01
# Total error on a holdout of a few thousand heavy-tailed users swings by
# several percent between draws (CDNOW README: sd 10.9 % for BG/NBD).
MAX_TOTAL_ERROR = 0.10


#: Files of one saved model (:meth:`PLTVModel.save`).
ARTEFACT_FILES: tuple[str, ...] = ("metadata.json", "model.pkl")


def holdout_gate(report: HoldoutReport, ages: Sequence[int] = GATE_AGES) -> list[str]:
    """Reasons a model with this holdout fails its quality gate; empty if it passes.

    The comparison with the baselines of :meth:`HoldoutReport.gate`, plus a
    mean absolute total error over ``ages`` of at most 10 %. The comparison
    with the current model is made on registration
    (:meth:`PLTVModel.passes_gate`).

    Parameters
    ----------
    report : HoldoutReport
        The model and its baselines on the held-out users.
    ages : sequence of int
        Snapshot ages averaged over.

    Returns
    -------
    list of str
        One readable reason per failed condition.
    """
    failures = report.gate(ages)
    total_error = report.mean(MODEL, "total_error", ages)
    if total_error > MAX_TOTAL_ERROR:
        failures.append(
            f"holdout total error {total_error:.1%} exceeds {MAX_TOTAL_ERROR:.0%}"
        )
    return failures


def require_labelled_users(n_labelled: int, as_of: pd.Timestamp) -> None:
    """Refuse to fit or measure a model on fewer than ``MIN_LABELLED_USERS``.

    Parameters
    ----------
    n_labelled
        How many users have a full 365-day value at ``as_of``.
    as_of
        The instant the values are read at.

    Raises
    ------
    TrainingError
        Too few users have a 365-day value; the message gives the count, the
        latest sign-up that has one, and the minimum.
    """
    if n_labelled < MIN_LABELLED_USERS:
        raise TrainingError(
            f"{n_labelled} user(s) signed up by "
            f"{as_of - pd.Timedelta(days=HORIZON_DAYS)} and so have a 365-day "
            f"value at {as_of}; at least {MIN_LABELLED_USERS} are needed"
        )


def _utc(as_of: pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(as_of)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _prepare(
    users: pd.DataFrame,
    revenue: pd.DataFrame,
    events: pd.DataFrame | None,
    as_of: pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Validated tables restricted to what is known at ``as_of``."""
    prepared = prepare_users(users)
    prepared = prepared.loc[prepared["signup_at"] <= as_of].reset_index(drop=True)
    money = prepare_revenue(revenue, prepared)
    money = money.loc[money["occurred_at"] <= as_of].reset_index(drop=True)
    acts = prepare_events(events, prepared)
    if not acts.empty:
        signup = signup_of(acts["user_id"], prepared.set_index("user_id")["signup_at"])
        cutoff = elapsed_days(as_of - signup)
        acts = acts.loc[acts["days"] <= cutoff].reset_index(drop=True)
    return prepared, money, acts


def _sample_users(
    users: pd.DataFrame, limit: int | None, random_state: int
) -> pd.DataFrame:
    """At most ``limit`` of ``users``, drawn uniformly, in their original order."""
    if limit is None or len(users) <= limit:
        return users
    rng = np.random.default_rng(random_state)
    keep = np.sort(rng.choice(len(users), size=limit, replace=False))
    logger.info(
        "training on a random %d of %d labelled users (max_train_users)",
        limit,
        len(users),
    )
    return users.iloc[keep]


def _fingerprint(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> str:
    """Digest of the training date and of every row and column of every table.

    A column the features do not read today still counts: the same users
    with one more column can train another model (an extra column becomes a
    feature), and two models must never share a fingerprint. Columns are
    taken in name order, so the order a file lists them in does not matter.
    """
    digest = hashlib.sha256()
    digest.update(f"as_of={as_of.isoformat()}\n".encode())
    for name, table in tables.items():
        digest.update(f"table={name} rows={len(table)}\n".encode())
        order = sorted(range(table.shape[1]), key=lambda i: str(table.columns[i]))
        for position in order:
            values = table.iloc[:, position]
            digest.update(f"column={table.columns[position]}\n".encode())
            digest.update(
                pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes()
            )
    return digest.hexdigest()


def _content_id(identity: Mapping[str, Any]) -> str:
    """The hash part of a version id: 12 hex digits of ``identity``."""
    text = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


#: Metadata that decides what a model is: its version id hashes these, and a
#: registry compares them before taking a stored version for the same model.
IDENTITY_KEYS: tuple[str, ...] = (
    "schema_version",
    "as_of",
    "data_fingerprint",
    "params",
    "feature_schema",
    "feature_columns",
    "regressor_shape",
    "libraries",
)


def _library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


#: What :meth:`PLTVModel.save` pickles, at the least.
_STATE_KEYS = frozenset({"schema", "regressor", "curves"})


class PLTVModel:
    """Predicts each user's value at 365, 1095 and 1825 days since sign-up.

    Parameters
    ----------
    ages : sequence of int
        Snapshot ages (days since sign-up) the regressor trains on.
    loss : {"auto", "relative", "poisson", "hurdle"}
        Shape of the regressor (see :mod:`models.estimator`); ``"auto"``
        chooses it on an inner time split of the training users
        (:func:`models.evaluation.choose_loss`).
    holdout_share : float
        Share of the latest labelled sign-ups held out to measure the model.
    gate_ages : sequence of int
        Ages whose holdout metrics decide the quality gate.
    random_state : int
        Seed of the boosters, the curve bootstrap and the training sample.
    max_train_users : int or None
        Labelled users the regressor, its holdout and its baselines use at
        most; above it a uniform random sample is drawn. None uses every one.
        The LTV curves always use every user.

    Attributes
    ----------
    version : str
        ``pltv-<as-of date>-<hash>``; the hash covers the metadata under
        :data:`IDENTITY_KEYS`: every table and column trained on, the
        parameters, the features learnt, the regressor's shape and the
        library versions.
    metrics : dict of str to float
        Holdout metrics: model means over ``gate_ages`` unprefixed
        (those of :data:`models.metrics.METRIC_NAMES`, total_error as
        absolute value), then ``<who>.<metric>`` and ``<who>@<age>.<metric>``
        for the model and each baseline.
    gate_failures : list of str
        Why the model does not beat its baselines on the holdout; empty if it does.

    Examples
    --------
    >>> model = PLTVModel().fit(users, revenue, as_of)  # doctest: +SKIP
    >>> model.predict(users, revenue, as_of).columns.tolist()  # doctest: +SKIP
    ['user_id', 'age_days', 'pltv_365', 'pltv_1095', 'pltv_1825']
    """

    def __init__(
        self,
        ages: Sequence[int] = DEFAULT_AGES,
        loss: LossOption = "auto",
        holdout_share: float = 0.3,
        gate_ages: Sequence[int] = GATE_AGES,
        random_state: int = 0,
        max_train_users: int | None = MAX_TRAIN_USERS,
    ) -> None:
        if max_train_users is not None and max_train_users < MIN_LABELLED_USERS:
            raise ValueError(
                f"max_train_users must be at least {MIN_LABELLED_USERS}, "
                f"got {max_train_users}"
            )
        self.max_train_users = max_train_users
        self.ages = tuple(int(a) for a in ages)
        self.loss: LossOption = loss
        self.holdout_share = holdout_share
        self.gate_ages = tuple(int(a) for a in gate_ages)
        self.random_state = random_state
        self.version = ""
        self.metrics: dict[str, float] = {}
        self.gate_failures: list[str] = []
        self.metadata: dict[str, Any] = {}
        self.holdout: HoldoutReport | None = None
        self._schema: FeatureSchema | None = None
        self._regressor: FutureValueRegressor | None = None
        self._curves: LTVCurves | None = None
        # Held-out users and tables of the last fit; not saved.
        self._holdout_tables: tuple[pd.DataFrame, ...] | None = None

    @property
    def curves(self) -> LTVCurves:
        """LTV curves fitted with the model."""
        if self._curves is None:
            raise ScoringError("the model is not fitted")
        return self._curves

    @property
    def event_features(self) -> list[str]:
        """Features read from the product events table; empty if none is used.

        A model trained with events needs the events table to score: without
        it every user would look as if they had done none of them.
        """
        if self._schema is None:
            raise ScoringError("the model is not fitted")
        return self._schema.event_columns

    @property
    def extra_user_columns(self) -> list[str]:
        """Extra columns of the users table the model reads as features.

        Those beyond the canonical ones (:data:`models.frames.USER_COLUMNS`),
        numbers first, then labels. Scoring needs every one of them.
        """
        if self._schema is None:
            raise ScoringError("the model is not fitted")
        labels = [c for c in self._schema.categories if c not in USER_COLUMNS]
        return [*self._schema.numeric_extras, *labels]

    def missing_user_columns(self, users: pd.DataFrame) -> list[str]:
        """The columns of :attr:`extra_user_columns` that ``users`` lacks.

        Parameters
        ----------
        users : pandas.DataFrame
            The users table to score.

        Returns
        -------
        list of str
            In the order the model reads them; empty when none is missing.
        """
        return [c for c in self.extra_user_columns if c not in users.columns]

    def require_user_columns(
        self,
        users: pd.DataFrame,
        source: str = "users",
        retrain: str = "retrain the model on users without them",
    ) -> None:
        """Refuse to score a users table without a column the model learnt.

        Parameters
        ----------
        users : pandas.DataFrame
            The users table to score.
        source : str
            Where it was read from (a file or a table), for the message.
        retrain : str
            How to retrain without the columns, for the message.

        Raises
        ------
        ScoringError
            ``users`` lacks a column of :attr:`extra_user_columns`; the message
            names the columns, ``source``, and asks to restore them or to
            ``retrain``.
        """
        missing = self.missing_user_columns(users)
        if not missing:
            return
        raise ScoringError(
            f"{source}: model {self.version} was trained with the users "
            f"column(s) {', '.join(missing)}, which this users table lacks; "
            f"restore them, or {retrain}"
        )

    def fit(
        self,
        users: pd.DataFrame,
        revenue: pd.DataFrame,
        as_of: pd.Timestamp,
        events: pd.DataFrame | None = None,
    ) -> PLTVModel:
        """Train on users old enough to have a 365-day value by ``as_of``.

        The latest ``holdout_share`` of labelled sign-ups is held out first to
        measure the model and its baselines (:attr:`metrics`); the regressor is
        then refitted on every labelled user (a random ``max_train_users`` of
        them on a larger account).

        Parameters
        ----------
        users, revenue : pandas.DataFrame
            Canonical tables.
        as_of : pandas.Timestamp
            Training date; nothing after it is read. Naive means UTC.
        events : pandas.DataFrame, optional
            Canonical product events.

        Returns
        -------
        PLTVModel
            ``self``.

        Raises
        ------
        TrainingError
            Fewer than 200 users have a full 365-day history by ``as_of``.
        InputDataError
            A table breaks its contract (see :mod:`models.frames`).
        """
        as_of = _utc(as_of)
        prepared, money, acts = _prepare(users, revenue, events, as_of)
        labelled = labelled_users(prepared, as_of)
        require_labelled_users(len(labelled), as_of)
        n_labelled = len(labelled)
        labelled = _sample_users(labelled, self.max_train_users, self.random_state)

        train_users, test_users = split_users(labelled, "time", self.holdout_share)
        self.holdout = evaluate_holdout(
            train_users,
            test_users,
            money,
            acts,
            split="time",
            ages=self.ages,
            eval_ages=self.gate_ages,
            loss=self.loss,
            random_state=self.random_state,
        )
        self._holdout_tables = (test_users, money, acts)
        self.metrics = self.holdout.flat(self.gate_ages)
        self.gate_failures = holdout_gate(self.holdout, self.gate_ages)

        shape = (
            choose_loss(
                labelled, money, acts, self.ages, self.gate_ages, self.random_state
            )
            if self.loss == "auto"
            else self.loss
        )
        self._schema = learn_schema(labelled, money, acts, self.ages)
        data = training_set(labelled, money, acts, self._schema, self.ages)
        self._regressor = FutureValueRegressor(shape, self.random_state).fit(
            data.features, data.future, self._schema.categorical_mask
        )
        self._curves = curves_from_prepared(prepared, money, as_of, self.random_state)

        params = {
            "ages": list(self.ages),
            "loss": self.loss,
            "holdout_share": self.holdout_share,
            "gate_ages": list(self.gate_ages),
            "random_state": self.random_state,
            "max_train_users": self.max_train_users,
        }
        identity: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "as_of": as_of.isoformat(),
            "data_fingerprint": _fingerprint(
                {"users": prepared, "revenue": money, "events": acts}, as_of
            ),
            "params": params,
            "feature_schema": self._schema.to_dict(),
            "feature_columns": self._schema.columns,
            "regressor_shape": shape,
            "libraries": _library_versions(),
        }
        # The id covers every table and column read, the options and the
        # learnt features: two different models never share it, while a
        # retrain on the same data with the same options and libraries gets
        # the same one (a registry keeps the stored copy).
        self.version = f"pltv-{as_of:%Y%m%d}-{_content_id(identity)}"
        now = pd.Timestamp.now(tz="UTC")
        self.metadata = {
            "format": ARTEFACT_FORMAT,
            **identity,
            "version": self.version,
            "created_at": now.isoformat(),
            "n_users": len(prepared),
            "n_labelled": n_labelled,
            "n_trained": len(labelled),
            "holdout_start": test_users["signup_at"].min().isoformat(),
            "metrics": self.metrics,
            "holdout": json.loads(self.holdout.to_json()),
            "gate_failures": self.gate_failures,
        }
        logger.info(
            "trained pLTV model %s on %d of %d labelled users: gini %.3f spearman %.3f "
            "total error %.1f%%",
            self.version,
            len(labelled),
            n_labelled,
            self.metrics["normalized_gini"],
            self.metrics["spearman"],
            100 * self.metrics["total_error"],
        )
        return self

    def predict(
        self,
        users: pd.DataFrame,
        revenue: pd.DataFrame,
        as_of: pd.Timestamp,
        events: pd.DataFrame | None = None,
        *,
        batch_users: int = BATCH_USERS,
        warn: Callable[[str], None] | None = None,
    ) -> pd.DataFrame:
        """Predicted total value since sign-up of every user signed up by ``as_of``.

        A user without revenue scores from their other signals (activation,
        events, segment); a user older than 365 days gets their realised
        365-day value. Values of a numeric extra column that are not numbers
        score as missing, with one warning per column.

        Parameters
        ----------
        users, revenue : pandas.DataFrame
            Canonical tables.
        as_of : pandas.Timestamp
            Scoring date; nothing after it is read. Naive means UTC.
        events : pandas.DataFrame, optional
            Canonical product events.
        batch_users : int
            Users scored at a time; memory grows with the batch, not the
            account (:mod:`models.batching`).
        warn : callable, optional
            Receives each warning about the values read; logged at WARNING
            when None.

        Returns
        -------
        pandas.DataFrame
            user_id, age_days, pltv_365, pltv_1095, pltv_1825, with
            ``pltv_365 <= pltv_1095 <= pltv_1825`` and the observed revenue
            included.

        Raises
        ------
        ScoringError
            The model is not fitted, it uses product-event features and
            ``events`` is None, ``users`` lacks a column the model learnt
            (:meth:`require_user_columns`), or no user signed up by ``as_of``.
        InputDataError
            A table breaks its contract (see :mod:`models.frames`).
        """
        if self._regressor is None or self._schema is None or self._curves is None:
            raise ScoringError("the model is not fitted")
        if events is None and self.event_features:
            raise ScoringError(
                f"events: model {self.version} was trained with product events "
                f"and uses the features {', '.join(self.event_features)}, but no "
                "events table was given; without it every user would score as "
                "if they had done none of them"
            )
        self.require_user_columns(users)
        as_of = _utc(as_of)
        signup = prepare_users(users)["signup_at"]
        if not signup.min() <= as_of:
            raise ScoringError(
                f"users: no user signed up by {as_of} (signup_at); the earliest "
                f"sign-up is {signup.min()}"
            )
        signed_up = users[(signup <= as_of).to_numpy()]
        for found in non_numeric_values(signed_up, self._schema):
            line = (
                f"users column {found.column!r}: {found.count} value(s) are not "
                f"numbers (first: {found.first!r}); the model reads numbers "
                "there, so they are scored as missing"
            )
            if warn is None:
                logger.warning("%s", line)
            else:
                warn(line)
        parts = [
            self._predict_batch(*batch, as_of)
            for batch in user_batches(signed_up, revenue, events, batch_users)
        ]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def _predict_batch(
        self,
        users: pd.DataFrame,
        revenue: pd.DataFrame,
        events: pd.DataFrame | None,
        as_of: pd.Timestamp,
    ) -> pd.DataFrame:
        regressor, schema, curves = self._regressor, self._schema, self._curves
        assert regressor is not None and schema is not None and curves is not None
        prepared, money, acts = _prepare(users, revenue, events, as_of)
        snapshots = scoring_snapshots(prepared, as_of)

        features = build_features(snapshots, prepared, money, acts, schema)
        young = (snapshots["age_days"] < HORIZON_DAYS).to_numpy()
        future = np.zeros(len(snapshots))
        if young.any():
            future[young] = regressor.predict(features.loc[young])
        to_date = features["revenue_to_date"].to_numpy()
        first_year = value_until(snapshots, money, HORIZON_DAYS).to_numpy()
        pltv_365 = np.where(young, to_date + future, first_year)

        segments = prepared.set_index("user_id").loc[snapshots["user_id"], "segment"]
        ratios = {
            days: {
                s: curves.horizon_ratio(str(s), days).ratio for s in segments.unique()
            }
            for days in (1095, 1825)
        }
        pltv_1095 = np.maximum(
            pltv_365 * segments.map(ratios[1095]).to_numpy(dtype="float64"), to_date
        )
        pltv_1095 = np.maximum(pltv_1095, pltv_365)
        pltv_1825 = np.maximum(
            pltv_365 * segments.map(ratios[1825]).to_numpy(dtype="float64"), pltv_1095
        )
        return pd.DataFrame(
            {
                "user_id": snapshots["user_id"].to_numpy(),
                "age_days": snapshots["age_days"].to_numpy(),
                "pltv_365": pltv_365,
                "pltv_1095": pltv_1095,
                "pltv_1825": pltv_1825,
            }
        )

    def passes_gate(self, current: PLTVModel | None) -> bool:
        """Whether this model may replace ``current``.

        Averaged over the gate ages on the time-based holdout, it must rank
        at least as well as every baseline (normalized Gini, within 0.01), be
        as well calibrated (decile WAPE, within 0.01; see
        :meth:`models.evaluation.HoldoutReport.gate`), keep its total error
        within 10 %, and rank at least as well as ``current``.

        ``current`` is scored on this model's holdout whenever it can be: its
        holdout regressor (trained, like this model's, on sign-ups before its
        own holdout) predicts the held-out users it never trained on, and both
        models are compared on those same rows without tolerance. Otherwise
        (an artefact without that regressor, columns the data no longer has,
        fewer than 100 such users) the two holdout figures are compared, and
        a shortfall within 0.01 is a tie. Reasons for a refusal are left in
        :attr:`gate_failures`.

        Parameters
        ----------
        current : PLTVModel or None
            The model in use, if any.

        Returns
        -------
        bool
        """
        failures = list(self.gate_failures)
        if current is not None and current.metrics:
            paired = self._paired_scores(current)
            if paired is not None:
                n_users, scores = paired
                for metric, (ours, theirs) in scores.items():
                    if ours < theirs:
                        failures.append(
                            f"{metric} {ours:.3f} worse than current model "
                            f"{current.version} ({theirs:.3f}) on the same "
                            f"{n_users} held-out users"
                        )
            else:
                # An artefact from before a gate metric existed is compared
                # on the metrics it has.
                for metric in GATE_RANKING:
                    if metric not in current.metrics:
                        continue
                    ours, theirs = self.metrics[metric], current.metrics[metric]
                    if ours < theirs - GATE_TOLERANCE:
                        failures.append(
                            f"{metric} {ours:.3f} worse than current model "
                            f"{current.version} ({theirs:.3f}, own holdout)"
                        )
        self.gate_failures = failures
        return not failures

    def _paired_scores(
        self, current: PLTVModel
    ) -> tuple[int, dict[str, tuple[float, float]]] | None:
        """Mean Gini and Spearman of this model and ``current`` on the same rows.

        None when ``current`` cannot be scored on this model's holdout.
        """
        holdout = self.holdout
        if (
            holdout is None
            or holdout.predictions is None
            or self._holdout_tables is None
            or current.holdout is None
            or current.holdout.schema is None
            or current.holdout.regressor is None
            or "holdout_start" not in current.metadata
        ):
            return None
        test_users, money, acts = self._holdout_tables
        start = pd.Timestamp(current.metadata["holdout_start"])
        unseen = test_users.loc[test_users["signup_at"] >= start]
        if len(unseen) < MIN_PAIRED_USERS:
            logger.info(
                "only %d held-out user(s) unseen by current model %s; comparing "
                "holdout figures instead",
                len(unseen),
                current.version,
            )
            return None
        ages = [a for a in self.gate_ages if a < HORIZON_DAYS]
        try:
            theirs = training_set(unseen, money, acts, current.holdout.schema, ages)
            their_pred = current.holdout.regressor.predict(theirs.features)
        except (KeyError, ValueError, InputDataError) as error:
            logger.warning(
                "current model %s cannot score this holdout (%s); comparing "
                "holdout figures instead",
                current.version,
                error,
            )
            return None
        mine = holdout.predictions.set_index(["user_id", "age_days"])
        keys = pd.MultiIndex.from_arrays(
            [theirs.snapshots["user_id"], theirs.snapshots["age_days"]]
        )
        our_pred = mine["predicted"].reindex(keys).to_numpy()
        actual = mine["actual"].reindex(keys).to_numpy()
        scores: dict[str, list[tuple[float, float]]] = {m: [] for m in GATE_RANKING}
        for age in ages:
            rows = (theirs.snapshots["age_days"] == age).to_numpy()
            ours_at = score_all(actual[rows], our_pred[rows])
            theirs_at = score_all(actual[rows], their_pred[rows])
            for metric in GATE_RANKING:
                scores[metric].append((ours_at[metric], theirs_at[metric]))
        means = {
            metric: (
                float(np.mean([o for o, _ in pairs])),
                float(np.mean([t for _, t in pairs])),
            )
            for metric, pairs in scores.items()
        }
        return len(unseen), means

    def save(self, directory: Path) -> Path:
        """Write the artefact (metadata.json, model.pkl) into ``directory``.

        Returns
        -------
        pathlib.Path
            The directory written.
        """
        if self._regressor is None:
            raise ScoringError("the model is not fitted")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "regressor": self._regressor,
            "curves": self._curves,
            "schema": self._schema,
            "holdout_schema": self.holdout.schema if self.holdout else None,
            "holdout_regressor": self.holdout.regressor if self.holdout else None,
        }
        (directory / "model.pkl").write_bytes(pickle.dumps(state))
        (directory / "metadata.json").write_text(json.dumps(self.metadata, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path) -> PLTVModel:
        """Read an artefact written by :meth:`save`.

        The pickle is only read after the metadata matches; load artefacts
        from trusted directories only (unpickling runs code).

        Raises
        ------
        ModelLoadError
            Missing files, another artefact format or schema version, or a
            scikit-learn version other than the one that trained it.
        """
        directory = Path(directory)
        meta_path = directory / "metadata.json"
        if directory.exists() and not directory.is_dir():
            raise ModelLoadError(
                f"{directory}: a file, not a model directory; pass the folder "
                "`valuebid model train --out DIR` wrote"
            )
        if not directory.is_dir():
            raise ModelLoadError(f"{directory}: no such model directory")
        if not meta_path.exists():
            raise ModelLoadError(
                f"{directory}: not a model directory (it has no metadata.json); "
                "`valuebid model train --out DIR` writes one"
            )
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"{meta_path}: unreadable model metadata") from error
        if meta.get("format") != ARTEFACT_FORMAT:
            raise ModelLoadError(f"{meta_path}: not a pLTV model artefact")
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ModelLoadError(
                f"{meta_path}: schema version {meta.get('schema_version')!r}, this "
                f"valuebid reads version {SCHEMA_VERSION}; retrain the model"
            )
        trained_with = meta.get("libraries", {}).get("scikit-learn")
        if trained_with != sklearn.__version__:
            raise ModelLoadError(
                f"{meta_path}: trained with scikit-learn {trained_with}, running "
                f"{sklearn.__version__}; retrain the model"
            )
        try:
            state = pickle.loads((directory / "model.pkl").read_bytes())
        except Exception as error:  # a damaged pickle fails in many ways
            raise ModelLoadError(
                f"{directory}: unreadable model.pkl ({type(error).__name__}); "
                "retrain the model or restore the file"
            ) from error
        if not isinstance(state, dict) or not state.keys() >= _STATE_KEYS:
            raise ModelLoadError(f"{directory}: model.pkl holds no pLTV model")
        schema = FeatureSchema.from_dict(meta["feature_schema"])
        if schema.columns != meta.get("feature_columns") or schema != state["schema"]:
            raise ModelLoadError(
                f"{meta_path}: feature schema does not match model.pkl"
            )

        params = meta["params"]
        model = cls(
            ages=params["ages"],
            loss=params["loss"],
            holdout_share=params["holdout_share"],
            gate_ages=params["gate_ages"],
            random_state=params["random_state"],
            max_train_users=params.get("max_train_users"),
        )
        model.version = str(meta["version"])
        model.metrics = {str(k): float(v) for k, v in meta["metrics"].items()}
        model.gate_failures = list(meta.get("gate_failures", []))
        model.metadata = meta
        model._schema = schema
        model._regressor = state["regressor"]
        model._curves = state["curves"]
        if state.get("holdout_regressor") is not None:
            model.holdout = HoldoutReport(
                split="time",
                n_train=int(model.metrics.get("n_train", 0)),
                n_test=int(model.metrics.get("n_test", 0)),
                schema=state["holdout_schema"],
                regressor=state["holdout_regressor"],
            )
        return model
