"""The catalog of studies: lists a real journal storage, keeps only the usable study groups
(same family version, same bars), owns top_strategies.json, holds best-per-regime."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.discovery.catalog import StudyCatalog, best_per_regime
from trading_pipeline.discovery.matrix import ALL, BENCHMARK, INSUFFICIENT, OK
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.settings import DataLayout
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import START_2021, make_bars
from trading_pipeline_tests.fakes.store import write_store

BTC = Series("spot", "BTCUSDT", "1h")
ETH = Series("spot", "ETHUSDT", "1h")


def _tune(catalog: StudyCatalog, bars: pl.DataFrame, family: str, series: Series, **spec_changes: object) -> str:  # fmt: skip
    fam = get_family(family)
    spec = make_spec(bars, fam, series=series.key, interval="1h", walk=WalkForward(folds=2))
    spec = replace(spec, **spec_changes)  # type: ignore[arg-type]
    tune(bars, fam, spec=spec, storage=catalog.storage, n_trials=3, seed=1)
    return spec.study_group


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[StudyCatalog, dict[str, str]]:
    """Four study groups: two usable on BTC, one of an older family version, one on ETH
    whose bars were replaced after tuning."""
    layout = DataLayout.under(tmp_path_factory.mktemp("data"))
    btc = make_bars(900, seed=1, trend="walk_traded", start=START_2021)
    eth = make_bars(900, seed=2, trend="walk_traded", start=START_2021)
    write_store(layout.history_dir, BTC, btc)
    write_store(layout.history_dir, ETH, eth)
    cat = StudyCatalog(layout)
    old = get_family("sma_cross").version + 1
    groups = {
        "sma": _tune(cat, btc, "sma_cross", BTC),
        "momentum": _tune(cat, btc, "momentum", BTC),
        "other_version": _tune(cat, btc, "sma_cross", BTC, family_version=old),
        "changed_bars": _tune(cat, eth, "sma_cross", ETH),
    }
    write_store(
        layout.history_dir, ETH, make_bars(900, seed=3, trend="walk_traded", start=START_2021)
    )  # ETH's data replaced
    return StudyCatalog(layout), groups  # a fresh catalog opens the storage from the layout


def test_lists_every_group_and_keeps_the_usable_ones(
    catalog: tuple[StudyCatalog, dict[str, str]],
) -> None:
    cat, groups = catalog
    assert cat.groups() == sorted(groups.values())
    usable = cat.usable()
    assert [e.group for e in usable.entries] == sorted([groups["momentum"], groups["sma"]])
    reasons = dict(s.split(": ", 1) for s in usable.skipped)
    assert set(reasons) == {groups["other_version"], groups["changed_bars"]}
    assert "the family is now" in reasons[groups["other_version"]]
    assert "bars changed" in reasons[groups["changed_bars"]]
    for e in usable.entries:
        assert e.bars.height == e.result.spec.n_bars and e.result.n_trials == 3 * 2
    assert set(usable.bars_by_series()) == {BTC.key}


def test_asked_groups_keep_their_order_and_unknown_ones_are_skipped(
    catalog: tuple[StudyCatalog, dict[str, str]],
) -> None:
    cat, groups = catalog
    usable = cat.usable([groups["sma"], "nope-v1-spot-XUSDT-1h", groups["momentum"], groups["sma"]])
    assert [e.group for e in usable.entries] == [groups["sma"], groups["momentum"]]
    assert len(usable.skipped) == 1 and usable.skipped[0].startswith(
        "nope-v1-spot-XUSDT-1h: no study"
    )


def test_top_strategies_file_round_trip(tmp_path: Path) -> None:
    cat = StudyCatalog(DataLayout.under(tmp_path))
    with pytest.raises(UserInputError, match="run discovery"):
        cat.read_top()
    doc = {"ranked": [{"study": "a"}, {"study": "b"}, {"study": "c"}], "top": [{"study": "a"}]}
    path = cat.write_top(doc)
    assert path == tmp_path / "discovery" / "top_strategies.json"
    assert cat.read_top() == doc
    assert cat.ranked_groups(doc, limit=2) == ["a", "b"]
    assert cat.ranked_groups({"top": [{"study": "t"}]}) == ["t"]
    path.write_text("[1, 2]")
    with pytest.raises(UserInputError, match="not a top-strategies file"):
        cat.read_top()
    path.write_text("{not json")
    with pytest.raises(UserInputError, match="not a top-strategies file"):
        cat.read_top()
    assert not list(path.parent.glob(".*.part"))


def test_best_per_regime_puts_buy_and_hold_beside_the_best() -> None:
    rows = [
        ("s", ALL, "sma_cross", 100, 0.5, 0.1, OK),
        ("s", ALL, "momentum", 100, 0.9, 0.2, OK),
        ("s", ALL, BENCHMARK, 100, 0.3, 0.05, "benchmark"),
        ("s", "bull", "sma_cross", 40, 1.5, 0.1, OK),
        ("s", "bull", "momentum", 40, None, None, OK),
        ("s", "bull", "ema_cross", 40, 2.5, 0.4, INSUFFICIENT),  # the best number, too thin
        ("s", "bull", BENCHMARK, 40, 2.0, 0.3, "benchmark"),
        ("s", "bear", "sma_cross", 40, 0.7, 0.1, INSUFFICIENT),
        ("s", "bear", BENCHMARK, 40, -1.0, -0.3, "benchmark"),
    ]
    matrix = pl.DataFrame(
        rows,
        schema=["series", "regime", "strategy", "bars", "sharpe", "total_return", "status"],
        orient="row",
    ).with_columns(max_drawdown=pl.lit(0.1), trades=pl.lit(3), dsr_probability=pl.lit(0.5))
    best = best_per_regime(matrix)
    assert best.select("regime", "strategy", "status", "sharpe", "bh_sharpe").rows() == [
        (ALL, "momentum", OK, 0.9, 0.3),
        ("bear", None, INSUFFICIENT, None, -1.0),  # no cell rests on enough: no best
        ("bull", "sma_cross", OK, 1.5, 2.0),
    ]
    assert best.columns[-2:] == ["bh_sharpe", "bh_return"]
    assert "dsr_probability" in best.columns


def test_trials_by_series_counts_every_study_usable_or_not(
    catalog: tuple[StudyCatalog, dict[str, str]],
) -> None:
    cat, _ = catalog
    # BTC: sma_cross, momentum and the other-version sma_cross; ETH: the stale one; each
    # 2 folds × 3 trials
    assert cat.trials_by_series() == {BTC.key: 18, ETH.key: 6}
