"""The live state with the stored news: :func:`~.state.latest_state` given the items the
``news_sentiment`` step stored for the days the 24-hour window can reach (an empty table when
none: the news features are then 0.0 and 0, as in training rows without items).

A model trained without news ignores the extra keys; one trained with them gets the same
numbers the training rows had at the same bar (the window rule is the same code).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

import polars as pl

from trading_pipeline.news.sources import empty_items
from trading_pipeline.news.store import read_items
from trading_pipeline.selector.state import latest_state
from trading_pipeline.settings import DataLayout


def stored_news_state(layout: DataLayout) -> Callable[..., dict[str, float]]:
    """A ``state_fn`` for :class:`~.decide.Decider` that adds the stored news."""

    def state(bars: Mapping[str, pl.DataFrame], **kwargs: object) -> dict[str, float]:
        last = min(df.get_column("open_time").max() for df in bars.values())  # type: ignore[type-var]
        day = last.date()  # type: ignore[union-attr]
        news = read_items(layout, start=day - timedelta(days=2), end=day)
        return latest_state(
            bars,
            interval=str(kwargs["interval"]),
            fear_greed=kwargs.get("fear_greed"),  # type: ignore[arg-type]
            news=empty_items() if news is None else news,
        )

    return state
