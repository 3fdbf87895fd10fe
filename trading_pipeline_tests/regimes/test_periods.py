"""Segmentation into periods and the share of time per regime."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from trading_pipeline.regimes import get_labeller, segment, share
from trading_pipeline.regimes.synthetic import synthetic_bars


def test_segment_covers_every_bar_and_compounds() -> None:
    bars = synthetic_bars()
    labels = get_labeller("rules").label(bars)
    periods = segment(labels, bars, bars_per_year=8760)
    assert periods.columns == ["start", "end", "regime", "bars", "return", "volatility"]
    assert periods["bars"].sum() == bars.height
    assert periods["start"][0] == bars["open_time"][0]
    assert periods["end"][-1] == bars["open_time"][-1]
    # consecutive periods are adjacent and differ in regime
    assert (periods["start"].shift(-1).head(-1) > periods["end"].head(-1)).all()
    assert (periods["regime"] != periods["regime"].shift(1)).fill_null(True).all()
    # the periods' returns compound to the whole series' return
    total = math.prod(1 + r for r in periods["return"])
    assert total == np_approx(bars["close"][-1] / bars["open"][0])
    # each period's return and volatility, by hand, for one period
    p = periods.row(3, named=True)
    inside = bars.with_row_index().filter(pl.col("open_time").is_between(p["start"], p["end"]))
    first = int(inside["index"][0])
    prev = bars["close"][first - 1]
    assert p["return"] == np_approx(inside["close"][-1] / prev - 1)
    lr = np.log(np.concatenate([[prev], inside["close"].to_numpy()]))
    assert p["volatility"] == np_approx(np.diff(lr).std(ddof=1) * math.sqrt(8760))


def np_approx(x: float) -> object:
    import pytest

    return pytest.approx(x, rel=1e-9)


def test_share_sums_to_one() -> None:
    labels = pl.DataFrame({"regime": ["bull"] * 6 + ["bear"] * 3 + ["unknown"]})
    assert share(labels) == {"bull": 0.6, "bear": 0.3, "unknown": 0.1}
    assert share(labels.head(0)) == {}


def test_segment_empty() -> None:
    bars = synthetic_bars((("bull", 10),))
    labels = get_labeller("rules").label(bars).head(0)
    assert segment(labels, bars, bars_per_year=8760).height == 0
