"""The arbitrage family: signals from the net spread, the contract, no lookahead."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.multi import lookahead_check_multi
from trading_pipeline.bots.spec import bot_spec
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.align import align_venues
from trading_pipeline.strategies.arbitrage import Arbitrage, cost_bps
from trading_pipeline.strategies.base import LONG_ENTRY, LONG_EXIT, SHORT_ENTRY
from trading_pipeline.strategies.registry import FAMILIES, MULTI_FAMILIES, get_family
from trading_pipeline_tests.fakes.bars import make_bars


def venues(n: int = 2000, *, seed: int = 7, basis_sd_bps: float = 30.0) -> dict[str, pl.DataFrame]:
    """Venue a: a random walk; venue b: the same walk times a random basis (bps) per bar."""
    a = make_bars(n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    mult = pl.Series(1.0 + rng.normal(0.0, basis_sd_bps, n) / 1e4)
    b = a.with_columns(*(pl.col(c) * mult for c in ("open", "high", "low", "close")))
    return {"binance": a, "coinbase": b}


def test_registered_for_bot4_but_not_as_a_single_series_family() -> None:
    fam = get_family("arbitrage")
    assert isinstance(fam, Arbitrage) and fam.inputs == 2
    assert "arbitrage" in MULTI_FAMILIES and "arbitrage" not in FAMILIES
    assert bot_spec("bot4").allows(fam.name)
    assert fam.validate({}) == fam.default_params()


def test_params_validated_by_the_search_space() -> None:
    fam = Arbitrage()
    with pytest.raises(UserInputError, match="outside its range"):
        fam.validate({"max_use": 2.0})
    with pytest.raises(UserInputError, match="or 0 to turn it off"):
        fam.validate({"rebalance_bars": 5})
    assert fam.validate({"rebalance_bars": 0})["rebalance_bars"] == 0
    tuned = [p.name for p in fam.space.params if p.tune]
    assert tuned == ["threshold_bps", "rebalance_bars", "max_use"]


def test_suggest_samples_valid_params() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fam = Arbitrage()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=2))
    for k in range(10):
        trial = study.ask()
        params = fam.suggest(trial)
        assert fam.validate(params) == params
        study.tell(trial, float(k))


def test_signals_follow_the_spread_net_of_costs() -> None:
    series = venues()
    params = Arbitrage().validate(
        {"threshold_bps": 3.0, "fee_a_bps": 5.0, "fee_b_bps": 5.0, "slippage_bps": 1.0}
    )
    sig = Arbitrage().signals_multi(series, params)
    aligned = align_venues(series["binance"], series["coinbase"], interval="1h")
    spread = (aligned["b_close"] / aligned["a_close"] - 1).to_numpy() * 1e4
    cost = 5 + 5 + 2 + float(params["rebalance_bps"])
    assert cost_bps(params) == pytest.approx(cost)
    want_long = spread - cost > 3.0
    want_short = -spread - cost > 3.0
    assert np.array_equal((sig.flags & LONG_ENTRY) != 0, want_long)
    assert np.array_equal((sig.flags & SHORT_ENTRY) != 0, want_short)
    assert want_long.sum() > 10 and want_short.sum() > 10
    np.testing.assert_allclose(sig.meta["spread_bps"], spread)
    assert sig.meta["open_time"].equals(aligned["open_time"])


def test_default_costs_need_a_wide_spread() -> None:
    """With Binance 10 bps + Coinbase 60 bps + slippage + rebalancing, a 30 bps basis never pays."""
    sig = Arbitrage().signals_multi(venues(basis_sd_bps=10.0), {})
    assert not sig.flags.any()
    assert np.all(np.asarray(sig.meta["net_bps"]) < 0)


def test_aligned_frame_and_missing_bars() -> None:
    series = venues(500)
    b = series["coinbase"].filter(pl.int_range(pl.len()) % 7 != 0)  # b misses every 7th bar
    params = {"threshold_bps": 0.0, "fee_a_bps": 0.0, "fee_b_bps": 0.0, "rebalance_bps": 0.0}
    sig = Arbitrage().signals_multi({"a": series["binance"], "b": b}, params)
    assert len(sig) == b.height
    aligned = align_venues(series["binance"], b, interval="1h")
    same = Arbitrage().signals(aligned, params)
    assert np.array_equal(same.flags, sig.flags)
    with pytest.raises(UserInputError, match="two venue series"):
        Arbitrage().signals_multi({"a": series["binance"]}, {})


def test_no_lookahead() -> None:
    params = {"threshold_bps": 0.0, "fee_a_bps": 5.0, "fee_b_bps": 5.0}
    report = lookahead_check_multi(
        "arbitrage", venues(1500), params, points=25, extra=("spread_bps", "net_bps")
    )
    assert report.clean and len(report.points) > 10


def test_a_leaky_multi_family_is_caught() -> None:
    """The truncation check itself works: a family peeking one bar ahead is flagged."""

    class Peek(Arbitrage):
        name = "peek"

        def signals_multi(self, series, params):  # type: ignore[no-untyped-def]
            sig = super().signals_multi(series, params)
            sig.flags = np.roll(sig.flags, -1)
            return sig

    params = {"threshold_bps": 0.0, "fee_a_bps": 5.0, "fee_b_bps": 5.0}
    assert not lookahead_check_multi(Peek(), venues(800), params).clean


def test_flags_per_venue_buy_where_cheap_sell_where_dear() -> None:
    params = {"threshold_bps": 0.0, "fee_a_bps": 5.0, "fee_b_bps": 5.0}
    sig = Arbitrage().signals_multi(venues(800), params)
    per = sig.meta["flags_by_symbol"]
    assert list(per) == ["binance", "coinbase"]
    b_dear = (sig.flags & LONG_ENTRY) != 0
    a_dear = (sig.flags & SHORT_ENTRY) != 0
    assert np.array_equal(per["binance"] == LONG_ENTRY, b_dear)
    assert np.array_equal(per["binance"] == LONG_EXIT, a_dear)
    assert np.array_equal(per["coinbase"] == LONG_ENTRY, a_dear)
    assert np.array_equal(per["coinbase"] == LONG_EXIT, b_dear)
