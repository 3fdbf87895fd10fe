"""Both labellers: the interface, causality under truncation, no flicker, agreement with the
scripted regimes of synthetic data, and the current regime from the latest candles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.regimes import REGIMES, RegimeLabeller, current_regime, get_labeller
from trading_pipeline.regimes.base import bars_per_day
from trading_pipeline.regimes.current import history_bars
from trading_pipeline.regimes.synthetic import DEFAULT_SCRIPT, synthetic_bars, truth

NAMES = ["rules", "gmm"]


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars()


@pytest.fixture(scope="module")
def labellers() -> dict[str, RegimeLabeller]:
    # One instance per name for the module: the mixture reuses fits across truncations.
    return {n: get_labeller(n) for n in NAMES}


@pytest.fixture(scope="module")
def full_labels(
    bars: pl.DataFrame, labellers: dict[str, RegimeLabeller]
) -> dict[str, pl.DataFrame]:
    return {n: lab.label(bars) for n, lab in labellers.items()}


@pytest.mark.parametrize("name", NAMES)
def test_interface_and_vocabulary(name: str, bars: pl.DataFrame, full_labels: dict) -> None:
    lab = get_labeller(name)
    assert isinstance(lab, RegimeLabeller) and lab.name == name
    labels = full_labels[name]
    assert labels.columns == ["open_time", "regime", "trend", "vol"]
    assert labels["open_time"].equals(bars["open_time"])
    assert set(labels["regime"].unique()) <= set(REGIMES)
    assert labels["regime"].null_count() == 0
    assert labels.filter(pl.col("regime") != "unknown").height > 0.6 * bars.height


@pytest.mark.parametrize("name", NAMES)
def test_no_lookahead_on_truncation(
    name: str, bars: pl.DataFrame, labellers: dict, full_labels: dict
) -> None:
    full = full_labels[name]
    for cut in (1500, 4321, 6000, 9876, 12345, 14000):
        part = labellers[name].label(bars.head(cut))
        assert part.equals(full.head(cut)), f"{name} labels changed before bar {cut}"


@pytest.mark.parametrize("name", NAMES)
def test_minimum_duration(name: str, bars: pl.DataFrame, full_labels: dict) -> None:
    labels = full_labels[name]
    n = int(get_labeller(name).min_duration_days * bars_per_day(bars))  # type: ignore[attr-defined]
    runs = (
        labels.with_columns(
            (pl.col("regime") != pl.col("regime").shift(1)).fill_null(True).cum_sum().alias("run")
        )
        .group_by("run", maintain_order=True)
        .agg(pl.col("regime").first(), pl.len())
    )
    inner = runs.slice(1, runs.height - 2)  # the first (warm-up) and the last (open) run aside
    assert inner.height > 3
    assert inner["len"].min() >= n  # type: ignore[operator]


@pytest.mark.parametrize(("name", "floor"), [("rules", 0.55), ("gmm", 0.45)])
def test_agrees_with_scripted_regimes(name: str, floor: float, full_labels: dict) -> None:
    """Trend agreement with the synthetic truth on known bars, well above chance (1/3)."""
    labels = full_labels[name].with_columns(
        pl.Series("truth", truth(DEFAULT_SCRIPT)).str.replace("_highvol", "")
    )
    known = labels.filter(pl.col("trend") != "unknown")
    agreement = (known["trend"] == known["truth"]).mean()
    print(f"\n{name}: trend agreement with the script {agreement:.0%}")
    assert agreement is not None and agreement >= floor  # type: ignore[operator]
    # Strongly trending, volatile stretches are flagged high-volatility more often than calm ones.
    hv = labels.with_columns(pl.Series("script", truth(DEFAULT_SCRIPT)))
    share_hv = hv.group_by(pl.col("script").str.ends_with("_highvol")).agg(
        (pl.col("vol") == "high").mean()
    )
    d = dict(share_hv.rows())
    assert d[True] > d[False] + 0.2


@pytest.mark.parametrize("name", NAMES)
def test_current_regime_matches_full_history(
    name: str, bars: pl.DataFrame, labellers: dict, full_labels: dict
) -> None:
    full = full_labels[name]["regime"]
    for cut in (9000, 11000, 14800):
        assert current_regime(bars.head(cut), labellers[name]) == full[cut - 1]


def test_rules_current_regime_reads_only_the_tail(real_data: Path) -> None:
    btc = read_candle_file(
        real_data / "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
    )
    lab = get_labeller("rules")
    need = history_bars(btc, lab)
    assert need is not None and need < 12_000  # a few thousand hourly bars suffice
    full = lab.label(btc)["regime"]
    rng = np.random.default_rng(1)
    for cut in rng.integers(need + 100, btc.height, 12):
        assert current_regime(btc.head(int(cut)), lab) == full[int(cut) - 1]
        # bars older than the needed tail do not matter
        assert lab.label(btc.head(int(cut)).tail(need))["regime"][-1] == full[int(cut) - 1]


def test_rules_no_lookahead_real(real_data: Path) -> None:
    btc = read_candle_file(
        real_data / "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
    )
    lab = get_labeller("rules")
    full = lab.label(btc)
    for cut in (5000, 20000, 33333, 50000, 70000):
        assert lab.label(btc.head(cut)).equals(full.head(cut)), cut


def test_unknown_labeller() -> None:
    with pytest.raises(KeyError, match="unknown labeller"):
        get_labeller("nope")
