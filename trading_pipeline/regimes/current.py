"""The regime now, from the latest candles, fast enough for a 5-minute decision loop.

``current_regime`` labels only the tail the labeller's memory needs (``HISTORY_DAYS``) and
returns the last label. On hourly bars the rules labeller takes a few milliseconds; the
mixture labeller reuses its fitted models across calls (one refit per new month).
"""

from __future__ import annotations

import polars as pl

from trading_pipeline.regimes.base import RegimeLabeller, bars_per_day

# Days of history beyond which older bars cannot change today's label (longest window + slack).
HISTORY_DAYS: dict[str, int] = {"rules": 400}


def history_bars(bars: pl.DataFrame, labeller: RegimeLabeller) -> int | None:
    """How many trailing bars ``labeller`` needs (None: all of them)."""
    days = HISTORY_DAYS.get(labeller.name)
    if days is None:
        return None
    return int(days * bars_per_day(bars)) + 1


def current_regime(latest_bars: pl.DataFrame, labeller: RegimeLabeller) -> str:
    """The confirmed regime at the last bar of ``latest_bars`` (sorted by open_time)."""
    if latest_bars.height == 0:
        raise ValueError("no bars")
    n = history_bars(latest_bars, labeller)
    tail = latest_bars if n is None else latest_bars.tail(n)
    return str(labeller.label(tail).get_column("regime")[-1])
