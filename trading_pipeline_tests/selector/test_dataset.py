"""Decision rows without lookahead: the state uses closed bars before the window only, the label
is the window's best candidate net of costs, and purging/embargo hold on the label windows."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.bots.spec import FLEET
from trading_pipeline.discovery.evaluate import metrics_from_returns
from trading_pipeline.discovery.ranking import rank
from trading_pipeline.discovery.results import StudyResult
from trading_pipeline.errors import UserInputError
from trading_pipeline.selector.cv import holdout_split, purged_splits
from trading_pipeline.selector.dataset import (
    SelectorDataset,
    build_dataset,
    follow,
    select_candidates,
    selection_cutoff,
)
from trading_pipeline.selector.model import CASH_ID
from trading_pipeline.selector.state import state_frame
from trading_pipeline_tests.selector.helpers import (
    BARS_PER_YEAR,
    SERIES,
    candidates,
    market,
    study_result,
)

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def bars() -> dict[str, pl.DataFrame]:
    return market(n_bars=24 * 120, seed=3)


@pytest.fixture(scope="module")
def ds(bars: dict[str, pl.DataFrame]) -> SelectorDataset:
    return build_dataset(candidates(bars), bars, fleet=FLEET)


def test_rows_labels_and_windows(ds: SelectorDataset, bars: dict[str, pl.DataFrame]) -> None:
    assert ds.candidates[0].id == CASH_ID and len(ds.candidates) == 5
    t = ds.frame.get_column("decision_time")
    assert (t.dt.hour() == 0).all() and (t.diff().drop_nulls() >= DAY).all()
    assert (ds.frame.get_column("label_end") - t == DAY).all()
    # the label is the best window return, cash (0) when every candidate lost
    best = np.argmax(ds.returns, axis=1)
    assert (ds.labels == best).all()
    lost = (ds.returns[:, 1:] <= 0).all(axis=1)
    assert lost.any() and (ds.labels[lost] == 0).all()
    # a window return is the compounded per-bar out-of-sample return of that UTC day
    res = candidates(bars)
    r0 = res[0]
    day = t[5]
    inside = (r0.open_time >= day) & (r0.open_time < day + DAY)
    j = [c.id for c in ds.candidates].index(f"{r0.spec.family}@{r0.spec.series}")
    assert ds.returns[5, j] == pytest.approx(np.prod(1 + r0.returns[inside.to_numpy()]) - 1)
    # every decision is inside the out-of-sample period
    assert t.min() >= r0.open_time.min()


def test_features_at_a_decision_are_the_state_of_the_last_closed_bar(
    ds: SelectorDataset, bars: dict[str, pl.DataFrame]
) -> None:
    frame = state_frame(bars, interval="1h")
    for i in (0, 17, ds.n - 1):
        d = ds.frame["decision_time"][i]
        row = frame.filter(pl.col("open_time") == d - timedelta(hours=1))
        assert row.height == 1
        assert row.select(ds.feature_names).row(0) == ds.frame.select(ds.feature_names).row(i)


def test_truncating_the_future_leaves_earlier_rows_identical(
    ds: SelectorDataset, bars: dict[str, pl.DataFrame]
) -> None:
    """Cut bars and out-of-sample returns at a decision time: every earlier row, its features,
    label and window returns are unchanged (nothing after a window's end was read)."""
    cut_time = ds.frame["decision_time"][40]
    short_bars = {k: v.filter(pl.col("open_time") < cut_time) for k, v in bars.items()}
    short = build_dataset(candidates(short_bars), short_bars, fleet=FLEET)
    assert short.frame["decision_time"].max() < cut_time
    n = short.n
    assert n >= 35
    assert short.frame.equals(ds.frame.head(n))
    ids = [c.id for c in ds.candidates]  # the candidates' order is their rank: may differ
    for j, c in enumerate(short.candidates):
        assert np.array_equal(short.returns[:, j], ds.returns[:n, ids.index(c.id)])
    # and the features at a decision do not move when the bars from that moment on change
    d = ds.frame["decision_time"][30]
    shocked = {
        k: v.with_columns(
            pl.when(pl.col("open_time") >= d).then(pl.col(c) * 2.0).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close", "volume")
        )
        for k, v in bars.items()
    }
    moved = build_dataset(
        candidates(bars), shocked, fleet=FLEET
    )  # same outcomes, future bars changed
    i = moved.frame["decision_time"].to_list().index(d)
    assert moved.frame.select(ds.feature_names).row(i) == ds.frame.select(ds.feature_names).row(30)


def test_purge_and_embargo_on_the_label_windows(ds: SelectorDataset) -> None:
    t, end = ds.decision_times, ds.label_ends
    embargo = 2
    for train, test in purged_splits(t, end, 4, embargo, forward_only=False):
        lo, hi = t[test[0]], end[test].max()
        overlap = (t[train] <= hi) & (end[train] >= lo)
        assert not overlap.any()
        after = np.arange(test[-1] + 1, min(test[-1] + 1 + embargo, ds.n))
        assert not np.isin(after, train).any()
        # daily windows end where the next begins: the row just before a test block is purged
        if test[0] > 0:
            assert test[0] - 1 not in train
    dev, hold = holdout_split(ds.n, 0.25, decision_times=t, label_ends=end)
    assert end[dev].max() < t[hold[0]]


def test_follow_charges_fee_and_slippage_per_side_moved() -> None:
    r = np.array([[0.0, 0.01, 0.02], [0.0, 0.01, 0.02], [0.0, 0.01, 0.02], [0.0, 0.01, 0.02]])
    c = 0.001
    net = follow(np.array([1, 1, 2, 0]), r, c)
    assert net[0] == pytest.approx(1.01 * (1 - c) - 1)  # cash → 1: one side
    assert net[1] == pytest.approx(0.01)  # no change, no cost
    assert net[2] == pytest.approx(1.02 * (1 - c) ** 2 - 1)  # 1 → 2: out and in
    assert net[3] == pytest.approx((1 - c) - 1)  # 2 → cash: one side


def test_candidates_follow_the_fleet(bars: dict[str, pl.DataFrame]) -> None:
    res = candidates(bars)
    close = bars[SERIES[0]]["close"].to_numpy()
    # rsi_reversion is a 5-minute family of bot2: never a candidate on hourly series
    res.append(study_result("rsi_reversion", SERIES[0], bars[SERIES[0]], close * 0, oos_start=960))
    picked = select_candidates(res, fleet=FLEET)
    assert {r.spec.family for r in picked} == {"sma_cross", "momentum", "macd"}
    assert len(select_candidates(res, max_candidates=2, fleet=FLEET)) == 2
    with pytest.raises(UserInputError):
        select_candidates(res[-1:], fleet=FLEET)


def test_save_and_load_round_trip(ds: SelectorDataset, tmp_path: Path) -> None:
    ds.save(tmp_path)
    back = SelectorDataset.load(tmp_path)
    assert back.frame.equals(ds.frame)
    assert np.array_equal(back.returns, ds.returns)
    assert (back.regimes == ds.regimes).all()
    assert back.candidates == ds.candidates and back.feature_names == ds.feature_names
    assert back.selection == ds.selection and back.candidate_cutoff == ds.candidate_cutoff
    with pytest.raises(UserInputError):
        SelectorDataset.load(tmp_path / "nothing")


def test_too_little_history_is_a_user_error(bars: dict[str, pl.DataFrame]) -> None:
    short = {k: v.head(24 * 10) for k, v in bars.items()}
    with pytest.raises(UserInputError):
        build_dataset(candidates(short, oos_start=24), short, fleet=FLEET)


def _heldout_replaced(r: StudyResult, cutoff: object, after: np.ndarray) -> StudyResult:
    """``r`` with its out-of-sample returns from ``cutoff`` on replaced by ``after`` (whole-
    history statistics recomputed, as discovery would report them)."""
    late = (r.open_time >= cutoff).to_numpy()
    returns = np.where(late, after[: r.returns.size], r.returns)
    metrics = metrics_from_returns(returns, bars_per_year=BARS_PER_YEAR) | {"trades": 40.0}
    return dataclasses.replace(r, returns=returns, metrics=metrics)


def test_candidates_are_chosen_before_the_held_out_period(bars: dict[str, pl.DataFrame]) -> None:
    """Which studies become candidates depends on nothing from the held-out period on: two
    pools that differ only after the cut-off give the same candidates, same order, same
    development rows; a study that shines only in the held-out period (first in discovery's
    whole-history ranking) is not preferred by the cap."""
    res = candidates(bars)
    cutoff = selection_cutoff(res, fleet=FLEET)  # the first held-out decision time of the training
    # a momentum study on ETH that loses before the cut-off and wins big after it
    eth = bars[SERIES[1]]
    ot = eth.get_column("open_time")
    noise = np.random.default_rng(5).normal(0.0, 0.001, eth.height)
    late_star = study_result(
        "momentum",
        SERIES[1],
        eth,
        np.where((ot >= cutoff).to_numpy(), 0.004, -0.0003) + noise,
        oos_start=24 * 40,
    )
    pool_a = [*res, late_star]
    assert rank(pool_a)["study"][0] == late_star.spec.study_group  # the old rule's favourite
    picked_a = select_candidates(pool_a, max_candidates=3, fleet=FLEET)
    assert late_star.spec.study_group not in {r.spec.study_group for r in picked_a}

    # the same studies with other held-out-period returns: another favourite of the old rule
    rng = np.random.default_rng(11)
    pool_b = [
        _heldout_replaced(r, cutoff, rng.normal(0.003 if i == 0 else -0.002, 0.002, 24 * 200))
        for i, r in enumerate(pool_a)
    ]
    assert rank(pool_b)["study"].to_list() != rank(pool_a)["study"].to_list()
    picked_b = select_candidates(pool_b, max_candidates=3, fleet=FLEET)
    assert [r.spec.study_group for r in picked_b] == [r.spec.study_group for r in picked_a]

    ds_a = build_dataset(pool_a, bars, max_candidates=3, fleet=FLEET)
    ds_b = build_dataset(pool_b, bars, max_candidates=3, fleet=FLEET)
    assert ds_a.candidates == ds_b.candidates and ds_a.studies == ds_b.studies
    assert ds_a.selection == ds_b.selection
    assert ds_a.candidate_cutoff == cutoff
    assert "before the held-out cut-off" in ds_a.selection["rule"]
    assert ds_a.summary()["candidate_selection"]["cutoff"] == cutoff.isoformat()
    scores = {row["study"]: row for row in ds_a.selection["scores"]}
    assert not scores[late_star.spec.study_group]["picked"]
    assert scores[late_star.spec.study_group]["sharpe_per_bar"] < 0
    # the held-out period the training will use starts exactly at the cut-off ...
    _, hold = holdout_split(
        ds_a.n, 0.25, decision_times=ds_a.decision_times, label_ends=ds_a.label_ends
    )
    assert ds_a.frame["decision_time"][int(hold[0])] == cutoff
    # ... and everything before it is identical, the held-out rows' outcomes are not
    before = int(hold[0])
    assert ds_a.frame.head(before).equals(ds_b.frame.head(before))
    assert np.array_equal(ds_a.returns[:before], ds_b.returns[:before])
    assert not np.array_equal(ds_a.returns[before:], ds_b.returns[before:])


def test_every_bot_keeps_its_best_study_under_the_cap(bars: dict[str, pl.DataFrame]) -> None:
    """A cap of one cannot crowd a bot out: each bot with a matching study keeps its best."""
    res = candidates(bars)
    fams_of = {bot.name: set(bot.families) for bot in FLEET}
    offered = {b for b, fams in fams_of.items() if any(r.spec.family in fams for r in res)}
    assert len(offered) >= 2  # the fixture offers studies to more than one bot
    picked = select_candidates(res, max_candidates=1, fleet=FLEET)
    served = {b for b, fams in fams_of.items() if any(r.spec.family in fams for r in picked)}
    assert served == offered
    assert len(picked) == len(offered)
