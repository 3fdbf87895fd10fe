"""The availability rule: an item is seen only by bars opening strictly after its publication,
within 24 hours; adding a later item never changes an earlier row; no item is 0.0 and 0; the
live state equals the training frame's row at the same bar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading_pipeline.news.aggregate import aggregate, news_features, window_stats
from trading_pipeline.news.sources import NewsCounts, RawItem, score_items
from trading_pipeline.news.store import write_day
from trading_pipeline.selector.news_state import stored_news_state
from trading_pipeline.selector.state import feature_names, latest_state, state_frame
from trading_pipeline.settings import DataLayout
from trading_pipeline_tests.fakes.news import reporter_posts
from trading_pipeline_tests.selector.helpers import SERIES, market

T0 = datetime(2024, 3, 5, tzinfo=UTC)
H = timedelta(hours=1)
US = timedelta(microseconds=1)


def _items(rows: list[tuple[datetime, str]]) -> pl.DataFrame:
    raw = [RawItem(t, f"u{i}", "", "test", "social", "a", text) for i, (t, text) in enumerate(rows)]
    return score_items(raw, NewsCounts())


def _bars(n: int) -> pl.Series:
    return pl.Series("open_time", [T0 + i * H for i in range(n)]).cast(pl.Datetime("us", "UTC"))


def test_the_window_edges() -> None:
    good = "Bitcoin rallies, a great day"
    items = _items([(T0 + 2 * H, good), (T0 + 3 * H - US, good), (T0 + 3 * H, good)])
    mean, count = window_stats(items, _bars(30))
    assert count[:3].tolist() == [0, 0, 0]  # the 02:00 bar opens at the first item's time
    assert count[3] == 2  # the 03:00 bar sees 02:00 and 02:59:59.999999, not 03:00
    assert count[4] == 3
    # [t - 24h, t): the 02:00 item is still in the 02:00 bar's window of the next day, the
    # 02:59:59.999999 one leaves it at 03:00, the 03:00 one at 04:00
    assert count[26:29].tolist() == [3, 1, 0]
    assert mean[3] > 0.05 and mean[0] == 0.0 and mean[28] == 0.0


def test_no_item_is_zero_and_zero_never_null() -> None:
    feats = news_features(_items([]), _bars(5), {"spot-BTCUSDT-1h": "BTC", "spot-FOO-1h": None})
    assert feats.null_count().sum_horizontal().item() == 0
    assert feats.drop("open_time").to_numpy().sum() == 0.0


def test_per_coin_and_unscored_items() -> None:
    items = _items(
        [
            (T0, "Bitcoin rallies, a great day"),
            (T0 + H, "Ethereum crash, terrible losses"),
            (T0 + H, "Le bitcoin est en baisse et les investisseurs sont inquiets"),
        ]
    )
    f = news_features(items, _bars(3), {"spot-BTCUSDT-1h": "BTC", "spot-ETHUSDT-1h": "ETH"})
    row = f.row(2, named=True)
    assert row["spot-BTCUSDT-1h.news_items"] == 1.0  # the French item is not scored
    assert row["spot-ETHUSDT-1h.news_items"] == 1.0 and row["x.news_items"] == 2.0
    assert row["spot-BTCUSDT-1h.news_compound"] > 0 > row["spot-ETHUSDT-1h.news_compound"]
    hourly = aggregate(items, "1h").filter(pl.col("coin") == "ALL")
    assert hourly["items"].to_list() == [1, 2] and hourly["scored"].to_list() == [1, 1]


@pytest.fixture(scope="module")
def bars() -> dict[str, pl.DataFrame]:
    return market(n_bars=24 * 30, seed=3)


@pytest.fixture(scope="module")
def news(bars: dict[str, pl.DataFrame]) -> pl.DataFrame:
    posts = reporter_posts(bars, per_day=6, seed=1)
    raw = [RawItem(p.published, p.id, "", "synthetic", "social", p.author, p.text) for p in posts]
    return score_items(raw, NewsCounts())


def test_adding_later_items_never_changes_earlier_rows(
    bars: dict[str, pl.DataFrame], news: pl.DataFrame
) -> None:
    full = state_frame(bars, interval="1h", news=news)
    cols = [c for c in full.columns if ".news_" in c]
    assert len(cols) == 2 * (len(SERIES) + 1)
    assert full.select(cols).to_numpy().any()  # the feed does move the features
    times = full["open_time"]
    for cut in range(30, full.height, 97):
        t = times[cut]
        known = news.filter(pl.col("published_at") < t)  # what had been published by then
        part = state_frame(bars, interval="1h", news=known)
        a = full.filter(pl.col("open_time") <= t).select(cols)
        b = part.filter(pl.col("open_time") <= t).select(cols)
        assert a.equals(b), t
        # and a planted future item (even a crash headline at the bar's very open) changes
        # nothing at or before it
        crash = _items([(t, "Bitcoin crash, terrible panic, horrible losses")])
        with_future = state_frame(bars, interval="1h", news=pl.concat([news, crash]))
        assert with_future.filter(pl.col("open_time") <= t).select(cols).equals(a)


def test_live_state_equals_the_training_row(
    bars: dict[str, pl.DataFrame], news: pl.DataFrame
) -> None:
    full = state_frame(bars, interval="1h", news=news)
    names = feature_names(list(bars), news=True)
    assert [c for c in full.columns if c != "open_time"] == names
    for end in (600, 650, 719):
        cut = {k: v.head(end) for k, v in bars.items()}
        live = latest_state(cut, interval="1h", news=news)
        row = full.row(end - 1, named=True)
        for name in names:
            assert live[name] == pytest.approx(row[name], nan_ok=True, rel=1e-12), name
        # the news features exactly (same code, same window)
        news_cols = [n for n in names if ".news_" in n]
        assert [live[n] for n in news_cols] == [row[n] for n in news_cols]
    assert not np.isnan([live[n] for n in names if ".news_" in n]).any()


def test_the_live_decision_reads_the_stored_news(
    bars: dict[str, pl.DataFrame], news: pl.DataFrame, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    layout = DataLayout.under(tmp_path)
    state_fn = stored_news_state(layout)
    cut = {k: v.head(650) for k, v in bars.items()}
    nothing = state_fn(cut, interval="1h")
    assert [nothing[c] for c in nothing if ".news_" in c] == [0.0] * 2 * (len(SERIES) + 1)
    for day in sorted(set(news["published_at"].dt.date().to_list())):
        write_day(layout, day, news)
    live = state_fn(cut, interval="1h")
    row = state_frame(bars, interval="1h", news=news).row(649, named=True)
    assert {c: live[c] for c in live if ".news_" in c} == {c: row[c] for c in live if ".news_" in c}
    assert live["x.news_items"] > 0
