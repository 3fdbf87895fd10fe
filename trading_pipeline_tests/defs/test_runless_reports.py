"""Months written outside a run are recorded in the instance of ``DAGSTER_HOME``: ``import
freqtrade`` → ``history/klines`` partitions (materialization + the four checks per month),
``venue fetch`` → ``venues/venue_candles`` partitions. A klines run over imported months
keeps the files and says so per month."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._core.storage.event_log.base import PartitionKeyFilter
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from trading_pipeline.cli import main
from trading_pipeline.defs.history.assets import kline_csv, klines, raw_zips
from trading_pipeline.defs.history.checks import MONTH_CHECKS
from trading_pipeline.defs.history.partitions import series_month_key
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.history.runless import open_instance
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.venues.assets import venue_candles
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.coinbase import running_fake_coinbase
from trading_pipeline_tests.history.test_importer import candles, write_feather

pytestmark = pytest.mark.slow  # a Dagster instance (and a fake venue)

BTC = Series("spot", "BTCUSDT", "1h")
MONTHS = ("2024-01-01", "2024-02-01", "2024-03-01")
HOURS = (31 + 29 + 31) * 24


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    return folder


def _materializations(instance: dg.DagsterInstance, key: dg.AssetKey) -> list[dg.EventLogRecord]:
    return list(
        instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1000).records
    )


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> dict:
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records[0]
    return dict(record.asset_materialization.metadata)  # type: ignore[union-attr]


def test_import_freqtrade_records_its_months_and_checks_in_the_instance(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "user_data" / "binance"
    write_feather(
        src / "BTC_USDT-1h.feather", candles(HOURS, start=datetime(2024, 1, 1, tzinfo=UTC))
    )
    data_dir = tmp_path / "data"
    assert main(["import", "freqtrade", str(src), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert (
        f"recorded 3 month(s) as materializations (12 check results) in the Dagster instance at {home}"
        in out
    )

    layout = HistoryLayout(data_dir / "history")
    keys = [str(series_month_key(BTC.key, m)) for m in MONTHS]
    with open_instance(home) as instance:
        assert instance.has_dynamic_partition("series", BTC.key)  # the series was registered
        assert set(instance.get_materialized_partitions(klines.key)) == set(keys)
        records = _materializations(instance, klines.key)
        assert len(records) == 3 and all(r.run_id == "" for r in records)  # runless
        for key, (year, month) in zip(keys, [(2024, 1), (2024, 2), (2024, 3)], strict=True):
            meta = _latest(instance, klines.key, key)
            path = layout.parquet_path(BTC, year, month)
            assert meta["status"].value == "imported"
            assert meta["source"].value == "freqtrade:BTC_USDT-1h.feather"
            assert meta["rows"].value == pl.read_parquet(path).height
            assert meta["sha256"].value == sha256_file(path)
            for check in MONTH_CHECKS:
                key_ = next(k for k in klines_check_keys() if k.name == check.name)
                [record] = instance.event_log_storage.get_asset_check_execution_history(
                    key_, limit=1, partition_filter=PartitionKeyFilter(key=key)
                )
                assert record.status.value == "SUCCEEDED"

    # importing the same file again writes nothing and records nothing
    assert main(["import", "freqtrade", str(src), "--data-dir", str(data_dir)]) == 0
    assert "recorded" not in capsys.readouterr().out
    with open_instance(home) as instance:
        assert len(_materializations(instance, klines.key)) == 3


def klines_check_keys() -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(klines.key, c.name) for c in MONTH_CHECKS]


def test_a_klines_run_over_imported_months_keeps_them_and_says_so(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trading_pipeline.defs.history.checks import (
        bars_on_interval_grid,
        no_duplicate_bars,
        no_gaps,
        ohlc_consistent,
    )

    src = tmp_path / "user_data" / "binance"
    write_feather(
        src / "BTC_USDT-1h.feather", candles(HOURS, start=datetime(2024, 1, 1, tzinfo=UTC))
    )
    data_dir = tmp_path / "data"
    assert main(["import", "freqtrade", str(src), "--data-dir", str(data_dir)]) == 0
    layout = HistoryLayout(data_dir / "history")
    before = {m: sha256_file(layout.parquet_path(BTC, 2024, i + 1)) for i, m in enumerate(MONTHS)}
    lake = DataLake(data_dir=str(data_dir))
    source = HistorySource(
        vision_url="http://127.0.0.1:9", listing_url="http://127.0.0.1:9", universe=["BTCUSDT"]
    )
    with open_instance(home) as instance:
        result = dg.materialize(
            [
                raw_zips,
                kline_csv,
                klines,
                no_duplicate_bars,
                ohlc_consistent,
                bars_on_interval_grid,
                no_gaps,
            ],
            selection=dg.AssetSelection.assets(klines)
            | dg.AssetSelection.checks_for_assets(klines),
            instance=instance,
            resources={"lake": lake, "history_source": source},
            tags={
                ASSET_PARTITION_RANGE_START_TAG: str(series_month_key(BTC.key, MONTHS[0])),
                ASSET_PARTITION_RANGE_END_TAG: str(series_month_key(BTC.key, MONTHS[-1])),
            },
        )
        assert result.success
        for i, month in enumerate(MONTHS):
            meta = _latest(instance, klines.key, str(series_month_key(BTC.key, month)))
            assert meta["status"].value == "kept"  # not built: no Binance Vision file
            assert meta["source"].value.startswith("freqtrade:")
            assert meta["sha256"].value == before[month]
            assert sha256_file(layout.parquet_path(BTC, 2024, i + 1)) == before[month]


def test_venue_fetch_records_the_months_it_wrote(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = make_bars(HOURS, seed=11, start=datetime(2024, 1, 1, tzinfo=UTC), price=42_000.0)
    with running_fake_coinbase({"BTC-USD": bars}) as srv:
        args = [
            "venue", "fetch", "--venue", "coinbase", "--symbol", "BTC-USD", "--interval", "1h",
            "--from", "2024-01-01", "--to", "2024-03-31", "--data-dir", str(tmp_path / "data"),
            "--base-url", srv.url,
        ]  # fmt: skip
        assert main(args) == 0
        assert "recorded 3 month(s) as materializations" in capsys.readouterr().out
        assert main(args) == 0  # complete months are skipped: nothing new to record
        assert "recorded" not in capsys.readouterr().out
    series = "coinbase-BTCUSD-1h"
    with open_instance(home) as instance:
        keys = {str(dg.MultiPartitionKey({"series": series, "month": m})) for m in MONTHS}
        assert set(instance.get_materialized_partitions(venue_candles.key)) == keys
        assert len(_materializations(instance, venue_candles.key)) == 3
        meta = _latest(
            instance,
            venue_candles.key,
            str(dg.MultiPartitionKey({"series": series, "month": "2024-02-01"})),
        )
        assert meta["rows"].value == 29 * 24 and meta["status"].value == "written"
        assert meta["source"].value == "trading-pipeline venue fetch"


def test_without_dagster_home_nothing_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    src = tmp_path / "binance"
    write_feather(src / "BNB_USDT-1h.feather", candles(48))
    assert main(["import", "freqtrade", str(src), "--data-dir", str(tmp_path / "data")]) == 0
    assert "recorded" not in capsys.readouterr().out
