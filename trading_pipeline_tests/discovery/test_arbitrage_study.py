"""The arbitrage study on aligned two-venue bars: walk-forward test windows only, costs on; a
spread far below the venues' costs is never worth trading out of sample."""

from __future__ import annotations

import math

import polars as pl
import pytest

from trading_pipeline.discovery.arbitrage_study import arbitrage_study
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.align import align_venues, basis
from trading_pipeline_tests.fakes.bars import make_bars


def _aligned(spread: float) -> pl.DataFrame:
    a = make_bars(600, seed=3, price=40_000.0)
    b = a.with_columns(pl.col("open", "high", "low", "close") * (1.0 + spread))
    aligned = align_venues(a, b, interval="1h")
    return aligned.join(basis(aligned), on="open_time", how="left")


def test_a_spread_below_costs_earns_nothing_out_of_sample() -> None:
    aligned = _aligned(0.0005)  # 5 bps, against 70 bps of fees alone
    report = arbitrage_study(aligned, folds=2)
    assert report["bars"] == 600 and len(report["folds"]) == 2
    assert report["combinations"] == 36
    assert report["net_arb_pnl"] <= 0.0 and math.isfinite(report["oos"]["total_return"])
    assert report["folds_in_cash"] + sum(not f["cash"] for f in report["folds"]) == 2


def test_bars_without_both_venues_are_refused() -> None:
    with pytest.raises(UserInputError, match="lack column"):
        arbitrage_study(pl.DataFrame({"open_time": [1], "a_close": [1.0]}))
