"""Hedging: hold the spot asset, and cut exposure when the market turns.

Risk-off triggers, each computed at the close of bar ``t`` from bars ``<= t``:

- **drawdown**: the close (or the fleet's equity, when a ``fleet`` series is given) is more than
  ``dd_limit`` below its high of the last ``dd_bars`` bars;
- **regime**: the causal rules labeller (:mod:`trading_pipeline.regimes.rules`) says ``bear``
  (``use_bear``) or high volatility (``use_highvol``);
- **correlation**: the rolling correlation of log returns with a partner series (the second
  spot series, e.g. ETH beside BTC) over ``corr_bars`` is above ``corr_max`` (diversification
  is gone: everything falls together). ``corr_max = 1`` turns it off.

Risk-on again once no trigger has fired for ``cooldown`` bars. When risk-off, the family either
moves to the stable coin (spot exposure ``reduce_to``) or, when a USD-M futures series is given,
keeps the spot and shorts ``hedge_ratio`` of it on the futures (a pair hedge).

Series roles, by key: the first series is the hedged spot asset; a key starting with ``um-`` or
``futures`` is the USD-M futures of the same asset; the key ``fleet`` is an equity curve (its
``close`` column); any other key is a correlation partner. Series are aligned on open time
(inner join). Flags: ``LONG_ENTRY``/``LONG_EXIT`` when going risk-on/off, ``SHORT_ENTRY``/
``SHORT_EXIT`` for the futures hedge leg; ``meta['exposure']`` and ``meta['hedge']`` hold the
target spot fraction and futures short fraction per bar. ``meta['flags_by_symbol']`` (for the
bot runner) applies the spot flags to the spot series and every partner (bot5 holds BTC and
ETH and cuts both) and the hedge-leg flags to the futures series; ``backtest_multi`` simulates
the first spot series' leg.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import UTC_US
from trading_pipeline.regimes.registry import get_labeller
from trading_pipeline.regimes.rules import RulesLabeller
from trading_pipeline.strategies.base import (
    LONG_ENTRY,
    LONG_EXIT,
    SHORT_ENTRY,
    SHORT_EXIT,
    Param,
    Params,
    SearchSpace,
    Signals,
    StrategyFamily,
)


@dataclass(frozen=True)
class Roles:
    """Which input series plays which role (see the module docstring)."""

    spot: str
    futures: str | None
    fleet: str | None
    partners: tuple[str, ...]


def roles_of(series: Mapping[str, pl.DataFrame]) -> Roles:
    """Assign roles by key; the first key is the spot asset."""
    if not series:
        raise UserInputError("hedging needs at least one spot series")
    keys = list(series)
    spot = keys[0]
    futures = [k for k in keys[1:] if k.startswith(("um-", "futures"))]
    if len(futures) > 1:
        raise UserInputError(f"hedging takes one futures series, got {', '.join(futures)}")
    fleet = "fleet" if "fleet" in keys[1:] else None
    partners = tuple(k for k in keys[1:] if k not in futures and k != fleet)
    return Roles(spot, futures[0] if futures else None, fleet, partners)


def aligned_closes(series: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """``open_time`` plus every series' OHLC as ``<key>__<column>``, inner-joined on open time."""
    out: pl.DataFrame | None = None
    for key, df in series.items():
        missing = [c for c in ("open_time", "open", "high", "low", "close") if c not in df.columns]
        if missing:
            raise UserInputError(f"series {key} lacks column(s) {', '.join(missing)}")
        if df["open_time"].is_duplicated().any():
            raise UserInputError(f"series {key} has duplicate open times")
        part = df.select(
            pl.col("open_time").cast(UTC_US),
            *[
                pl.col(c).cast(pl.Float64).alias(f"{key}__{c}")
                for c in ("open", "high", "low", "close")
            ],
        )
        out = part if out is None else out.join(part, on="open_time", how="inner")
    assert out is not None
    return out.sort("open_time")


def drawdown(values: np.ndarray, window: int) -> np.ndarray:
    """``values`` against their rolling maximum over ``window`` bars (<= 0), causal."""
    peak = pl.Series(values).rolling_max(window, min_samples=1).to_numpy()
    return np.asarray(values / peak - 1.0)


def rolling_corr(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Rolling correlation of the log returns of ``x`` and ``y`` (NaN until ``window`` returns)."""
    rx = pl.Series(np.diff(np.log(x), prepend=np.nan))
    ry = pl.Series(np.diff(np.log(y), prepend=np.nan))
    df = pl.DataFrame({"x": rx, "y": ry}).fill_nan(None)
    corr = df.select(pl.rolling_corr("x", "y", window_size=window, min_samples=window))
    return corr.to_series().fill_null(np.nan).to_numpy()


class Hedging(StrategyFamily):
    """Cut exposure (or short USD-M futures against the spot) on drawdown, regime, correlation."""

    name: ClassVar[str] = "hedging"
    version: ClassVar[int] = 1
    inputs: ClassVar[int] = 2
    description: ClassVar[str] = "risk-off on drawdown, bear/high-vol regime or correlation"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param(
                "dd_limit",
                "float",
                0.15,
                low=0.02,
                high=0.5,
                step=0.01,
                help="risk-off when the drawdown from the rolling high exceeds this",
            ),
            Param(
                "dd_bars",
                "int",
                24 * 30,
                low=24,
                high=24 * 180,
                step=24,
                help="window of the rolling high (bars)",
            ),
            Param("use_bear", "choice", True, choices=(True, False), help="risk-off in bear"),
            Param(
                "use_highvol",
                "choice",
                False,
                choices=(True, False),
                help="risk-off in high volatility",
            ),
            Param(
                "corr_max",
                "float",
                1.0,
                low=0.5,
                high=1.0,
                step=0.05,
                help="risk-off when correlation with the partner exceeds this; 1 = off",
            ),
            Param("corr_bars", "int", 24 * 7, low=24, high=24 * 60, step=24, tune=False),
            Param(
                "cooldown",
                "int",
                24,
                low=1,
                high=24 * 14,
                step=1,
                help="bars without any trigger before risk-on again",
            ),
            Param(
                "reduce_to",
                "float",
                0.0,
                low=0.0,
                high=0.9,
                step=0.1,
                tune=False,
                help="spot exposure while risk-off without a futures hedge",
            ),
            Param(
                "hedge_ratio",
                "float",
                1.0,
                low=0.1,
                high=1.0,
                step=0.1,
                tune=False,
                help="futures short / spot value while risk-off (pair hedge)",
            ),
        )
    )

    def warmup(self, params: Params) -> int:
        """The windows in bars; with a regime trigger, also the rules labeller's moving average
        and slope (``ma_days + slope_days`` of hourly bars, bot5's interval) so the label is
        known, not ``unknown``, at the first bar a runner or a fold acts on."""
        bars = max(int(params["dd_bars"]), int(params["corr_bars"]), int(params["cooldown"]))  # type: ignore[arg-type]
        if params["use_bear"] or params["use_highvol"]:
            rules = RulesLabeller()
            bars = max(bars, (rules.ma_days + rules.slope_days) * 24)
        return bars

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        """One spot series alone: drawdown and regime triggers, stable-coin mode."""
        return self.signals_multi({"spot": bars}, params)

    def risk_off(
        self, series: Mapping[str, pl.DataFrame], params: Params
    ) -> tuple[pl.DataFrame, np.ndarray, Roles]:
        """The aligned frame, the per-bar risk-off flag (before the cooldown), and the roles."""
        params = self.validate(params)  # callers may pass partial params
        roles = roles_of(series)
        frame = aligned_closes(series)
        if frame.height == 0:
            raise UserInputError("the hedging series have no open time in common")
        close = frame[f"{roles.spot}__close"].to_numpy()
        dd_src = frame[f"{roles.fleet}__close"].to_numpy() if roles.fleet else close
        trig = drawdown(dd_src, int(params["dd_bars"])) < -float(params["dd_limit"])  # type: ignore[arg-type]
        if params["use_bear"] or params["use_highvol"]:
            spot = frame.select(
                "open_time",
                *[pl.col(f"{roles.spot}__{c}").alias(c) for c in ("open", "high", "low", "close")],
            )
            labels = get_labeller("rules").label(spot)
            if params["use_bear"]:
                trig |= (labels["trend"] == "bear").to_numpy()
            if params["use_highvol"]:
                trig |= (labels["vol"] == "high").to_numpy()
        corr_max = float(params["corr_max"])  # type: ignore[arg-type]
        if corr_max < 1.0 and roles.partners:
            other = frame[f"{roles.partners[0]}__close"].to_numpy()
            corr = rolling_corr(close, other, int(params["corr_bars"]))  # type: ignore[arg-type]
            with np.errstate(invalid="ignore"):
                trig |= np.nan_to_num(corr, nan=-1.0) > corr_max
        return frame, trig, roles

    def signals_multi(self, series: Mapping[str, pl.DataFrame], params: Params) -> Signals:
        params = self.validate(params)
        frame, trig, roles = self.risk_off(series, params)
        n = frame.height
        cooldown = int(params["cooldown"])  # type: ignore[arg-type]
        # bars since the last trigger (inclusive): risk-off while fewer than `cooldown`
        idx = np.arange(n)
        last = np.maximum.accumulate(np.where(trig, idx, -(10**9)))
        off = (idx - last) < cooldown
        hedged = roles.futures is not None
        if hedged:
            exposure = np.ones(n)
            hedge = np.where(off, float(params["hedge_ratio"]), 0.0)  # type: ignore[arg-type]
        else:
            exposure = np.where(off, float(params["reduce_to"]), 1.0)  # type: ignore[arg-type]
            hedge = np.zeros(n)
        prev_off = np.concatenate([[True], off[:-1]])  # start from risk-off (flat)
        going_on = ~off & prev_off
        going_off = off & ~prev_off
        flags = np.zeros(n, dtype=np.int8)
        if hedged:
            flags[0] = LONG_ENTRY  # the spot is always held; the hedge leg switches
            flags |= np.where(going_off | (off & (idx == 0)), SHORT_ENTRY, 0).astype(np.int8)
            flags |= np.where(going_on & (idx > 0), SHORT_EXIT, 0).astype(np.int8)
        else:
            flags |= np.where(going_on, LONG_ENTRY, 0).astype(np.int8)
            flags |= np.where(going_off, LONG_EXIT, 0).astype(np.int8)
        sig = Signals(flags=flags)
        spot_flags = flags & (LONG_ENTRY | LONG_EXIT)
        by_symbol = {k: spot_flags for k in (roles.spot, *roles.partners)}
        if roles.futures:
            by_symbol[roles.futures] = flags & (SHORT_ENTRY | SHORT_EXIT)
        sig.meta.update(
            flags_by_symbol=by_symbol,
            open_time=frame["open_time"],
            exposure=exposure,
            hedge=hedge,
            risk_off=off,
            roles=roles,
        )
        return sig
