"""The transparent rule-based labeller: long moving average, drawdown, realised-volatility rank.

With ``d`` bars per day (inferred from the bars' spacing):

- ``ma`` = SMA of the close over ``ma_days``; ``slope`` = ``ma`` against its value
  ``slope_days`` earlier; ``dd`` = close against the highest high of the past ``high_days``
  (the running high while less history exists).
- **bull**: close above ``ma``, ``ma`` rising, and ``dd`` shallower than ``-bull_max_dd``.
- **bear**: close below ``ma`` and either ``ma`` falling or ``dd`` at least ``-bear_dd``.
- **sideways**: anything else.
- **high volatility**: the ``vol_days`` realised volatility of log returns above the
  ``vol_quantile`` of its daily values over the previous ``vol_window_days`` (past days only).
- ``unknown`` until the moving average and its slope exist.

The raw label is then confirmed with :func:`~trading_pipeline.regimes.base.confirm`
(``min_duration_days``). Every input at bar ``t`` reads bars ``<= t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from trading_pipeline.regimes.base import (
    bars_per_day,
    confirm,
    daily_threshold,
    encode,
    labels_frame,
)


@dataclass(frozen=True)
class RulesLabeller:
    """Trend from a long MA and drawdown, volatility from its own past percentile."""

    ma_days: int = 100
    slope_days: int = 20
    high_days: int = 365
    bull_max_dd: float = 0.30
    bear_dd: float = 0.20
    vol_days: int = 7
    vol_quantile: float = 0.8
    vol_window_days: int = 365
    min_vol_days: int = 30
    min_duration_days: float = 3.0
    name: str = "rules"

    def raw_codes(self, bars: pl.DataFrame) -> np.ndarray:
        """Unsmoothed regime codes (see the module docstring)."""
        d = bars_per_day(bars)
        ma_n = max(round(self.ma_days * d), 2)
        slope_n = max(round(self.slope_days * d), 1)
        high_n = max(round(self.high_days * d), 1)
        vol_n = max(round(self.vol_days * d), 2)
        c = pl.col("close")
        feats = bars.select(
            "open_time",
            c,
            (ma := c.rolling_mean(ma_n)).alias("ma"),
            (ma / ma.shift(slope_n) - 1).alias("slope"),
            (c / pl.col("high").rolling_max(high_n, min_samples=1) - 1).alias("dd"),
            c.log().diff().rolling_std(vol_n).alias("rv"),
        )
        close = feats.get_column("close").to_numpy()
        ma_v = feats.get_column("ma").fill_null(np.nan).to_numpy()
        slope = feats.get_column("slope").fill_null(np.nan).to_numpy()
        dd = feats.get_column("dd").fill_null(np.nan).to_numpy()
        rv = feats.get_column("rv").fill_null(np.nan).to_numpy()
        thr = daily_threshold(
            feats.get_column("open_time"),
            feats.get_column("rv"),
            quantile=self.vol_quantile,
            days=self.vol_window_days,
            min_days=self.min_vol_days,
        )
        above, rising = close > ma_v, slope > 0
        bull = above & rising & (dd > -self.bull_max_dd)
        bear = (close < ma_v) & ((slope < 0) | (dd <= -self.bear_dd))
        trend = np.where(bull, 0, np.where(bear, 1, 2))
        with np.errstate(invalid="ignore"):
            highvol = np.nan_to_num(rv, nan=0.0) > np.nan_to_num(thr, nan=np.inf)
        known = ~np.isnan(slope)
        return encode(trend, highvol, known)

    def label(self, bars: pl.DataFrame) -> pl.DataFrame:
        """``open_time, regime, trend, vol`` for every bar."""
        n = max(round(self.min_duration_days * bars_per_day(bars)), 1)
        return labels_frame(bars.get_column("open_time"), confirm(self.raw_codes(bars), n))
