"""The strategy contract: search-space validation, grids, Optuna sampling, user files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.base import LONG_ENTRY, LONG_EXIT, Signals
from trading_pipeline.strategies.registry import FAMILIES, get_family, load_strategy_file
from trading_pipeline_tests.fakes.bars import make_bars

HERE = Path(__file__).parent


def test_registry_has_every_family() -> None:
    assert set(FAMILIES) == {
        "sma_cross",
        "ema_cross",
        "macd",
        "rsi_reversion",
        "bollinger_reversion",
        "donchian_breakout",
        "momentum",
        "buy_and_hold",
    }
    for name, fam in FAMILIES.items():
        assert fam.name == name and fam.version >= 1
        assert fam.validate({}) == fam.default_params()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fast": 10, "nope": 3}, "unknown parameter 'nope'"),
        ({"fast": 1}, "outside its range"),
        ({"fast": 50, "slow": 50}, "fast < slow"),
        ({"fast": 60, "slow": 30}, "fast < slow"),
        ({"fast": "ten"}, "must be an integer"),
        ({"fast": 10.5}, "must be an integer"),
        ({"trend": 5}, "or 0 to turn it off"),
    ],
)
def test_validate_refuses_bad_params(params: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        get_family("sma_cross").validate(params)


def test_validate_coerces_cli_strings_and_keeps_off_values() -> None:
    p = get_family("sma_cross").validate({"fast": "5", "slow": "20.0", "trend": "0"})
    assert (p["fast"], p["slow"], p["trend"]) == (5, 20, 0)
    assert isinstance(p["fast"], int)


def test_unknown_family_is_user_error() -> None:
    with pytest.raises(UserInputError, match="unknown strategy 'nope'"):
        get_family("nope")


def test_grid_enumerates_only_valid_combinations() -> None:
    grid = get_family("sma_cross").grid(fast=range(5, 50), slow=range(20, 200, 5))
    assert len(grid) == 1515  # the benchmark grid
    assert all(g["fast"] < g["slow"] for g in grid)
    assert len({(g["fast"], g["slow"]) for g in grid}) == 1515
    with pytest.raises(UserInputError, match="outside its range"):
        get_family("sma_cross").grid(fast=[1, 2])


def test_suggest_samples_valid_params_with_optuna() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for fam in FAMILIES.values():
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
        seen = []
        for _ in range(15):
            trial = study.ask()
            params = fam.suggest(trial)
            assert fam.validate(params) == params
            seen.append(params)
            study.tell(trial, float(len(seen)))
        if fam.space.params:
            assert len({tuple(sorted(p.items())) for p in seen}) > 1


def test_signals_from_positions() -> None:
    s = Signals.from_positions(np.array([0, 1, 1, 0, -1, -1, 1]))
    assert s.entries.tolist() == [False, True, False, False, False, False, True]
    assert s.exits.tolist() == [False, False, False, True, False, False, False]
    assert s.flags[6] & LONG_ENTRY and not s.flags[6] & LONG_EXIT


def test_every_family_returns_aligned_signals() -> None:
    bars = make_bars(600, seed=3)
    for fam in FAMILIES.values():
        s = fam.signals(bars, fam.default_params())
        assert len(s) == bars.height
        assert s.flags.dtype == np.int8


def test_load_strategy_file_uses_the_same_contract() -> None:
    found = load_strategy_file(HERE / "leaky_strategy.py")
    fam = found["peek_next_close"]
    with pytest.raises(UserInputError, match="outside its range"):
        fam.validate({"lag": 9})
    assert get_family("peek_next_close", found) is fam


def test_load_strategy_file_refuses_bad_files(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"existing \.py"):
        load_strategy_file(tmp_path / "missing.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(UserInputError, match="no StrategyFamily"):
        load_strategy_file(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(UserInputError, match="boom"):
        load_strategy_file(broken)


def test_contract_takes_several_input_series() -> None:
    """A two-series family (the shape arbitrage/hedging will use) runs through the engine."""
    from typing import ClassVar

    import polars as pl

    from trading_pipeline.backtest.engine import run_signals
    from trading_pipeline.strategies.base import Param, Params, SearchSpace, StrategyFamily

    class Spread(StrategyFamily):
        name: ClassVar[str] = "spread_test"
        inputs: ClassVar[int] = 2
        space: ClassVar[SearchSpace] = SearchSpace(
            params=(Param("threshold", "float", 0.0, low=-1.0, high=1.0, step=0.01),)
        )

        def signals_multi(self, series: Mapping[str, pl.DataFrame], params: Params) -> Signals:
            a, b = (s["close"].to_numpy() for s in series.values())
            target = (a / b - 1.0) > float(params["threshold"])  # type: ignore[arg-type]
            return Signals.from_positions(target.astype(np.int8))

    fam = Spread()
    a = make_bars(300, seed=1)
    b = make_bars(300, seed=2)
    sig = fam.signals_multi({"venue_a": a, "venue_b": b}, fam.validate({}))
    metrics, _, _ = run_signals(a, sig, interval="1h")
    assert metrics["trades"] >= 1
    with pytest.raises(NotImplementedError):
        get_family("sma_cross").signals_multi({"x": a, "y": b}, {})
