"""One backtest as an interactive HTML page (freqtrade's ``plot-dataframe``, plus equity).

Top panel: candles, the chosen indicators that live on the price scale, the strategy's entry and
exit signals and each trade (entry to exit, green when it made money, red when it lost). Below:
indicators on their own scale (one panel), then the strategy's equity beside buy-and-hold with
the same costs. The page embeds plotly's script, so it opens offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.fsutil import atomic_path

PRICE_SCALE = (0.5, 2.0)  # an indicator whose median sits within this factor of price's overlays it


def on_price_scale(values: np.ndarray, close: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return False
    ratio = float(np.median(finite)) / float(np.median(close))
    return PRICE_SCALE[0] <= ratio <= PRICE_SCALE[1]


def backtest_figure(
    bars: pl.DataFrame,
    *,
    title: str,
    equity: np.ndarray,
    benchmark: np.ndarray,
    trades: pl.DataFrame | None,
    entries: np.ndarray,
    exits: np.ndarray,
    indicators: Mapping[str, np.ndarray] | None = None,
) -> Any:
    """The plotly figure (``plotly.graph_objects.Figure``)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    t = bars["open_time"].to_list()
    close = bars["close"].to_numpy()
    lines = dict(indicators or {})
    overlay = {k: v for k, v in lines.items() if on_price_scale(v, close)}
    lower = {k: v for k, v in lines.items() if k not in overlay}
    rows = 3 if lower else 2
    heights = [0.55, 0.2, 0.25] if lower else [0.7, 0.3]
    titles = ["price, signals and trades", *(["indicators"] if lower else []), "equity"]
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03,
        row_heights=heights, subplot_titles=titles,
    )  # fmt: skip
    fig.add_trace(
        go.Candlestick(
            x=t, open=bars["open"].to_list(), high=bars["high"].to_list(),
            low=bars["low"].to_list(), close=close.tolist(), name="candles",
        ),
        row=1, col=1,
    )  # fmt: skip
    for name, values in overlay.items():
        fig.add_trace(go.Scatter(x=t, y=_nan_to_none(values), name=name, mode="lines"), 1, 1)
    for name, mask, symbol, color in (
        ("entry signal", entries, "triangle-up", "#2e7d32"),
        ("exit signal", exits, "triangle-down", "#c62828"),
    ):
        idx = np.flatnonzero(mask)
        fig.add_trace(
            go.Scatter(
                x=[t[i] for i in idx], y=close[idx].tolist(), name=name, mode="markers",
                marker={"symbol": symbol, "size": 9, "color": color},
            ),
            row=1, col=1,
        )  # fmt: skip
    for row in trades.iter_rows(named=True) if trades is not None else ():
        if row["exit_bar"] < 0:
            continue
        won = row["pnl"] > 0
        fig.add_trace(
            go.Scatter(
                x=[t[int(row["entry_bar"])], t[int(row["exit_bar"])]],
                y=[row["entry_price"], row["exit_price"]],
                mode="lines", line={"color": "#2e7d32" if won else "#c62828", "width": 2},
                name="trade", legendgroup="trades", showlegend=False,
                hovertext=f"{row['return']:+.2%}",
            ),
            row=1, col=1,
        )  # fmt: skip
    if lower:
        for name, values in lower.items():
            fig.add_trace(go.Scatter(x=t, y=_nan_to_none(values), name=name, mode="lines"), 2, 1)
    fig.add_trace(go.Scatter(x=t, y=equity.tolist(), name="strategy equity"), rows, 1)
    fig.add_trace(
        go.Scatter(x=t, y=benchmark.tolist(), name="buy and hold", line={"dash": "dot"}), rows, 1
    )
    fig.update_layout(
        title=title, xaxis_rangeslider_visible=False, height=900, template="plotly_white",
        legend={"orientation": "h"},
    )  # fmt: skip
    return fig


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(x) else float(x) for x in values]


def write_html(fig: Any, path: Path) -> Path:
    """The page at ``path`` (written whole, then renamed), with plotly's script inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.write_html(str(tmp), include_plotlyjs=True, full_html=True)
    return path


def ledger_figure(
    bot: str,
    bars: Mapping[str, pl.DataFrame],
    fills: pl.DataFrame,
    equity: pl.DataFrame,
) -> Any:
    """A bot's ledger: each symbol's candles with the bot's buys and sells, then its equity."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    symbols = list(bars)
    rows = len(symbols) + 1
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03,
        subplot_titles=[*symbols, "equity"],
    )  # fmt: skip
    for row, symbol in enumerate(symbols, start=1):
        b = bars[symbol]
        fig.add_trace(
            go.Candlestick(
                x=b["open_time"].to_list(), open=b["open"].to_list(), high=b["high"].to_list(),
                low=b["low"].to_list(), close=b["close"].to_list(), name=symbol,
            ),
            row=row, col=1,
        )  # fmt: skip
        mine = fills.filter(pl.col("symbol") == symbol) if fills.height else fills
        for side, marker, color in (("buy", "triangle-up", "#2e7d32"),
                                    ("sell", "triangle-down", "#c62828")):  # fmt: skip
            rows_ = mine.filter(pl.col("side") == side) if mine.height else mine
            fig.add_trace(
                go.Scatter(
                    x=[_ms(t) for t in (rows_["time_ms"].to_list() if rows_.height else [])],
                    y=rows_["price"].to_list() if rows_.height else [],
                    mode="markers", name=f"{symbol} {side}",
                    marker={"symbol": marker, "size": 9, "color": color},
                ),
                row=row, col=1,
            )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=equity["time"].to_list(), y=equity["equity"].to_list(), name="equity"),
        rows, 1,
    )  # fmt: skip
    fig.update_layout(
        title=f"{bot}: {fills.height} fills", xaxis_rangeslider_visible=False,
        height=300 * rows, template="plotly_white", legend={"orientation": "h"},
    )  # fmt: skip
    return fig


def _ms(ms: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC)
