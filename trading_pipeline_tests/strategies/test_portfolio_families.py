"""Portfolio families: target weights are sane, the lookahead audit finds the honest ones clean
and a leaky variant leaky, and discovery refuses the leaky one before any trial."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import optuna
import polars as pl
import pytest

from trading_pipeline.discovery.gate import LookaheadRefused, require_no_lookahead
from trading_pipeline.discovery.portfolio_study import tune_universe
from trading_pipeline.discovery.tuning import WalkForward, make_spec
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.base import Params
from trading_pipeline.strategies.lookahead import audit_family
from trading_pipeline.strategies.portfolio import weights_of
from trading_pipeline.strategies.registry import PORTFOLIO_FAMILIES, get_family
from trading_pipeline.strategies.universe import Universe, universe_frame
from trading_pipeline.strategies.xs_momentum import CrossSectionalMomentum, top_k_weights
from trading_pipeline_tests.fakes.bars import make_bars

COINS = ("AAA", "BBB", "CCC")
# short windows so the audit's truncation points and shock scan cover the data
SMALL: dict[str, dict[str, object]] = {
    "xs_momentum": {"lookback": 48, "top_k": 1, "rebalance": 24, "cash_filter": True},
    "vol_target": {"vol_window": 48, "target_vol": 0.1, "rebalance": 24, "mode": "each"},
    "trend_vol": {"trend": 48, "rule": "sma", "vol_window": 24, "rebalance": 48},
}


def universe(n: int, seed: int = 3) -> pl.DataFrame:
    return universe_frame(
        {
            c: make_bars(n, seed=seed + i, vol=0.01 + 0.005 * i, drift=0.0003 * (1 - i))
            for i, c in enumerate(COINS)
        }
    )


class PeekingMomentum(CrossSectionalMomentum):
    """Leaky on purpose: ranks the coins by the NEXT bar's return."""

    name: ClassVar[str] = "peeking_momentum"

    def targets(self, u: Universe, params: Params) -> tuple[np.ndarray, np.ndarray]:
        nxt = np.vstack([u.close[1:] / u.close[:-1] - 1.0, np.full((1, u.close.shape[1]), np.nan)])
        return top_k_weights(nxt, 1, positive_only=True), u.schedule(24)


@pytest.mark.parametrize("name", sorted(PORTFOLIO_FAMILIES))
def test_weights_are_long_only_and_fully_funded_at_most(name: str) -> None:
    fam = get_family(name)
    frame = universe(2000)
    sig = fam.signals(frame, fam.default_params())
    w = weights_of(sig, COINS)
    assert w.shape == (2000, 3)
    assert np.all(w >= 0) and np.all(w.sum(axis=1) <= 1.0 + 1e-12)
    assert w[-500:].sum() > 0  # invested at some point after the warm-up
    assert sig.entries.any()
    # the same family through signals_multi (one frame per coin) gives the same weights
    multi = fam.signals_multi({c: make_bars(2000, seed=3 + i, vol=0.01 + 0.005 * i,
                                            drift=0.0003 * (1 - i))
                               for i, c in enumerate(COINS)}, fam.default_params())  # fmt: skip
    np.testing.assert_array_equal(weights_of(multi, COINS), w)


def test_top_k_weights() -> None:
    score = np.array([[0.1, 0.3, -0.2], [np.nan, -0.1, -0.3], [0.2, 0.2, 0.1]])
    w = top_k_weights(score, 2, positive_only=True)
    np.testing.assert_allclose(w, [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    w = top_k_weights(score, 2, positive_only=False)
    np.testing.assert_allclose(w[1], [0.0, 0.5, 0.5])  # NaN never chosen
    assert top_k_weights(score, 9, positive_only=False)[0].sum() == pytest.approx(1.0)


def test_schedule_does_not_move_with_the_first_bar() -> None:
    frame = universe(300)
    full = Universe.of(frame).schedule(24)
    later = Universe.of(frame.slice(7)).schedule(24)
    np.testing.assert_array_equal(full[7:], later)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PORTFOLIO_FAMILIES))
def test_honest_families_audit_clean(name: str) -> None:
    fam = get_family(name)
    report = audit_family(fam, universe(700), params=[SMALL[name]], samples=0, seed=1)
    assert report.verdict == "clean", report.describe()
    assert report.points > 20 and report.shock_runs > 0
    assert report.shock_partial == 0  # the shock scan covered every bar of every coin
    assert report.stable, report.describe()  # no dependence on history beyond the warm-up


def test_leaky_variant_is_caught() -> None:
    report = audit_family(PeekingMomentum(), universe(700), params=[SMALL["xs_momentum"]])
    assert report.verdict == "leaky"
    assert report.findings[0].kind == "lookahead"
    assert report.findings[0].field.startswith(("meta.weights", "flags"))


def test_discovery_refuses_the_leaky_variant(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame = universe(1500)
    with pytest.raises(LookaheadRefused, match="peeking_momentum"):
        require_no_lookahead(PeekingMomentum(), frame, cache_dir=tmp_path, data="universe")
    storage = optuna.storages.InMemoryStorage()
    with pytest.raises(LookaheadRefused):
        tune_universe(
            frame,
            PeekingMomentum(),
            series="universe-AAA+BBB+CCC-1h",
            interval="1h",
            storage=storage,
            n_trials=3,
            walk=WalkForward(folds=2),
            audit_cache=tmp_path,
        )
    assert optuna.get_all_study_summaries(storage) == []  # no trial, no study
    assert list(tmp_path.iterdir()) == []  # a refusal caches nothing


@pytest.mark.parametrize("name", sorted(PORTFOLIO_FAMILIES))
def test_a_portfolio_family_on_one_series_is_one_clear_line(name: str) -> None:
    one = make_bars(400, seed=1)
    fam = get_family(name)
    with pytest.raises(UserInputError, match=f"{name} is a portfolio family"):
        audit_family(fam, one)
    with pytest.raises(UserInputError, match="not on one series"):
        make_spec(one, fam, series="spot-BTCUSDT-1h", interval="1h")
