"""The strategy × regime performance matrix, built from out-of-sample bars only.

Each tuned strategy's concatenated test-window bars (see :mod:`.results`) are labelled with a
regime (any causal labeller's ``open_time, regime`` frame) and split by regime: per (strategy,
series, regime) the annualised Sharpe ratio, the compounded return and max drawdown of those
bars chained together, the positions opened, the exposure and the bar count. Buy-and-hold over
the same bars is a row of its own; a ``regime = "all"`` row per strategy gives the whole
out-of-sample period. Bars without a label are ``"unlabelled"``.

**A label governs the next bar.** A labeller's label at bar ``t`` is computed from bars up to
``t``'s close, so it is known only once bar ``t``'s return is already made: bar ``t``'s return
is filed under the label of bar ``t - 1`` (the previous row of the labels frame), never under
its own.

**Cells are judged before one is called a regime's best.** Every strategy cell carries the
deflated Sharpe probability of its per-bar Sharpe ratio against the strategies compared in the
same (series, regime) — their count and the variance of their per-bar Sharpe ratios there —
and a ``status``: ``insufficient`` below :class:`CellRule`'s minimum bars or trades (by default
500 bars and 10 positions opened), else ``ok``; buy-and-hold rows are ``benchmark``.
:func:`~.catalog.best_per_regime` chooses among ``ok`` cells only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from trading_pipeline.discovery.evaluate import metrics_from_returns
from trading_pipeline.discovery.results import StudyResult
from trading_pipeline.discovery.robustness import (
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe,
)
from trading_pipeline.market.schema import bars_per_year

ALL = "all"
UNLABELLED = "unlabelled"
BENCHMARK = "buy_and_hold"
OK = "ok"
INSUFFICIENT = "insufficient"
BENCHMARK_STATUS = "benchmark"
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
    "dsr_probability",
    "status",
)


@dataclass(frozen=True)
class CellRule:
    """The least a (strategy, regime) cell must rest on to be chosen as a regime's best."""

    min_bars: int = 500
    min_trades: int = 10


def _rows(
    strategy: str,
    version: int,
    series: str,
    regime: np.ndarray,
    returns: np.ndarray,
    in_position: np.ndarray,
    entries: np.ndarray,
    bpy: float,
) -> list[dict[str, Any]]:
    out = []
    groups = [(ALL, np.ones(returns.size, dtype=bool))]
    groups += [(str(g), regime == g) for g in sorted(set(regime.tolist()))]
    for name, mask in groups:
        r = returns[mask]
        m = metrics_from_returns(
            r,
            bars_per_year=bpy,
            in_position=in_position[mask],
            entries=entries[mask],
        )
        skew = float(stats.skew(r)) if r.size > 2 else 0.0
        kurt = float(stats.kurtosis(r, fisher=False)) if r.size > 3 else 3.0
        if not (math.isfinite(skew) and math.isfinite(kurt)):
            skew, kurt = 0.0, 3.0
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
                "_sr": sharpe(r),
                "_skew": skew,
                "_kurt": kurt,
            }
        )
    return out


def _labels_for(open_time: pl.Series, labels: pl.DataFrame) -> np.ndarray:
    """The regime that governs each bar's return: the label of the labels frame's previous row
    (computed at that bar's close, so known before this bar trades)."""
    frame = pl.DataFrame({"open_time": open_time})
    lab = (
        labels.select("open_time", pl.col("regime").cast(pl.String))
        .unique("open_time", keep="last")
        .sort("open_time")
        .with_columns(pl.col("regime").shift(1))
    )
    joined = frame.join(lab, on="open_time", how="left")
    return joined["regime"].fill_null(UNLABELLED).to_numpy().astype(str)


def _judge(rows: list[dict[str, Any]], rule: CellRule) -> None:
    """Add each row's ``dsr_probability`` and ``status`` (see the module docstring)."""
    groups: dict[tuple[object, object], list[dict[str, Any]]] = {}
    for row in rows:
        if row["strategy"] == BENCHMARK:
            row["dsr_probability"] = None
            row["status"] = BENCHMARK_STATUS
        else:
            groups.setdefault((row["series"], row["regime"]), []).append(row)
    for cells in groups.values():
        srs = np.array([float(c["_sr"]) for c in cells])
        variance = float(np.var(srs, ddof=1)) if srs.size > 1 else 0.0
        bench = expected_max_sharpe(variance, srs.size)
        for c in cells:
            bars, trades = int(c["bars"]), int(c["trades"])
            c["dsr_probability"] = probabilistic_sharpe_ratio(
                float(c["_sr"]),
                n=bars,
                skew=float(c["_skew"]),
                kurtosis=float(c["_kurt"]),
                sr_benchmark=bench,
            )
            enough = bars >= rule.min_bars and trades >= rule.min_trades
            c["status"] = OK if enough else INSUFFICIENT


def performance_matrix(
    results: Sequence[StudyResult],
    regimes: Mapping[str, pl.DataFrame] | pl.DataFrame,
    *,
    rule: CellRule | None = None,
) -> pl.DataFrame:
    """One row per (strategy, series, regime), buy-and-hold included once per series.

    ``regimes`` maps a series key to its labels (``open_time``, ``regime``: each bar's label
    as of its close); a single frame is used for every series. ``rule`` sets the minimum bars
    and trades of a cell that may be a regime's best.
    """
    rows: list[dict[str, Any]] = []
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
    _judge(rows, rule or CellRule())
    return pl.DataFrame(rows).select(COLUMNS).sort("series", "strategy", "regime")


def pivot(matrix: pl.DataFrame, metric: str = "sharpe") -> pl.DataFrame:
    """``strategy`` (and series) rows × regime columns of one metric (for tables, heatmaps)."""
    return matrix.pivot(on="regime", index=["series", "strategy"], values=metric).sort(
        "series", "strategy"
    )
