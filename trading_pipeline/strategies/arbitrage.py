"""Cross-venue arbitrage: trade when one venue's price is dearer than the other's by more than
both venues' fees, slippage and the rebalancing cost together.

Two input series, venue ``a`` first and venue ``b`` second (the mapping's order), aligned on UTC
open time with :func:`~trading_pipeline.market.align.align_venues`. At the close of bar ``t``
the spread ``s = b_close / a_close - 1`` (bps) is compared with the round-trip cost estimate
``fee_a + fee_b + slip_a + slip_b + rebalance_bps``; when ``|s|`` exceeds it by ``threshold_bps``
the signal asks for a simultaneous pair of market orders at the next open:

- ``LONG_ENTRY`` (``b`` dear): buy on ``a``, sell on ``b``;
- ``SHORT_ENTRY`` (``a`` dear): buy on ``b``, sell on ``a``.

``meta['flags_by_symbol']`` gives the same events per venue for a spot runner (keys = the
input keys): ``LONG_ENTRY`` = buy on that venue, ``LONG_EXIT`` = sell there.

Both legs use inventory already on each venue (no transfers at trade time), so the flags are
events, not positions: :func:`trading_pipeline.backtest.multi.backtest_multi` sizes each pair
from the balances (``max_use``) and rebalances every ``rebalance_bars`` at a cost. The cost
estimate parameters are not tuned: they describe the venues, the tuner picks the threshold,
the rebalancing period and the inventory use. Signals at bar ``t`` read bars ``<= t`` only.

The spread between Binance BTC/USDT and Coinbase BTC-USD includes the USDT/USD rate: it is not
a pure venue spread, and profits are counted with 1 USDT = 1 USD (see ``benchmarks/arb_real.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.market.align import align_venues
from trading_pipeline.strategies.base import (
    LONG_ENTRY,
    LONG_EXIT,
    SHORT_ENTRY,
    Param,
    Params,
    SearchSpace,
    Signals,
    StrategyFamily,
)

# Documented defaults (fractions of notional, per side): Binance spot 0.1 % (regular tier, no BNB
# discount), Coinbase Advanced taker 0.6 % (entry tier, < $10k monthly volume).
BINANCE_SPOT_FEE = 0.001
COINBASE_TAKER_FEE = 0.006


def aligned_pair(series: Mapping[str, pl.DataFrame], interval: str = "1h") -> pl.DataFrame:
    """The two venues' bars aligned on open time (first key = venue ``a``).

    Already-aligned input (one frame with ``a_close``/``b_close`` columns under any key) is
    passed through, so callers that aligned once do not pay for it again.
    """
    if len(series) == 1:
        only = next(iter(series.values()))
        if {"a_close", "b_close", "a_open", "b_open"} <= set(only.columns):
            return only
    if len(series) != 2:
        raise UserInputError(f"arbitrage needs two venue series, got {len(series)}")
    a, b = series.values()
    return align_venues(a, b, interval=interval)


def cost_bps(params: Params) -> float:
    """The round-trip cost estimate in bps: both fees, both slippages and the rebalancing cost."""
    return (
        float(params["fee_a_bps"])  # type: ignore[arg-type]
        + float(params["fee_b_bps"])  # type: ignore[arg-type]
        + 2.0 * float(params["slippage_bps"])  # type: ignore[arg-type]
        + float(params["rebalance_bps"])  # type: ignore[arg-type]
    )


class Arbitrage(StrategyFamily):
    """Buy on the cheap venue and sell on the dear one when the net spread passes a threshold."""

    name: ClassVar[str] = "arbitrage"
    version: ClassVar[int] = 1
    inputs: ClassVar[int] = 2
    description: ClassVar[str] = "two-venue spread net of fees, slippage and rebalancing"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param(
                "threshold_bps",
                "float",
                5.0,
                low=0.0,
                high=100.0,
                step=1.0,
                help="enter when |spread| - costs exceeds this (bps)",
            ),
            Param(
                "rebalance_bars",
                "int",
                168,
                low=24,
                high=24 * 30,
                step=24,
                off=0,
                help="rebalance inventory between venues every this many bars; 0 = never",
            ),
            Param(
                "max_use",
                "float",
                0.5,
                low=0.1,
                high=1.0,
                step=0.1,
                help="fraction of the limiting venue balance one pair of orders may use",
            ),
            Param(
                "rebalance_bps",
                "float",
                5.0,
                low=0.0,
                high=100.0,
                step=1.0,
                tune=False,
                help="rebalancing cost charged to each trade's estimate (bps of notional)",
            ),
            Param(
                "fee_a_bps",
                "float",
                BINANCE_SPOT_FEE * 1e4,
                low=0.0,
                high=100.0,
                tune=False,
                help="venue a taker fee (bps); default Binance spot 10",
            ),
            Param(
                "fee_b_bps",
                "float",
                COINBASE_TAKER_FEE * 1e4,
                low=0.0,
                high=200.0,
                tune=False,
                help="venue b taker fee (bps); default Coinbase Advanced taker 60",
            ),
            Param(
                "slippage_bps",
                "float",
                2.0,
                low=0.0,
                high=100.0,
                tune=False,
                help="slippage per leg (bps)",
            ),
        )
    )

    def warmup(self, params: Params) -> int:
        return 1  # the spread needs only the current bar

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        """One aligned frame (``a_*``/``b_*`` columns) is accepted in place of two series."""
        return self.signals_multi({"aligned": bars}, params)

    def signals_multi(self, series: Mapping[str, pl.DataFrame], params: Params) -> Signals:
        """Flags on the aligned bars; ``meta``: ``open_time`` of those bars, ``spread_bps`` and
        ``net_bps`` (|spread| minus the cost estimate) per bar."""
        params = self.validate(params)  # callers may pass partial params
        aligned = aligned_pair(series)
        a = aligned["a_close"].to_numpy().astype(np.float64)
        b = aligned["b_close"].to_numpy().astype(np.float64)
        spread = (b / a - 1.0) * 1e4
        net = np.abs(spread) - cost_bps(params)
        go = net > float(params["threshold_bps"])  # type: ignore[arg-type]
        flags = np.where(go & (spread > 0), LONG_ENTRY, 0) | np.where(
            go & (spread < 0), SHORT_ENTRY, 0
        )
        sig = Signals(flags=flags.astype(np.int8))
        keys = list(series) if len(series) == 2 else ["a", "b"]
        b_dear, a_dear = go & (spread > 0), go & (spread < 0)
        sig.meta.update(
            open_time=aligned["open_time"],
            spread_bps=spread,
            net_bps=net,
            legs={"long": "buy a, sell b", "short": "buy b, sell a"},
            # for a spot runner, per venue: buy (LONG_ENTRY) where cheap, sell (LONG_EXIT) where dear
            flags_by_symbol={
                keys[0]: np.where(b_dear, LONG_ENTRY, 0) | np.where(a_dear, LONG_EXIT, 0),
                keys[1]: np.where(a_dear, LONG_ENTRY, 0) | np.where(b_dear, LONG_EXIT, 0),
            },
        )
        return sig
