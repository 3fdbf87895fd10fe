"""The selector model: market state → calibrated probability of each candidate being best.

:class:`SelectorModel` is what gets registered as ``strategy-selector`` and what the 5-minute
decision loads: a fitted scikit-learn pipeline plus everything needed to use it without the
training code (the candidates, the state's feature names in column order, the series and
interval the state is computed on, how many bars of warm-up the state needs).

The estimator (see :func:`make_pipeline`): median imputation → standardisation → a
multinomial logistic regression with an L2 penalty (or a small, shallow gradient-boosting
model), calibrated by temperature scaling fitted on rows that come *after* the rows its
classifier was fitted on (:class:`TemperatureCalibrated`; nothing is shuffled).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from trading_pipeline.errors import UserInputError

CASH_ID = "cash"
MODEL_NAME = "strategy-selector"


@dataclass(frozen=True)
class Candidate:
    """One thing a bot can be told to run: a tuned family on a series, or cash."""

    id: str
    family: str
    version: int
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    series: str = ""
    interval: str = ""
    fee: float | None = None  # the cost model its study was tuned with (None: not recorded)
    slippage: float | None = None

    @property
    def is_cash(self) -> bool:
        return self.family == CASH_ID

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "family": self.family,
            "version": self.version,
            "params": self.params,
            "series": self.series,
            "interval": self.interval,
            "fee": self.fee,
            "slippage": self.slippage,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Candidate:
        return cls(
            id=str(d["id"]),
            family=str(d["family"]),
            version=int(d["version"]),
            params=dict(d.get("params") or {}),
            series=str(d.get("series") or ""),
            interval=str(d.get("interval") or ""),
            fee=None if d.get("fee") is None else float(d["fee"]),
            slippage=None if d.get("slippage") is None else float(d["slippage"]),
        )


CASH = Candidate(id=CASH_ID, family=CASH_ID, version=0, params={}, series="", interval="")


def candidate_id(family: str, series: str) -> str:
    """``sma_cross@spot-BTCUSDT-1h``."""
    return f"{family}@{series}"


@dataclass(frozen=True)
class ModelConfig:
    """One estimator configuration the cross-validation chooses among."""

    kind: str = "logreg"  # "logreg" | "hgb"
    c: float = 0.1  # inverse L2 strength (logreg)
    max_depth: int = 3  # hgb
    learning_rate: float = 0.05  # hgb
    max_iter: int = 100  # hgb
    calibration_fraction: float = 0.3
    weighting: str = "none"  # "none" | "regret": rows weighted by what a wrong choice costs

    @property
    def label(self) -> str:
        w = ", regret-weighted" if self.weighting == "regret" else ""
        if self.kind == "logreg":
            return f"logreg(C={self.c:g}{w})"
        return f"hgb(depth={self.max_depth},lr={self.learning_rate:g},iter={self.max_iter}{w})"

    def to_params(self) -> dict[str, Any]:
        return {
            "model_kind": self.kind,
            "model_c": self.c,
            "model_max_depth": self.max_depth,
            "model_learning_rate": self.learning_rate,
            "model_max_iter": self.max_iter,
            "model_weighting": self.weighting,
            "calibration": f"temperature on the last {self.calibration_fraction:.0%} of rows",
        }


DEFAULT_CONFIGS: tuple[ModelConfig, ...] = (
    ModelConfig("logreg", c=0.01),
    ModelConfig("logreg", c=0.1),
    ModelConfig("logreg", c=1.0),
    ModelConfig("logreg", c=0.1, weighting="regret"),
)
# Offered, not default: on the real data it lost in CV, and one prediction takes 80-130 ms on
# a busy two-core machine (OpenMP), against a 5 ms budget for the decision.
GRADIENT_BOOSTING = ModelConfig("hgb")


def make_pipeline(config: ModelConfig, *, seed: int = 0) -> Pipeline:
    """The uncalibrated estimator of ``config``: impute → scale → classifier."""
    if config.kind == "logreg":
        clf: Any = LogisticRegression(C=config.c, max_iter=2000)
    elif config.kind == "hgb":
        clf = HistGradientBoostingClassifier(
            max_depth=config.max_depth,
            learning_rate=config.learning_rate,
            max_iter=config.max_iter,
            l2_regularization=1.0,
            min_samples_leaf=20,
            random_state=seed,
        )
    else:
        raise UserInputError(f"unknown model kind {config.kind!r}; use logreg or hgb")
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("clf", clf),
        ]
    )


class TemperatureCalibrated:
    """A classifier whose probabilities are temperature-scaled on *later* rows.

    Rows are in time order. The base pipeline is first fitted on the earliest
    ``1 - calibration_fraction`` of them; one temperature ``T`` is fitted (log loss) on its
    probabilities for the remaining, later rows; the base is then refitted on all rows and its
    log-probabilities are divided by ``T`` (softmax). One parameter cannot overfit a few
    hundred rows, and unlike per-class Platt scaling (``CalibratedClassifierCV``) it works
    when a candidate is the best on only a handful of days and absent from a fold.
    """

    def __init__(self, base: Pipeline, *, calibration_fraction: float = 0.3):
        self.base = base
        self.calibration_fraction = calibration_fraction
        self.temperature = 1.0

    def fit(
        self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> TemperatureCalibrated:
        from scipy.optimize import minimize_scalar

        y = np.asarray(y, dtype=object)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        cut = int(len(y) * (1.0 - self.calibration_fraction))
        early, late = y[:cut], y[cut:]
        if len(np.unique(early)) >= 2 and len(late) >= 10:
            first = clone(self.base).fit(x[:cut], early, **_weights(w, slice(0, cut)))
            classes = [str(c) for c in first.classes_]
            known = np.array([str(v) in classes for v in late])
            if known.sum() >= 10:
                logp = np.log(np.clip(first.predict_proba(x[cut:][known]), 1e-12, 1.0))
                idx = np.array([classes.index(str(v)) for v in late[known]])

                def loss(log_t: float) -> float:
                    z = logp / np.exp(log_t)
                    z -= z.max(axis=1, keepdims=True)
                    lse = np.log(np.exp(z).sum(axis=1))
                    return float(np.mean(lse - z[np.arange(len(idx)), idx]))

                res = minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded")
                self.temperature = float(np.exp(res.x))
        self.fitted_ = clone(self.base).fit(x, y, **_weights(w, slice(None)))
        self.classes_ = np.asarray(self.fitted_.classes_, dtype=object)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = np.asarray(self.fitted_.predict_proba(x), dtype=float)
        if self.temperature == 1.0:
            return p
        z = np.log(np.clip(p, 1e-12, 1.0)) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))


def _weights(w: np.ndarray | None, rows: slice) -> dict[str, Any]:
    return {} if w is None else {"clf__sample_weight": w[rows]}


def fit_calibrated(
    x: np.ndarray,
    y: np.ndarray,
    config: ModelConfig,
    *,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
) -> Any:
    """Fit ``config`` on rows in time order, temperature-calibrated on its later rows.

    With a single label there is nothing to learn: a constant answers it with probability 1.
    """
    if len(np.unique(y)) < 2:
        return _Constant(str(y[0]))
    model = TemperatureCalibrated(
        make_pipeline(config, seed=seed), calibration_fraction=config.calibration_fraction
    )
    return model.fit(x, y, sample_weight=sample_weight)


class _Constant:
    """A 'classifier' for a training set with one label."""

    def __init__(self, label: str):
        self.classes_ = np.array([label], dtype=object)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.ones((len(x), 1))


class SelectorModel:
    """A fitted selector: state (feature name → value) → probability per candidate id.

    Attributes follow the cross-helper contract: ``candidates``, ``feature_names``,
    ``decision_every``, ``series``, ``interval``, ``warmup_bars``; ``info`` holds how it was
    trained (config, held-out period, metrics) for the decision record.

    *Choosing* is not "the most probable candidate" by default: the most frequent best is
    cash (the best on many calm days), so that rule sits in cash. With ``outcome`` (row ``k``:
    the candidates' mean window return on the training windows whose best was candidate
    ``k``), ``decision_rule="expected_return"`` picks the candidate with the highest
    ``sum_k p_k(state) * outcome[k, j]``, a Bayes decision that needs calibrated
    probabilities. Training picks the rule by cross-validation (stored in
    ``decision_rule``); :meth:`choose` and :meth:`expected_returns` apply it.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        candidates: Sequence[Candidate],
        feature_names: Sequence[str],
        series: Sequence[str],
        interval: str,
        warmup_bars: int,
        decision_every: str = "1d",
        info: Mapping[str, Any] | None = None,
        outcome: np.ndarray | None = None,
        decision_rule: str = "argmax",
    ):
        ids = [c.id for c in candidates]
        if len(set(ids)) != len(ids):
            raise ValueError("candidate ids must be unique")
        if CASH_ID not in ids:
            raise ValueError("the cash candidate must be one of the candidates")
        self.estimator = estimator
        self.candidates: tuple[Candidate, ...] = tuple(candidates)
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.series: tuple[str, ...] = tuple(series)
        self.interval = interval
        self.warmup_bars = int(warmup_bars)
        self.decision_every = decision_every
        self.info: dict[str, Any] = dict(info or {})
        if decision_rule not in ("argmax", "expected_return"):
            raise ValueError(f"unknown decision rule {decision_rule!r}")
        if decision_rule == "expected_return" and outcome is None:
            raise ValueError("the expected-return rule needs the outcome table")
        k = len(self.candidates)
        if outcome is not None and np.shape(outcome) != (k, k):
            raise ValueError(f"outcome must be {k} x {k}")
        self.outcome = None if outcome is None else np.asarray(outcome, dtype=float)
        self.decision_rule = decision_rule
        classes = [str(c) for c in estimator.classes_]
        unknown = set(classes) - set(ids)
        if unknown:
            raise ValueError(f"the estimator knows labels that are not candidates: {unknown}")
        # column j of the estimator's output → position in ``candidates``
        self._columns = np.array([ids.index(c) for c in classes], dtype=np.int64)

    @property
    def candidate_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.candidates)

    def candidate(self, cid: str) -> Candidate:
        for c in self.candidates:
            if c.id == cid:
                return c
        raise KeyError(cid)

    def _matrix(self, x: pd.DataFrame | np.ndarray | Mapping[str, float]) -> np.ndarray:
        if isinstance(x, Mapping):
            missing = [f for f in self.feature_names if f not in x]
            if missing:
                raise UserInputError(
                    f"state lacks {len(missing)} feature(s) the model needs, e.g. {missing[0]}"
                )
            return np.array([[float(x[f]) for f in self.feature_names]], dtype=float)
        if isinstance(x, pd.DataFrame):
            missing = [f for f in self.feature_names if f not in x.columns]
            if missing:
                raise UserInputError(f"input lacks feature column {missing[0]}")
            return x.loc[:, list(self.feature_names)].to_numpy(dtype=float)
        arr = np.asarray(x, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != len(self.feature_names):
            raise UserInputError(f"expected {len(self.feature_names)} feature columns")
        return arr

    def proba_matrix(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Probabilities, one row per input row, one column per candidate (rows sum to 1)."""
        import sklearn

        m = self._matrix(x)
        # the inputs are a plain float matrix in the fitted column order: skip sklearn's
        # per-call parameter validation (a third of a single-row call's time)
        with sklearn.config_context(skip_parameter_validation=True):
            raw = np.asarray(self.estimator.predict_proba(m), dtype=float)
        out = np.zeros((m.shape[0], len(self.candidates)))
        out[:, self._columns] = raw
        total = out.sum(axis=1, keepdims=True)
        return np.divide(out, total, out=np.full_like(out, 1.0 / out.shape[1]), where=total > 0)

    def predict_proba(self, state: Mapping[str, float]) -> dict[str, float]:
        """Candidate id → probability of being the best over the next decision window."""
        p = self.proba_matrix(self._matrix(state))[0]
        return {c.id: float(v) for c, v in zip(self.candidates, p, strict=True)}

    def expected_matrix(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Expected window return of every candidate per row (needs ``outcome``)."""
        if self.outcome is None:
            raise ValueError("this model has no outcome table")
        return np.asarray(self.proba_matrix(x) @ self.outcome)

    def choose_index(self, x: pd.DataFrame | np.ndarray, *, rule: str | None = None) -> np.ndarray:
        """Index into ``candidates`` of the choice per row by ``rule`` (default: the model's
        ``decision_rule``); ties go to the earlier candidate, i.e. cash first."""
        rule = rule or self.decision_rule
        if rule == "expected_return":
            return np.argmax(self.expected_matrix(x), axis=1)
        return np.argmax(self.proba_matrix(x), axis=1)

    def expected_returns(self, state: Mapping[str, float]) -> dict[str, float]:
        """Candidate id → expected net return over the next window (see the class docstring)."""
        e = self.expected_matrix(self._matrix(state))[0]
        return {c.id: float(v) for c, v in zip(self.candidates, e, strict=True)}

    def choose(self, state: Mapping[str, float]) -> str:
        """The candidate id this model picks for ``state`` by its decision rule."""
        return self.candidates[int(self.choose_index(self._matrix(state))[0])].id

    def predict(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The most probable candidate id per row (MLflow's pyfunc and signature use this)."""
        ids = np.array(self.candidate_ids, dtype=object)
        return ids[self.choose_index(x)].astype(str)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (no estimator)."""
        return {
            "candidates": [c.to_json() for c in self.candidates],
            "feature_names": list(self.feature_names),
            "series": list(self.series),
            "interval": self.interval,
            "warmup_bars": self.warmup_bars,
            "decision_every": self.decision_every,
            "decision_rule": self.decision_rule,
            "info": json.loads(json.dumps(self.info, default=str)),
        }

    def __repr__(self) -> str:
        return (
            f"SelectorModel({len(self.candidates)} candidates, {len(self.feature_names)} "
            f"features, series={list(self.series)}, every={self.decision_every})"
        )
