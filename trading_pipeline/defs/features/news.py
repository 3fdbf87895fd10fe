"""``news_sentiment``: news and social posts, scored and stored per UTC day.

One run reads every configured source once (``news_source``: ``TP_NEWS_FEEDS``,
``TP_SOCIAL_FILES``), then, for each day partition of the run, merges that day's items into its
stored files (``news/<items|hourly|daily>/day=…``; a feed forgets old entries, the store does
not). Each day gets its own metadata: the fetch's counts (read, malformed, duplicates, missing
timestamps, non-English, scored), the items of the day, the hourly bars that can use them
(availability rule in :mod:`trading_pipeline.news.aggregate`), a per-coin table and a chart.
``selector_training_set`` reads every stored day.
"""

from datetime import date, timedelta
from typing import Any

import dagster as dg
import httpx
import polars as pl

from trading_pipeline.defs.features.resources import NewsSource
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.tables import image_md, table, tidy
from trading_pipeline.defs.versions import DATA, source_version
from trading_pipeline.news.aggregate import aggregate, window_stats
from trading_pipeline.news.chart import day_chart_png
from trading_pipeline.news.sources import collect
from trading_pipeline.news.store import read_day, write_day
from trading_pipeline.retrying import RetryPolicy

FIRST_DAY = "2024-01-01"
news_days = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=1)
NEWS_VERSION = source_version(
    __name__,
    "trading_pipeline.news.sources",
    "trading_pipeline.news.score",
    "trading_pipeline.news.coins",
    "trading_pipeline.news.aggregate",
    "trading_pipeline.news.store",
)
COUNT_DESCRIPTIONS = {
    "items": "items published that hour/day (any language)",
    "scored": "English items scored by VADER",
    "compound_mean": "mean VADER compound of the scored items (-1 .. 1; 0 when none)",
    "pos_share": "share of scored items with compound >= 0.05",
    "neg_share": "share of scored items with compound <= -0.05",
}


@dg.asset(
    partitions_def=news_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="features",
    kinds={"polars", "parquet"},
    code_version=NEWS_VERSION,
    owners=[DATA],
)
def news_sentiment(
    context: dg.AssetExecutionContext, news_source: NewsSource, lake: DataLake
) -> dg.MaterializeResult:
    """News and social posts scored by VADER per coin, aggregated per UTC hour and day;
    usable only by bars that open strictly after each item's publication time."""
    if not news_source.feeds and not news_source.social_files:
        raise dg.Failure(
            description="news_sentiment: no sources (set TP_NEWS_FEEDS and/or TP_SOCIAL_FILES)"
        )
    with httpx.Client(timeout=news_source.timeout_seconds, follow_redirects=True) as client:
        items, counts = collect(
            news_source.feeds,
            news_source.social_files,
            client=client,
            policy=RetryPolicy(attempts=max(1, news_source.attempts), base_s=0.5, max_s=4.0),
        )
    for line in counts.errors:
        context.log.warning(f"news source failed: {line}")
    fetch = {k: v for k, v in counts.as_dict().items() if k != "errors"}
    context.log.info(f"news: {fetch}")
    days = sorted(date.fromisoformat(k) for k in context.partition_keys)
    stored_total = 0
    for day in days:
        merged, new = write_day(lake.layout, day, items)
        stored_total += merged.height
        context.add_asset_metadata(
            tidy(_day_metadata(lake, day, merged, new, fetch)), partition_key=day.isoformat()
        )
    return dg.MaterializeResult(
        metadata=tidy(
            {
                "partitions": len(days),
                "sources": counts.sources,
                "sources_failed": counts.sources_failed,
                "items_fetched": counts.kept,
                "items_stored_in_run_days": stored_total,
                "errors": "\n".join(counts.errors) or "none",
            }
        )
    )


def _day_metadata(
    lake: DataLake, day: date, items: pl.DataFrame, new: int, fetch: dict[str, Any]
) -> dict[str, Any]:
    """One day's metadata: the fetch's counts, the day's items, the bars that see them, the
    per-coin table and the chart."""
    hourly = aggregate(items, "1h")
    daily = aggregate(items, "1d")
    before = read_day(lake.layout, day - timedelta(days=1))
    window = items if before is None else pl.concat([before, items])
    bars = pl.datetime_range(
        pl.datetime(day.year, day.month, day.day, time_zone="UTC"),
        pl.datetime(day.year, day.month, day.day, time_zone="UTC") + pl.duration(hours=23),
        "1h",
        eager=True,
    ).alias("open_time")
    _, seen = window_stats(window, bars)
    scored = int(items.get_column("compound").is_not_null().sum()) if items.height else 0
    out: dict[str, Any] = {
        **{f"fetch_{k}": v for k, v in fetch.items()},
        "day_items": items.height,
        "day_items_new": new,
        "day_scored": scored,
        "day_non_english": items.height - scored,
        "hourly_bars_with_news": int((seen > 0).sum()),
        "path": dg.MetadataValue.path(str(lake.layout.news_path("items", day))),
        "per_coin": table(
            daily.drop("day"),
            ["coin", "items", "scored", "compound_mean", "pos_share", "neg_share"],
            descriptions=COUNT_DESCRIPTIONS,
        ),
    }
    if hourly.height:
        out["chart"] = image_md(day_chart_png(hourly, day), "news sentiment per hour")
    return out
