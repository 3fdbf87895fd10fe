"""The strategy × regime performance matrix, built from out-of-sample bars only.

Each tuned strategy's concatenated test-window bars (see :mod:`.results`) are labelled with the
regime of their bar (any causal labeller's ``open_time, regime`` frame) and split by regime:
per (strategy, series, regime) the annualised Sharpe ratio, the compounded return and max
drawdown of those bars chained together, the positions opened, the exposure and the bar count.
Buy-and-hold over the same bars is a row of its own; a ``regime = "all"`` row per strategy
gives the whole out-of-sample period. Bars without a label are ``"unlabelled"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from trading_pipeline.discovery.evaluate import metrics_from_returns
from trading_pipeline.discovery.results import StudyResult
from trading_pipeline.market.schema import bars_per_year

ALL = "all"
UNLABELLED = "unlabelled"
BENCHMARK = "buy_and_hold"
COLUMNS = (
    "strategy",
    "version",
    "series",
    "regime",
    "bars",
    "sharpe",
    "total_return",
    "max_drawdown",
    "trades",
    "exposure",
)


def _rows(
    strategy: str,
    version: int,
    series: str,
    regime: np.ndarray,
    returns: np.ndarray,
    in_position: np.ndarray,
    entries: np.ndarray,
    bpy: float,
) -> list[dict[str, object]]:
    out = []
    groups = [(ALL, np.ones(returns.size, dtype=bool))]
    groups += [(str(g), regime == g) for g in sorted(set(regime.tolist()))]
    for name, mask in groups:
        m = metrics_from_returns(
            returns[mask],
            bars_per_year=bpy,
            in_position=in_position[mask],
            entries=entries[mask],
        )
        out.append(
            {
                "strategy": strategy,
                "version": version,
                "series": series,
                "regime": name,
                "bars": int(m["bars"]),
                "sharpe": m["sharpe"],
                "total_return": m["total_return"],
                "max_drawdown": m["max_drawdown"],
                "trades": int(m["trades"]),
                "exposure": m["exposure"],
            }
        )
    return out


def _labels_for(open_time: pl.Series, labels: pl.DataFrame) -> np.ndarray:
    frame = pl.DataFrame({"open_time": open_time})
    lab = labels.select("open_time", pl.col("regime").cast(pl.String))
    joined = frame.join(lab.unique("open_time", keep="last"), on="open_time", how="left")
    return joined["regime"].fill_null(UNLABELLED).to_numpy().astype(str)


def performance_matrix(
    results: Sequence[StudyResult],
    regimes: Mapping[str, pl.DataFrame] | pl.DataFrame,
) -> pl.DataFrame:
    """One row per (strategy, series, regime), buy-and-hold included once per series.

    ``regimes`` maps a series key to its labels (``open_time``, ``regime``); a single frame
    is used for every series.
    """
    rows: list[dict[str, object]] = []
    benchmarked: set[str] = set()
    for res in results:
        series = res.spec.series
        labels = regimes if isinstance(regimes, pl.DataFrame) else regimes.get(series)
        if labels is None:
            regime = np.full(res.returns.size, UNLABELLED)
        else:
            regime = _labels_for(res.open_time, labels)
        bpy = bars_per_year(res.spec.interval)
        rows += _rows(
            res.spec.family,
            res.spec.family_version,
            series,
            regime,
            res.returns,
            res.in_position,
            res.entries,
            bpy,
        )
        if series not in benchmarked:
            benchmarked.add(series)
            rows += _rows(
                BENCHMARK,
                1,
                series,
                regime,
                res.bh_returns,
                res.bh_in_position,
                res.bh_entries,
                bpy,
            )
    if not rows:
        return pl.DataFrame(schema={c: pl.String for c in COLUMNS})
    return pl.DataFrame(rows).select(COLUMNS).sort("series", "strategy", "regime")


def pivot(matrix: pl.DataFrame, metric: str = "sharpe") -> pl.DataFrame:
    """``strategy`` (and series) rows × regime columns of one metric (for tables, heatmaps)."""
    return matrix.pivot(on="regime", index=["series", "strategy"], values=metric).sort(
        "series", "strategy"
    )
