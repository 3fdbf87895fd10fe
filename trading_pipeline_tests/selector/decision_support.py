"""Shared helpers of the decision tests: generated bars (from the kit), two selector models.

``FixedModel`` is a stand-in whose probabilities the test sets (hysteresis, eligibility);
:func:`fitted_selector` is a real :class:`~trading_pipeline.selector.model.SelectorModel`
(a logistic regression over the real state features) for the MLflow round trips.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.selector.model import CASH, Candidate, ModelConfig, SelectorModel
from trading_pipeline.selector.model import make_pipeline as selector_pipeline
from trading_pipeline.selector.state import STATE_WARMUP_BARS, feature_names, state_frame
from trading_pipeline_tests.fakes.bars import make_bars

START = datetime(2024, 1, 1, tzinfo=UTC)
BTC = "spot-BTCUSDT-1h"
ETH = "spot-ETHUSDT-1h"
SERIES = (BTC, ETH)

SMA_BTC = Candidate(
    "sma_cross@spot-BTCUSDT-1h", "sma_cross", 1, {"fast": 10, "slow": 50}, BTC, "1h"
)
SMA_ETH = Candidate(
    "sma_cross@spot-ETHUSDT-1h", "sma_cross", 1, {"fast": 20, "slow": 80}, ETH, "1h"
)
MOM_BTC = Candidate("momentum@spot-BTCUSDT-1h", "momentum", 1, {"lookback": 48}, BTC, "1h")
HEDGE_ETH = Candidate("hedging@spot-ETHUSDT-1h", "hedging", 1, {"dd": 0.1}, ETH, "1h")
CANDIDATES = (CASH, SMA_BTC, SMA_ETH, MOM_BTC, HEDGE_ETH)


def regime_bars(n: int, *, seed: int, start: datetime = START) -> pl.DataFrame:
    """``n`` hourly bars from ``start`` (a bull, bear and sideways third), quoted to 8 decimals
    as Binance (and the fake) quote them, so store and exchange bars agree."""
    return make_bars(
        n, seed=seed, start=start, trend="regimes", price=20_000.0 + 1000 * seed, decimals=8
    )


def fleet_bars(n: int, *, start: datetime = START) -> dict[str, pl.DataFrame]:
    return {BTC: regime_bars(n, seed=1, start=start), ETH: regime_bars(n, seed=2, start=start)}


class FixedModel:
    """A selector stand-in: the contract's attributes and probabilities the test sets."""

    def __init__(self, probs: Mapping[str, float], candidates: tuple[Candidate, ...] = CANDIDATES):
        self.candidates = candidates
        self.series = SERIES
        self.interval = "1h"
        self.warmup_bars = 10
        self.decision_every = "1d"
        self.feature_names: tuple[str, ...] = ()
        self.probs = dict(probs)
        self.calls = 0

    def predict_proba(self, state: Mapping[str, float]) -> dict[str, float]:
        self.calls += 1
        return dict(self.probs)


def stub_state(bars: Mapping[str, pl.DataFrame], *, interval: str, **_: Any) -> dict[str, float]:
    """A state that only says how many bars were seen (the FixedModel ignores it)."""
    return {f"{k}.rows": float(df.height) for k, df in bars.items()}


def fitted_selector(bars: Mapping[str, pl.DataFrame], *, c: float = 0.1) -> SelectorModel:
    """A real selector: logistic regression on the state features, labels by a simple rule.

    The label is the candidate whose series rose most over the next 24 bars (cash when both
    fell); meaningless as a strategy, but a real fitted, calibrated-free sklearn pipeline.
    """
    frame = state_frame(bars, interval="1h")
    names = feature_names(list(SERIES))
    x = frame.select(names).to_numpy()
    fwd = {
        k: (bars[k]["close"].shift(-24) / bars[k]["close"]).log().fill_null(0.0).to_numpy()
        for k in SERIES
    }
    n = min(len(x), len(fwd[BTC]))
    labels = np.where(
        np.maximum(fwd[BTC][:n], fwd[ETH][:n]) <= 0,
        CASH.id,
        np.where(fwd[BTC][:n] >= fwd[ETH][:n], SMA_BTC.id, SMA_ETH.id),
    )
    rows = slice(STATE_WARMUP_BARS, n - 24)
    estimator = selector_pipeline(ModelConfig("logreg", c=c)).fit(x[rows], labels[rows])
    return SelectorModel(
        estimator,
        candidates=CANDIDATES,
        feature_names=names,
        series=SERIES,
        interval="1h",
        warmup_bars=STATE_WARMUP_BARS,
        info={"test": True, "c": c},
    )


def hours(n: int) -> timedelta:
    return timedelta(hours=n)
