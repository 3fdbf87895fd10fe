"""On real BTC history, the labels agree with what any trader says about 2018–2024.

Thresholds: for the rules labeller, at least 70 % of a named period's hourly bars carry the
expected trend (``bull`` or ``bull_highvol`` count as bull) and at most 15 % the opposite one
(early October 2023, still under a falling 100-day average, is 10 % ``bear``); for the mixture
labeller, at least 60 % of the period's *labelled* bars (its first fit needs 180 days of
history, so early 2018 is partly ``unknown``) and at most 25 % the opposite (it calls the
sharpest bear-market rallies of 2018 and 2022 ``bull``: 19 % and 22 %).
Data: the NIC-project BTC/USDT 1h file (2017-08-17 .. 2024-04-21), whose closes equal the
Roshan file's on every overlapping bar, so 2018 has warm-up before it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.regimes import get_labeller

pytestmark = pytest.mark.slow  # labels years of real BTC with every labeller

NIC_BTC = "NIC-project-team-TradingStrategyGA/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"

NAMED = [
    ("2018 bear market", "2018-01-15", "2018-12-31", "bear"),
    ("2020-21 bull run", "2020-10-01", "2021-04-30", "bull"),
    ("2021 summer crash", "2021-05-20", "2021-07-20", "bear"),
    ("2022 bear market", "2022-01-01", "2022-12-31", "bear"),
    ("2023-24 ETF bull run", "2023-10-01", "2024-03-31", "bull"),
]
OPPOSITE = {"bull": "bear", "bear": "bull"}
RULES = {"rules": (0.70, 0.15, False), "gmm": (0.60, 0.25, True)}


@pytest.fixture(scope="module")
def btc(real_data: Path) -> pl.DataFrame:
    return read_candle_file(real_data / NIC_BTC)


@pytest.fixture(scope="module")
def labels(btc: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {name: get_labeller(name).label(btc) for name in RULES}


@pytest.mark.parametrize("labeller", list(RULES))
@pytest.mark.parametrize(("period", "start", "end", "expected"), NAMED)
def test_named_period(
    labels: dict[str, pl.DataFrame],
    labeller: str,
    period: str,
    start: str,
    end: str,
    expected: str,
) -> None:
    floor, ceiling, known_only = RULES[labeller]
    t = pl.col("open_time").dt.date().cast(pl.String)
    inside = labels[labeller].filter((t >= start) & (t <= end))
    if known_only:
        inside = inside.filter(pl.col("trend") != "unknown")
    assert inside.height > 24 * 30
    hit = (inside["trend"] == expected).mean()
    wrong = (inside["trend"] == OPPOSITE[expected]).mean()
    print(f"\n{labeller} {period}: {hit:.0%} {expected}, {wrong:.0%} {OPPOSITE[expected]}")
    assert hit is not None and hit >= floor  # type: ignore[operator]
    assert wrong is not None and wrong <= ceiling  # type: ignore[operator]
