"""The selector trained with and without the news features, end to end on generated data (a
seeded market, synthetic candidates, a SYNTHETIC reporter feed scored by VADER): both on the
same held-out rows, the baselines identical, the news features the only difference."""

from __future__ import annotations

import math

import pytest

from trading_pipeline.bots.spec import FLEET
from trading_pipeline.news.sources import NewsCounts, RawItem, empty_items, score_items
from trading_pipeline.selector.model import DEFAULT_CONFIGS
from trading_pipeline.selector.sentiment_compare import compare_sentiment
from trading_pipeline.selector.train import MODEL, TrainSettings
from trading_pipeline_tests.fakes.news import reporter_posts
from trading_pipeline_tests.selector.helpers import SERIES, candidates, market

pytestmark = pytest.mark.slow  # two selector trainings

FAST = TrainSettings(configs=(DEFAULT_CONFIGS[0], DEFAULT_CONFIGS[1]))


def test_with_and_without_news_on_the_same_held_out_rows() -> None:
    bars = market(n_bars=24 * 130, seed=21)
    posts = reporter_posts(bars, per_day=4, seed=2)
    raw = [RawItem(p.published, p.id, "", "synthetic", "social", p.author, p.text) for p in posts]
    news = score_items(raw, NewsCounts())
    result = compare_sentiment(candidates(bars), bars, news, fleet=FLEET, settings=FAST)
    print(
        "with/without news:",
        result.to_json()["without"][MODEL],
        result.to_json()["with_news"][MODEL],
    )
    print(result.markdown())
    assert set(result.news_features) == {
        f"{g}.news_{k}" for g in (*SERIES, "x") for k in ("compound", "items")
    }
    assert result.news_items == news.height and result.rows_with_news == result.rows
    w, wo = result.with_news, result.without
    assert w.n_holdout == wo.n_holdout and w.holdout_start == wo.holdout_start
    for name, m in wo.holdout.items():
        if name != MODEL:
            assert w.holdout[name] == m  # the baselines see the very same rows
    for report in (w, wo):
        assert math.isfinite(report.holdout[MODEL]["net_return"])
    assert result.delta_net_return == pytest.approx(
        w.holdout[MODEL]["net_return"] - wo.holdout[MODEL]["net_return"]
    )
    names = [row[0] for row in result.table()]
    assert names[:2] == ["selector without news", "selector with news"]
    assert "cash" in names


def test_absent_news_is_a_constant_zero_feature() -> None:
    bars = market(n_bars=24 * 100, seed=5)
    result = compare_sentiment(candidates(bars), bars, empty_items(), fleet=FLEET, settings=FAST)
    assert result.news_items == 0 and result.rows_with_news == 0
    assert result.without.n_holdout == result.with_news.n_holdout > 0
