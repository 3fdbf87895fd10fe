"""The hedging family: risk-off on drawdown, regime and correlation; pair hedge; no lookahead."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.multi import lookahead_check_multi
from trading_pipeline.bots.spec import bot_spec
from trading_pipeline.errors import UserInputError
from trading_pipeline.regimes.registry import get_labeller
from trading_pipeline.strategies.base import LONG_ENTRY, LONG_EXIT, SHORT_ENTRY, SHORT_EXIT
from trading_pipeline.strategies.hedging import Hedging, drawdown, roles_of
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import make_bars

OFF = {"use_bear": False, "use_highvol": False, "corr_max": 1.0}


def crash_bars(n: int = 900, crash_at: int = 300) -> pl.DataFrame:
    """Flat-ish, then a 40 % fall over 50 bars, then flat again."""
    bars = make_bars(n, seed=4, vol=0.001)
    mult = np.ones(n)
    mult[crash_at : crash_at + 50] = np.linspace(1.0, 0.6, 50)
    mult[crash_at + 50 :] = 0.6
    m = pl.Series(mult)
    return bars.with_columns(*(pl.col(c) * m for c in ("open", "high", "low", "close")))


def test_registered_for_bot5() -> None:
    fam = get_family("hedging")
    assert isinstance(fam, Hedging) and bot_spec("bot5").allows(fam.name)
    assert fam.validate({}) == fam.default_params()


def test_roles_by_key() -> None:
    b = make_bars(10)
    r = roles_of({"spot-BTCUSDT-1h": b, "um-BTCUSDT-1h": b, "spot-ETHUSDT-1h": b, "fleet": b})
    assert (r.spot, r.futures, r.fleet) == ("spot-BTCUSDT-1h", "um-BTCUSDT-1h", "fleet")
    assert r.partners == ("spot-ETHUSDT-1h",)
    with pytest.raises(UserInputError, match="one futures series"):
        roles_of({"s": b, "um-a": b, "um-b": b})


def test_drawdown_trigger_moves_to_the_stable_coin() -> None:
    bars = crash_bars()
    params = {**OFF, "dd_limit": 0.1, "dd_bars": 240, "cooldown": 24}
    sig = Hedging().signals_multi({"spot": bars}, params)
    dd = drawdown(bars["close"].to_numpy(), 240)
    first = int(np.argmax(dd < -0.1))
    assert 300 < first < 350
    exposure = sig.meta["exposure"]
    assert exposure[first] == 0.0 and exposure[first - 1] == 1.0
    assert sig.flags[first] & LONG_EXIT and sig.flags[0] & LONG_ENTRY
    # back in once the drawdown window forgot the old high and the cooldown passed
    back = np.flatnonzero(sig.flags & LONG_ENTRY)
    assert back.size == 2 and back[1] >= first + 24


def test_pair_hedge_with_futures_keeps_spot_and_shorts() -> None:
    bars = crash_bars()
    params = {**OFF, "dd_limit": 0.1, "dd_bars": 240, "hedge_ratio": 0.5}
    sig = Hedging().signals_multi({"spot": bars, "um-BTCUSDT": bars}, params)
    assert np.all(sig.meta["exposure"] == 1.0)
    hedge = sig.meta["hedge"]
    assert set(np.unique(hedge)) == {0.0, 0.5}
    on = int(np.argmax(hedge > 0))
    assert sig.flags[on] & SHORT_ENTRY and not sig.flags[on] & LONG_EXIT
    assert (sig.flags & SHORT_EXIT).any()


def test_bear_regime_trigger_uses_the_rules_labeller() -> None:
    bars = make_bars(4000, seed=9, drift=-0.0004, vol=0.004)
    params = {**OFF, "use_bear": True, "dd_limit": 0.5, "cooldown": 1}
    sig = Hedging().signals_multi({"spot": bars}, params)
    labels = get_labeller("rules").label(bars)
    bear = (labels["trend"] == "bear").to_numpy()
    assert bear.sum() > 100
    dd_off = drawdown(bars["close"].to_numpy(), int(Hedging().default_params()["dd_bars"])) < -0.5
    assert np.array_equal(sig.meta["risk_off"], bear | dd_off)


def test_correlation_trigger() -> None:
    a = make_bars(1000, seed=1)
    same = a.with_columns(pl.col("close") * 2)  # perfectly correlated partner
    indep = make_bars(1000, seed=2)
    params = {**OFF, "dd_limit": 0.5, "corr_max": 0.9, "corr_bars": 48, "cooldown": 1}
    hot = Hedging().signals_multi({"spot": a, "spot-ETH": same}, params)
    cold = Hedging().signals_multi({"spot": a, "spot-ETH": indep}, params)
    assert hot.meta["risk_off"][60:].all()
    assert not cold.meta["risk_off"][60:].any()


def test_no_lookahead_with_every_trigger_on() -> None:
    spot = make_bars(4500, seed=21, drift=-0.0002, vol=0.005)
    partner = make_bars(4500, seed=22, vol=0.005)
    params = {
        "use_bear": True,
        "use_highvol": True,
        "corr_max": 0.5,
        "dd_limit": 0.05,
        "dd_bars": 240,
        "cooldown": 12,
    }
    series = {"spot": spot, "um-X": spot, "spot-Y": partner}
    report = lookahead_check_multi(
        "hedging", series, params, points=15, extra=("exposure", "hedge")
    )
    assert report.clean and len(report.points) > 10
    sig = Hedging().signals_multi(series, params)
    assert sig.meta["risk_off"].any() and not sig.meta["risk_off"].all()
    assert not (sig.flags & LONG_EXIT).any()  # hedged mode never sells the spot


def test_flags_per_symbol_for_the_runner() -> None:
    bars = crash_bars()
    params = {**OFF, "dd_limit": 0.1, "dd_bars": 240}
    two = Hedging().signals_multi({"BTCUSDT": bars, "ETHUSDT": bars}, params)
    per = two.meta["flags_by_symbol"]
    assert set(per) == {"BTCUSDT", "ETHUSDT"}
    assert np.array_equal(per["ETHUSDT"], two.flags) and np.array_equal(per["BTCUSDT"], two.flags)
    hedged = Hedging().signals_multi({"BTCUSDT": bars, "um-BTCUSDT": bars}, params)
    per = hedged.meta["flags_by_symbol"]
    assert not (per["BTCUSDT"] & (SHORT_ENTRY | SHORT_EXIT)).any()
    assert (per["um-BTCUSDT"] & SHORT_ENTRY).any() and not (per["um-BTCUSDT"] & LONG_ENTRY).any()


def test_fleet_drawdown_triggers_even_when_the_spot_is_calm() -> None:
    calm = make_bars(900, seed=4, vol=0.0005)
    fleet = crash_bars()  # its close stands for the fleet's equity
    params = {**OFF, "dd_limit": 0.1, "dd_bars": 240}
    alone = Hedging().signals_multi({"spot": calm}, params)
    with_fleet = Hedging().signals_multi({"spot": calm, "fleet": fleet}, params)
    assert not alone.meta["risk_off"][1:].any()
    assert with_fleet.meta["risk_off"][300:400].any()
    assert "fleet" not in with_fleet.meta["flags_by_symbol"]


def test_suggest_samples_valid_params() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fam = Hedging()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3))
    seen = set()
    for k in range(12):
        trial = study.ask()
        params = fam.suggest(trial)
        assert fam.validate(params) == params
        seen.add(tuple(sorted(params.items())))
        study.tell(trial, float(k))
    assert len(seen) > 1
