"""SelectorModel: the contract the decision relies on (probabilities per candidate id, summing
to one; picklable), and the time-ordered temperature calibration."""

from __future__ import annotations

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from trading_pipeline.errors import UserInputError
from trading_pipeline.selector.model import (
    CASH,
    DEFAULT_CONFIGS,
    Candidate,
    ModelConfig,
    SelectorModel,
    TemperatureCalibrated,
    fit_calibrated,
    make_pipeline,
)

FEATURES = [f"f{i}" for i in range(6)]
A = Candidate("sma_cross@spot-BTCUSDT-1h", "sma_cross", 1, {"fast": 5}, "spot-BTCUSDT-1h", "1h")
B = Candidate("macd@spot-ETHUSDT-1h", "macd", 1, {}, "spot-ETHUSDT-1h", "1h")
NEVER = Candidate("momentum@spot-BNBUSDT-1h", "momentum", 1, {}, "spot-BNBUSDT-1h", "1h")


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    y = np.where(x[:, 0] > 0.3, A.id, np.where(x[:, 1] > 0, B.id, "cash")).astype(object)
    y[: n // 3] = np.where(x[: n // 3, 0] > 0, A.id, "cash")  # B absent from the early rows
    return x, y


def _model(config: ModelConfig = DEFAULT_CONFIGS[1]) -> SelectorModel:
    x, y = _data()
    return SelectorModel(
        fit_calibrated(x, y, config),
        candidates=[CASH, A, B, NEVER],
        feature_names=FEATURES,
        series=["spot-BTCUSDT-1h", "spot-ETHUSDT-1h"],
        interval="1h",
        warmup_bars=481,
    )


@pytest.mark.parametrize("config", [DEFAULT_CONFIGS[1], DEFAULT_CONFIGS[-1]])
def test_probabilities_per_candidate_sum_to_one(config: ModelConfig) -> None:
    model = _model(config)
    state = {f: 0.0 for f in FEATURES} | {"f0": 2.0}
    p = model.predict_proba(state)
    assert list(p) == [CASH.id, A.id, B.id, NEVER.id]
    assert sum(p.values()) == pytest.approx(1.0)
    assert p[NEVER.id] == 0.0  # never the best in training: never chosen
    assert max(p, key=p.__getitem__) == A.id  # f0 high → A, as in the data
    frame = pd.DataFrame([state])
    assert model.predict(frame).tolist() == [A.id]
    assert np.allclose(model.proba_matrix(frame)[0], list(p.values()))
    assert model.decision_every == "1d" and model.warmup_bars == 481
    # a feature the state could not compute (NaN) is imputed, not an error
    holes = model.predict_proba(state | {"f3": float("nan")})
    assert sum(holes.values()) == pytest.approx(1.0)


def test_picklable_with_cloudpickle_and_deterministic() -> None:
    model = _model()
    state = {f: 0.3 for f in FEATURES}
    back = cloudpickle.loads(cloudpickle.dumps(model))
    assert back.predict_proba(state) == model.predict_proba(state)
    assert back.candidates == model.candidates and back.feature_names == model.feature_names
    assert _model().predict_proba(state) == model.predict_proba(state)  # nothing random


def test_bad_states_and_inconsistent_models_are_refused() -> None:
    model = _model()
    with pytest.raises(UserInputError, match="lacks"):
        model.predict_proba({"f0": 1.0})
    x, y = _data()
    est = fit_calibrated(x, y, DEFAULT_CONFIGS[0])
    with pytest.raises(ValueError, match="cash"):
        SelectorModel(
            est, candidates=[A, B], feature_names=FEATURES, series=[], interval="1h", warmup_bars=1
        )
    with pytest.raises(ValueError, match="not candidates"):
        SelectorModel(
            est,
            candidates=[CASH, A],
            feature_names=FEATURES,
            series=[],
            interval="1h",
            warmup_bars=1,
        )


def test_temperature_is_fitted_on_later_rows_only() -> None:
    """Labels in the calibration part that the early classifier never saw are skipped; a
    classifier that is overconfident on later rows gets a temperature above one."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(600, 3))
    y = np.where(x[:, 0] > 0, "a", "b").astype(object)
    late = slice(420, 600)
    y[late] = np.where(rng.random(180) < 0.5, "a", "b")  # the relation breaks later: noise
    cal = TemperatureCalibrated(make_pipeline(ModelConfig(c=10.0))).fit(x, y)
    assert cal.temperature > 1.0
    assert set(cal.classes_) == {"a", "b"}
    p = cal.predict_proba(x[:5])
    assert np.allclose(p.sum(axis=1), 1.0)
    raw = cal.fitted_.predict_proba(x[:5])
    assert np.all(np.abs(p - 0.5) <= np.abs(raw - 0.5) + 1e-12)  # softened, never sharpened


def test_a_single_label_gives_a_constant_model() -> None:
    x, _ = _data()
    est = fit_calibrated(x, np.array(["cash"] * len(x), dtype=object), DEFAULT_CONFIGS[0])
    model = SelectorModel(
        est, candidates=[CASH, A], feature_names=FEATURES, series=[], interval="1h", warmup_bars=1
    )
    assert model.predict_proba({f: 1.0 for f in FEATURES}) == {"cash": 1.0, A.id: 0.0}


def test_expected_return_rule_uses_the_outcome_table() -> None:
    """p = probabilities of each candidate being the best; outcome[k, j] = candidate j's mean
    return on the windows candidate k was best: the rule picks argmax_j sum_k p_k outcome[k, j]."""
    x, y = _data()
    est = fit_calibrated(x, y, DEFAULT_CONFIGS[1])
    outcome = np.array(
        [
            [0.0, -0.01, -0.01, 0.0],  # windows where cash was best
            [0.0, 0.03, 0.00, 0.0],  # windows where A was best
            [0.0, -0.02, 0.02, 0.0],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    model = SelectorModel(
        est,
        candidates=[CASH, A, B, NEVER],
        feature_names=FEATURES,
        series=[],
        interval="1h",
        warmup_bars=1,
        outcome=outcome,
        decision_rule="expected_return",
    )
    state = {f: 0.0 for f in FEATURES}
    p = model.predict_proba(state)
    e = model.expected_returns(state)
    want = {c: sum(p[k] * outcome[i, j] for i, k in enumerate(p)) for j, c in enumerate(p)}
    assert e == pytest.approx(want)
    assert model.choose(state) == max(e, key=e.__getitem__)
    assert model.predict(pd.DataFrame([state])).tolist() == [model.choose(state)]
    with pytest.raises(ValueError, match="outcome"):
        SelectorModel(
            est,
            candidates=[CASH, A, B],
            feature_names=FEATURES,
            series=[],
            interval="1h",
            warmup_bars=1,
            decision_rule="expected_return",
        )
