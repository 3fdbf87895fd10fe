"""The features assets, materialized in-process on a generated history store."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from pytest_httpserver import HTTPServer

from trading_pipeline.defs.features.assets import (
    fear_greed,
    features,
    market_correlation,
    regime_periods,
)
from trading_pipeline.defs.features.resources import FearGreedSource
from trading_pipeline.defs.history.partitions import series_month_key
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.market.features import month_bounds, month_features
from trading_pipeline.regimes import get_labeller
from trading_pipeline.regimes.synthetic import synthetic_bars
from trading_pipeline_tests.defs.conftest import BTC, ETH
from trading_pipeline_tests.defs.readable import problems
from trading_pipeline_tests.fakes.store import write_store

pytestmark = pytest.mark.slow  # Dagster instance runs


@pytest.fixture(scope="module")
def bars() -> dict[str, pl.DataFrame]:
    return {BTC.key: synthetic_bars(seed=1), ETH.key: synthetic_bars(seed=2)}


@pytest.fixture(scope="module")
def data_dir(bars: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for series in (BTC, ETH):
        write_store(root / "history", series, bars[series.key])
    return root


def _resources(data_dir: Path, fng_url: str = "http://127.0.0.1:9") -> dict[str, object]:
    return {
        "lake": DataLake(data_dir=str(data_dir)),
        "history_source": HistorySource(
            vision_url="http://127.0.0.1:9",
            listing_url="http://127.0.0.1:9",
            universe=["BTCUSDT", "ETHUSDT"],
        ),
        "fear_greed_source": FearGreedSource(base_url=fng_url),
    }


def test_features_and_regimes_for_one_month(
    instance: dg.DagsterInstance, data_dir: Path, bars: dict[str, pl.DataFrame]
) -> None:
    key = series_month_key(BTC.key, "2021-03-01")
    result = dg.materialize(
        [features, regime_periods],
        partition_key=str(key),
        instance=instance,
        resources=_resources(data_dir),
    )
    assert result.success
    layout = DataLake(data_dir=str(data_dir)).layout
    got = pl.read_parquet(layout.feature_path("indicators", f"series={BTC.key}", "month=2021-03"))
    assert got.equals(month_features(bars[BTC.key], 2021, 3))
    # only the touched month was written
    written = list((layout.features_dir / "indicators").rglob("*.parquet"))
    assert [p.parent.name for p in written] == ["month=2021-03"]

    start, end = month_bounds(2021, 3)
    full = get_labeller("rules").label(bars[BTC.key])
    expected = full.filter((pl.col("open_time") >= start) & (pl.col("open_time") < end))
    labels = pl.read_parquet(
        layout.feature_path("regime_labels", f"series={BTC.key}", "month=2021-03")
    )
    assert labels.equals(expected)
    periods = pl.read_parquet(
        layout.feature_path("regime_periods", f"series={BTC.key}", "month=2021-03")
    )
    assert periods["bars"].sum() == labels.height

    meta = result.asset_materializations_for_node("regime_periods")[0].metadata
    chart = meta["chart"].value
    assert chart.startswith("![regimes](data:image/png;base64,")
    png = base64.b64decode(chart.split(",", 1)[1].rstrip(")"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    columns = [c.name for c in meta["periods"].schema.columns]  # type: ignore[attr-defined]
    assert columns[:3] == ["start", "end", "regime"]
    shares = {r.data["regime"]: r.data["share"] for r in meta["share"].records}  # type: ignore[attr-defined]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert problems(meta) == []
    fmeta = result.asset_materializations_for_node("features")[0].metadata
    assert fmeta["rows"].value == got.height and fmeta["indicator_outputs"].value >= 200


def test_market_correlation_month(instance: dg.DagsterInstance, data_dir: Path) -> None:
    result = dg.materialize(
        [market_correlation],
        partition_key="2021-02-01",
        instance=instance,
        resources=_resources(data_dir),
    )
    assert result.success
    frame = pl.read_parquet(
        DataLake(data_dir=str(data_dir)).layout.feature_path("market_correlation", "month=2021-02")
    )
    assert frame.height == 28 * 24
    assert frame["corr_BTCUSDT_ETHUSDT"].null_count() == 0  # warmed up on January's bars


def test_fear_greed_from_fake_server(
    instance: dg.DagsterInstance, data_dir: Path, httpserver: HTTPServer
) -> None:
    day0 = datetime(2024, 1, 1, tzinfo=UTC)
    data = [
        {
            "value": str(30 + i),
            "value_classification": "Fear",
            "timestamp": str(int((day0 + timedelta(days=i)).timestamp())),
        }
        for i in (4, 3, 1, 0)  # newest first, day 2 missing
    ]
    httpserver.expect_request("/fng/").respond_with_json(
        {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}}
    )
    result = dg.materialize(
        [fear_greed],
        instance=instance,
        resources=_resources(data_dir, httpserver.url_for("/").rstrip("/")),
    )
    assert result.success
    meta = result.asset_materializations_for_node("fear_greed")[0].metadata
    assert meta["days"].value == 4 and meta["missing_days"].value == 1
    stored = pl.read_parquet(DataLake(data_dir=str(data_dir)).layout.feature_path("fear_greed"))
    assert stored["value"].to_list() == [30, 31, 33, 34]


def test_a_ranged_run_gives_each_month_its_own_regimes_and_chart(
    instance: dg.DagsterInstance, data_dir: Path
) -> None:
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    first, last = (series_month_key(ETH.key, m) for m in ("2021-02-01", "2021-03-01"))
    result = dg.materialize(
        [features, regime_periods],
        instance=instance,
        resources=_resources(data_dir),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: str(first),
            ASSET_PARTITION_RANGE_END_TAG: str(last),
        },
    )
    assert result.success
    layout = DataLake(data_dir=str(data_dir)).layout
    charts = set()
    for key, month in ((first, "2021-02"), (last, "2021-03")):
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=regime_periods.key, asset_partitions=[str(key)]),
            limit=1,
        ).records[0]
        meta = record.asset_materialization.metadata  # type: ignore[union-attr]
        labels = pl.read_parquet(
            layout.feature_path("regime_labels", f"series={ETH.key}", f"month={month}")
        )
        assert meta["bars"].value == labels.height
        starts = [str(r.data["start"]) for r in meta["periods"].records]  # type: ignore[attr-defined]
        assert starts[0] == f"{month}-01"  # its own month's periods (midnight: the day alone)
        assert all(s.startswith(month) for s in starts)
        charts.add(meta["chart"].value)
        fmeta = (
            instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=features.key, asset_partitions=[str(key)]), limit=1
            )
            .records[0]
            .asset_materialization.metadata
        )  # type: ignore[union-attr]
        assert fmeta["path"].value.endswith(f"month={month}/data.parquet")
    assert len(charts) == 2  # two months, two charts
