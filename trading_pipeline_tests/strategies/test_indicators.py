"""The strategies' few indicators agree with TA-Lib and are causal."""

from __future__ import annotations

import numpy as np
import pytest

from trading_pipeline.strategies import indicators as ind
from trading_pipeline_tests.fakes.bars import make_bars


@pytest.fixture(scope="module")
def ohlc() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bars = make_bars(800, seed=4)
    return tuple(bars[c].to_numpy() for c in ("high", "low", "close"))  # type: ignore[return-value]


def test_against_talib(ohlc: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    talib = pytest.importorskip("talib")
    high, low, close = ohlc
    pairs = [
        (ind.sma(close, 20), talib.SMA(close, 20)),
        (ind.ema(close, 12), talib.EMA(close, 12)),
        (ind.rsi(close, 14), talib.RSI(close, 14)),
        (ind.atr(high, low, close, 14), talib.ATR(high, low, close, 14)),
        (ind.rolling_max(high, 20), talib.MAX(high, 20)),
        (ind.rolling_min(low, 20), talib.MIN(low, 20)),
        (ind.rolling_std(close, 20), talib.STDDEV(close, 20, 1.0)),
        (ind.roc(close, 10), talib.ROCP(close, 10)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_prefix_sum_sma_is_causal(ohlc: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    close = ohlc[2]
    full = ind.sma(close, 30)
    for t in (29, 100, 500):
        np.testing.assert_array_equal(ind.sma(close[: t + 1], 30), full[: t + 1])


def test_cross_events() -> None:
    a = np.array([np.nan, 1.0, 3.0, 3.0, 1.0, 2.0])
    b = np.array([2.0, 2.0, 2.0, 3.0, 2.0, 2.0])
    assert ind.cross_above(a, b).tolist() == [False, False, True, False, False, False]
    assert ind.cross_below(a, b).tolist() == [False, False, False, False, True, False]


def _two_pass_std(x: np.ndarray, window: int) -> np.ndarray:
    """The textbook definition, window by window (the O(n·window) reference)."""
    out = np.full(x.shape[0], np.nan)
    for i in range(window - 1, x.shape[0]):
        w = x[i - window + 1 : i + 1]
        out[i] = np.sqrt(np.mean((w - w.mean()) ** 2))
    return out


@pytest.mark.parametrize(("level", "vol"), [(5e4, 1e-3), (5e4, 1e-6), (1.0, 1e-2), (1e-6, 1e-3)])
def test_sliding_std_stays_with_the_two_pass_definition(level: float, vol: float) -> None:
    """The O(n) rolling std equals the two-pass definition to ~1e-12 of its value at any
    price level, even when the spread is a millionth of the price (where plain running sums of
    squares lose every digit); a constant stretch gives exactly 0, and a NaN only spoils the
    windows that hold it."""
    rng = np.random.default_rng(int(level * 7) % 1000)
    x = level * np.exp(np.cumsum(rng.normal(0.0, vol, 6000)))
    x[3000:3100] = x[2999]
    x[4500] = np.nan
    for window in (2, 5, 20, 200):
        got = ind.rolling_std(x, window)
        want = _two_pass_std(x, window)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert np.isnan(got[4500 : 4500 + window]).all() and np.isfinite(got[4500 + window])
        flat = got[3000 + window - 1 : 3100]
        assert (flat == 0.0).all()
        ok = np.isfinite(want) & (want > 1e-3 * np.nanmedian(want))
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-10, atol=0)
        assert np.nanmax(np.abs(got - want) / x) < 1e-14  # the rest: price-scale rounding
