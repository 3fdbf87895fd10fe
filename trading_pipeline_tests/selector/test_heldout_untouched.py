"""The held-out rows are touched once, for the report and the gate: poisoning them changes
neither which studies are pre-filtered (``selector train``'s catalog path included), nor which
become candidates, nor which model configuration and decision rule are chosen."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from trading_pipeline.bots.spec import FLEET
from trading_pipeline.discovery.catalog import StudyCatalog
from trading_pipeline.discovery.evaluate import metrics_from_returns
from trading_pipeline.discovery.ranking import rank
from trading_pipeline.discovery.results import StudyResult
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
from trading_pipeline.history.layout import Series
from trading_pipeline.selector.dataset import (
    SelectorDataset,
    build_dataset,
    prefilter,
    results_from_catalog,
    selection_cutoff,
)
from trading_pipeline.selector.model import DEFAULT_CONFIGS
from trading_pipeline.selector.train import TrainSettings, fit_and_evaluate, split_rows
from trading_pipeline.settings import DataLayout
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import START_2021, make_bars
from trading_pipeline_tests.fakes.store import write_store
from trading_pipeline_tests.selector.helpers import (
    BARS_PER_YEAR,
    SERIES,
    candidates,
    market,
    study_result,
)

FAST = TrainSettings(configs=(DEFAULT_CONFIGS[0], DEFAULT_CONFIGS[1]))


def _poisoned(r: StudyResult, cutoff: datetime, after: np.ndarray) -> StudyResult:
    """``r`` with its out-of-sample returns from ``cutoff`` on replaced by ``after`` (its
    whole-history statistics recomputed, as discovery's ranking would see them)."""
    late = (r.open_time >= cutoff).to_numpy()
    returns = np.where(late, after[: r.returns.size], r.returns)
    metrics = metrics_from_returns(returns, bars_per_year=BARS_PER_YEAR) | {"trades": 40.0}
    return dataclasses.replace(r, returns=returns, metrics=metrics)


@pytest.fixture(scope="module")
def bars() -> dict[str, pl.DataFrame]:
    return market(n_bars=24 * 130, seed=21)


@pytest.fixture(scope="module")
def pools(bars: dict[str, pl.DataFrame]) -> tuple[list[StudyResult], list[StudyResult]]:
    """Two pools of the same studies, identical before the held-out cut-off and different after
    it; pool A has a study that shines only in the held-out period."""
    res = candidates(bars)
    cutoff = selection_cutoff(res, fleet=FLEET)
    eth = bars[SERIES[1]]
    late = (eth.get_column("open_time") >= cutoff).to_numpy()
    noise = np.random.default_rng(5).normal(0.0, 0.001, eth.height)
    star = study_result(
        "momentum", SERIES[1], eth, np.where(late, 0.004, -0.0003) + noise, oos_start=24 * 40
    )
    pool_a = [*res, star]
    rng = np.random.default_rng(11)
    pool_b = [
        _poisoned(r, cutoff, rng.normal(0.003 if i == 0 else -0.002, 0.002, 24 * 200))
        for i, r in enumerate(pool_a)
    ]
    return pool_a, pool_b


def test_the_prefilter_ranks_on_development_returns_only(
    pools: tuple[list[StudyResult], list[StudyResult]],
) -> None:
    pool_a, pool_b = pools
    star = pool_a[-1].spec.study_group
    # discovery's whole-history ranking puts the held-out star first, and differs between pools
    assert rank(pool_a)["study"][0] == star
    assert rank(pool_b)["study"].to_list() != rank(pool_a)["study"].to_list()
    kept_a, rec_a = prefilter(pool_a, fleet=FLEET, limit=3)
    kept_b, rec_b = prefilter(pool_b, fleet=FLEET, limit=3)
    assert [r.spec.study_group for r in kept_a] == [r.spec.study_group for r in kept_b]
    assert rec_a == rec_b and len(kept_a) == 3
    assert star in rec_a["dropped"] and "before the held-out cut-off" in rec_a["rule"]
    assert rec_a["fleet_matching"] == len(pool_a)


def test_model_choice_ignores_the_held_out_rows(
    pools: tuple[list[StudyResult], list[StudyResult]], bars: dict[str, pl.DataFrame]
) -> None:
    """Same candidates, same CV table, same configuration and rule, same fitted model; the
    held-out rows (returns, labels, even their features) only change the reported result."""
    pool_a, pool_b = pools
    ds_a = build_dataset(pool_a, bars, max_candidates=3, fleet=FLEET)
    ds_b = build_dataset(pool_b, bars, max_candidates=3, fleet=FLEET)
    assert ds_a.candidates == ds_b.candidates
    dev, hold = split_rows(ds_b, FAST.holdout_fraction)
    # poison the held-out rows' features too
    noise = np.random.default_rng(3).normal(0.0, 5.0, (len(hold), len(ds_b.feature_names)))
    feats = ds_b.frame.select(ds_b.feature_names).to_numpy().astype(float)
    feats[hold] = noise
    frame = ds_b.frame.with_columns(
        pl.Series(name, feats[:, j]) for j, name in enumerate(ds_b.feature_names)
    )
    ds_b = dataclasses.replace(ds_b, frame=frame)
    assert not np.array_equal(ds_a.returns[hold], ds_b.returns[hold])
    assert not np.array_equal(ds_a.labels[hold], ds_b.labels[hold])
    a, b = fit_and_evaluate(ds_a, FAST), fit_and_evaluate(ds_b, FAST)
    assert a.cv == b.cv
    assert (a.config, a.model.decision_rule) == (b.config, b.model.decision_rule)
    x_dev = ds_a.x(dev)
    assert np.array_equal(a.model.proba_matrix(x_dev), b.model.proba_matrix(x_dev))
    assert a.n_holdout == b.n_holdout == len(hold)
    assert a.holdout["selector"] != b.holdout["selector"]  # the report sees the held-out rows


def _tune(layout: DataLayout, bars: pl.DataFrame, family: str, series: Series) -> str:
    fam = get_family(family)
    spec = make_spec(bars, fam, series=series.key, interval="1h", walk=WalkForward(folds=2))
    storage = StudyCatalog(layout).storage
    tune(bars, fam, spec=spec, storage=storage, n_trials=3, seed=1)
    return spec.study_group


@pytest.mark.slow  # real Optuna journal storage and tuning
def test_selector_train_prefilters_the_catalog_on_development_rows(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``selector train``'s path: the studies top_strategies.json lists, in whatever order
    discovery ranked them, give the same pre-filtered set; a study no bot may run is left out."""
    layout = DataLayout.under(tmp_path_factory.mktemp("data"))
    btc, eth = Series("spot", "BTCUSDT", "1h"), Series("spot", "ETHUSDT", "1h")
    b_btc = make_bars(24 * 45, seed=1, trend="walk_traded", start=START_2021)
    b_eth = make_bars(24 * 45, seed=2, trend="walk_traded", start=START_2021)
    write_store(layout.history_dir, btc, b_btc)
    write_store(layout.history_dir, eth, b_eth)
    groups = [
        _tune(layout, b_btc, "sma_cross", btc),
        _tune(layout, b_eth, "sma_cross", eth),
        _tune(layout, b_btc, "momentum", btc),
        _tune(layout, b_btc, "rsi_reversion", btc),  # 1h rsi_reversion: no bot runs it
    ]
    catalog = StudyCatalog(layout)
    found = []
    for order in (groups, groups[::-1]):
        catalog.write_top({"ranked": [{"study": g} for g in order]})
        found.append(results_from_catalog(StudyCatalog(layout), fleet=FLEET, limit=2))
    first, second = found
    kept = [r.spec.study_group for r in first.results]
    assert kept == [r.spec.study_group for r in second.results] and len(kept) == 2
    pre = first.provenance["prefilter"]
    assert pre == second.provenance["prefilter"]
    assert pre["listed"] == 4 and pre["not_in_fleet"] == 1 and pre["fleet_matching"] == 3
    assert set(pre["kept"]) == set(kept) and len(pre["dropped"]) == 1
    assert groups[3] not in pre["kept"] + pre["dropped"]
    json.dumps(first.provenance)  # recorded in the training set's meta as it is
    # the pre-filter's cut-off is the one the candidates are chosen before
    ds = build_dataset(first.results, first.bars, fleet=FLEET, max_candidates=2)
    assert isinstance(ds, SelectorDataset)
    assert ds.selection["cutoff"] == pre["cutoff"]
