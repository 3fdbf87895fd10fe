"""``news_sentiment`` materialized in-process for a day partition against the local news server:
the fetch's counts, the day's items and the bars that may use them, the per-coin table and the
chart in the partition's metadata; the files under the data layout; no sources is a failure."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import polars as pl
import pytest

from trading_pipeline.defs.features.news import news_sentiment
from trading_pipeline.defs.features.resources import NewsSource
from trading_pipeline.defs.resources import DataLake
from trading_pipeline_tests.defs.readable import problems
from trading_pipeline_tests.fakes.news import sample_day, serve_news, serve_sample

pytestmark = pytest.mark.slow  # a Dagster instance run

DAY = datetime(2024, 3, 5, tzinfo=UTC)


def test_one_day_against_the_fake_server(instance: dg.DagsterInstance, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sample = sample_day(DAY)
    lake = DataLake(data_dir=str(tmp_path / "data"))
    with serve_news() as fake:
        feeds, social = serve_sample(fake, sample)
        result = dg.materialize(
            [news_sentiment],
            partition_key="2024-03-05",
            instance=instance,
            resources={
                "lake": lake,
                "news_source": NewsSource(feeds=feeds, social_files=social, attempts=3),
            },
        )
    assert result.success
    meta = result.asset_materializations_for_node("news_sentiment")[0].metadata
    numbers = {k: v.value for k, v in meta.items() if isinstance(v, dg.IntMetadataValue)}
    print("news_sentiment metadata:", numbers)
    assert numbers["fetch_entries_read"] == sample.read
    assert numbers["fetch_duplicates"] == sample.duplicates
    assert numbers["fetch_missing_timestamp"] == sample.missing_timestamp
    assert numbers["fetch_malformed_rows"] == sample.malformed_rows
    assert numbers["fetch_sources_failed"] == sample.sources_failed
    assert numbers["fetch_non_english"] == sample.non_english
    assert numbers["day_items"] == sample.kept and numbers["day_scored"] == sample.scored
    # the first item is at 01:00: the 00:00 and 01:00 bars see nothing, 02:00 … 23:00 do
    assert numbers["hourly_bars_with_news"] == 22
    assert "data:image/png;base64," in str(meta["chart"].value)
    coins = {r.data["coin"]: r.data for r in meta["per_coin"].value.records}
    assert coins["ALL"]["items"] == sample.kept and coins["BTC"]["items"] == 6
    assert problems(meta) == []
    layout = lake.layout
    items = pl.read_parquet(layout.news_path("items", DAY.date()))
    hourly = pl.read_parquet(layout.news_path("hourly", DAY.date()))
    assert items.height == sample.kept
    assert hourly.filter(pl.col("coin") == "ALL")["items"].sum() == sample.kept


def test_no_sources_is_a_failure(instance: dg.DagsterInstance, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = dg.materialize(
        [news_sentiment],
        partition_key="2024-03-05",
        instance=instance,
        resources={"lake": DataLake(data_dir=str(tmp_path)), "news_source": NewsSource()},
        raise_on_error=False,
    )
    assert not result.success
    assert not (tmp_path / "news").exists()
