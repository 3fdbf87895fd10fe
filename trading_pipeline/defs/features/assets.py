"""Indicator features and regime periods per series and month, market correlation per month,
and the Fear & Greed index.

Per-month assets read the month's klines plus the warm-up bars before it from the history
store, so a new month recomputes only its own partition. Each writes Parquet under the feature
store; each month of a run (a ranged run covers many) gets its own metadata, chart included.
"""

import math
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from trading_pipeline.defs.features.resources import FearGreedSource
from trading_pipeline.defs.history.assets import klines
from trading_pipeline.defs.history.metadata import add_month_metadata
from trading_pipeline.defs.history.partitions import month_partitions, series_month, split_key
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.tables import image_md, table
from trading_pipeline.defs.versions import DATA, source_version
from trading_pipeline.fsutil import atomic_path
from trading_pipeline.history.layout import Series
from trading_pipeline.market.candles import CandleError, load_store
from trading_pipeline.market.features import cross_asset_features, month_bounds, window_features
from trading_pipeline.market.indicators import feature_names, warmup_bars
from trading_pipeline.market.schema import INTERVAL_MS, bars_per_year
from trading_pipeline.regimes import get_labeller, segment, share
from trading_pipeline.regimes.current import HISTORY_DAYS
from trading_pipeline.regimes.plot import regime_chart_png

GROUP = "features"
BACKFILL = dg.BackfillPolicy.single_run()
CORRELATION_WINDOW = 168  # bars (a week of hours)
LABELLER = "rules"
OWNERS = [DATA]
FEATURES_VERSION = source_version(
    __name__, "trading_pipeline.market.features", "trading_pipeline.market.indicators"
)
REGIMES_VERSION = source_version(
    __name__, "trading_pipeline.regimes.rules", "trading_pipeline.regimes.periods"
)
CORRELATION_VERSION = source_version(__name__, "trading_pipeline.market.features")
FEAR_GREED_VERSION = source_version(__name__, "trading_pipeline.market.sentiment")


def _write(df: pl.DataFrame, path: object) -> None:
    with atomic_path(path) as tmp:  # type: ignore[arg-type]
        df.write_parquet(tmp)


def _load_with_history(
    lake: DataLake, series: Series, year: int, month: int, warm_bars: int
) -> pl.DataFrame | None:
    """The month's bars plus about ``warm_bars`` before it, or None when the month is empty."""
    start, end = month_bounds(year, month)
    per_day = 86_400_000 / INTERVAL_MS[series.interval]
    days = math.ceil(warm_bars / per_day) + 2
    try:
        bars = load_store(
            lake.layout.history_dir,
            market=series.market,
            symbol=series.symbol,
            interval=series.interval,
            start=(start - timedelta(days=days)).date(),
            end=(end - timedelta(days=1)).date(),
        )
    except CandleError:
        return None
    if bars.filter(pl.col("open_time") >= start).height == 0:
        return None
    return bars


def _month_label(key: str) -> str:
    series, year, month = split_key(key)
    return f"{series.key} {year:04d}-{month:02d}"


@dg.asset(
    partitions_def=series_month,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"polars", "parquet", "talib"},
    deps=[klines],
    code_version=FEATURES_VERSION,
    owners=OWNERS,
)
def features(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Every indicator output for the month's bars, warmed up on the bars before the month."""
    warm = warmup_bars()
    per_month: dict[str, dict[str, Any]] = {}
    for key in context.partition_keys:
        series, year, month = split_key(key)
        bars = _load_with_history(lake, series, year, month, warm)
        if bars is None:
            context.log.info(f"{_month_label(key)}: no klines, nothing to compute")
            per_month[key] = {"status": "no klines", "rows": 0}
            continue
        start, end = month_bounds(year, month)
        feats = window_features(bars, start, end)
        path = lake.layout.feature_path(
            "indicators", f"series={series.key}", f"month={year:04d}-{month:02d}"
        )
        _write(feats, path)
        before = bars.filter(pl.col("open_time") < start).height
        per_month[key] = {
            "status": "computed",
            "rows": feats.height,
            "warmup_bars_used": min(before, warm),
            "path": dg.MetadataValue.path(str(path)),
        }
    add_month_metadata(context, per_month)
    return dg.MaterializeResult(
        metadata={
            "partitions": len(per_month),
            "indicator_outputs": len(feature_names()),
            "warmup_bars_needed": warm,
        }
    )


@dg.asset(
    partitions_def=series_month,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[klines],
    code_version=REGIMES_VERSION,
    owners=OWNERS,
)
def regime_periods(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Regime labels (rules labeller) of the month's bars and their periods, with a chart."""
    labeller = get_labeller(LABELLER)
    per_month: dict[str, dict[str, Any]] = {}
    for key in context.partition_keys:
        series, year, month = split_key(key)
        per_day = 86_400_000 / INTERVAL_MS[series.interval]
        bars = _load_with_history(lake, series, year, month, int(HISTORY_DAYS[LABELLER] * per_day))
        if bars is None:
            per_month[key] = {"status": "no klines", "bars": 0, "periods_count": 0}
            continue
        start, _ = month_bounds(year, month)
        labels = labeller.label(bars).filter(pl.col("open_time") >= start)
        inside = bars.filter(pl.col("open_time") >= start)
        periods = segment(labels, inside, bars_per_year=bars_per_year(series.interval))
        month_dir = (f"series={series.key}", f"month={year:04d}-{month:02d}")
        _write(labels, lake.layout.feature_path("regime_labels", *month_dir))
        _write(periods, lake.layout.feature_path("regime_periods", *month_dir))
        per_month[key] = _regime_month(_month_label(key), inside, labels, periods)
    add_month_metadata(context, per_month)
    return dg.MaterializeResult(metadata={"partitions": len(per_month), "labeller": LABELLER})


def _regime_month(
    title: str, inside: pl.DataFrame, labels: pl.DataFrame, periods: pl.DataFrame
) -> dict[str, Any]:
    """One month's regimes as a person reads them: share, periods and the month's own chart."""
    shares = share(labels)
    png = regime_chart_png(inside, periods, title=f"{title} regimes ({LABELLER})")
    return {
        "status": "computed",
        "bars": labels.height,
        "periods_count": periods.height,
        "main_regime": max(shares.items(), key=lambda kv: kv[1])[0],
        "chart": image_md(png, "regimes"),
        "share": table(
            [{"regime": r, "share": s} for r, s in shares.items()],
            ["regime", "share"],
            descriptions={"share": "fraction of the month's bars in the regime"},
        ),
        "periods": table(
            periods,
            ["start", "end", "regime", "bars", "return", "volatility"],
            descriptions=PERIOD_DESCRIPTIONS,
        ),
    }


PERIOD_DESCRIPTIONS = {
    "start": "first bar of the period (open time, UTC)",
    "end": "last bar of the period (open time, UTC)",
    "return": "close-to-close return over the period (0.05 = +5%)",
    "volatility": "annualised volatility of the bar returns",
}


@dg.asset(
    partitions_def=month_partitions,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[klines],
    code_version=CORRELATION_VERSION,
    owners=OWNERS,
)
def market_correlation(
    context: dg.AssetExecutionContext, lake: DataLake, history_source: HistorySource
) -> dg.MaterializeResult:
    """Rolling correlation, breadth and BTC dominance across the universe, per month."""
    universe = history_source.series()
    per_month: dict[str, dict[str, Any]] = {}
    for key in context.partition_keys:
        day = datetime.fromisoformat(key)
        year, month = day.year, day.month
        start, end = month_bounds(year, month)
        closes = {}
        for s in universe:
            bars = _load_with_history(lake, s, year, month, CORRELATION_WINDOW + 200)
            if bars is not None:
                closes[s.symbol] = bars
        if len(closes) < 2:
            context.log.info(f"{key}: fewer than two series with klines, nothing to compute")
            per_month[key] = {"status": "fewer than two series", "symbols": len(closes), "rows": 0}
            continue
        frame = cross_asset_features(closes, window=CORRELATION_WINDOW)
        frame = frame.filter((pl.col("open_time") >= start) & (pl.col("open_time") < end))
        _write(
            frame, lake.layout.feature_path("market_correlation", f"month={year:04d}-{month:02d}")
        )
        corr_cols = [c for c in frame.columns if c.startswith("corr_")]
        mean_corr = frame.select(pl.mean_horizontal(corr_cols).mean()).item()
        breadth = frame.get_column("breadth_up").mean()
        per_month[key] = {
            "status": "computed",
            "symbols": len(closes),
            "rows": frame.height,
            "mean_pairwise_corr": _float_or_none(mean_corr),
            "mean_breadth_up": _float_or_none(breadth),
        }
    add_month_metadata(context, per_month)
    return dg.MaterializeResult(
        metadata={
            "partitions": len(per_month),
            "universe": ", ".join(s.symbol for s in universe),
            "window_bars": CORRELATION_WINDOW,
        }
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


@dg.asset(
    group_name=GROUP, kinds={"polars", "parquet"}, code_version=FEAR_GREED_VERSION, owners=OWNERS
)
def fear_greed(
    context: dg.AssetExecutionContext,
    fear_greed_source: FearGreedSource,
    lake: DataLake,
) -> dg.MaterializeResult:
    """The Crypto Fear & Greed index, one value per day, from alternative.me."""
    import httpx

    from trading_pipeline.market.sentiment import fetch_fear_greed

    with httpx.Client(timeout=fear_greed_source.timeout_seconds) as client:
        fng = fetch_fear_greed(client, fear_greed_source.base_url)
    path = lake.layout.feature_path("fear_greed")
    _write(fng, path)
    days = fng.get_column("published_at").to_list()
    span = (days[-1] - days[0]).days + 1 if days else 0
    latest = fng.tail(1).row(0, named=True) if fng.height else None
    context.log.info(f"fear & greed: {fng.height} days")
    return dg.MaterializeResult(
        metadata={
            "days": fng.height,
            "missing_days": span - fng.height,
            "first_day": str(days[0]) if days else "",
            "latest": f"{latest['value']} ({latest['classification']})" if latest else "",
            "path": dg.MetadataValue.path(str(path)),
        }
    )
