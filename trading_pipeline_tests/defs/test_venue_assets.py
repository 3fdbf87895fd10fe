"""Venue assets in-process: candles by venue series × month against the fake Coinbase, the
daily schedule, and the Binance × Coinbase basis (synthetic, and on the real 2024–2026 overlap)."""

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.venues.arbitrage import arbitrage_study
from trading_pipeline.defs.venues.assets import basis_path, read_basis, venue_basis, venue_candles
from trading_pipeline.defs.venues.partitions import VENUE_SERIES, venue_month_key
from trading_pipeline.defs.venues.resources import VenueExchanges
from trading_pipeline.defs.venues.schedules import venue_candles_daily_schedule
from trading_pipeline.history.importer import import_freqtrade
from trading_pipeline.history.layout import HistoryLayout
from trading_pipeline.history.manifest import Manifest
from trading_pipeline.market.candles import load_store, read_candle_file
from trading_pipeline.market.schema import conform
from trading_pipeline.venues.exchange import make_exchange
from trading_pipeline.venues.ohlcv import VenueFetchRequest, run_venue_fetch
from trading_pipeline.venues.symbols import parse_symbol
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.coinbase import FakeCoinbase, running_fake_coinbase
from trading_pipeline_tests.fakes.store import write_store

pytestmark = pytest.mark.slow  # Dagster instance runs

START = datetime(2024, 1, 1, tzinfo=UTC)
HOURS = (31 + 29) * 24
CB = parse_symbol("coinbase", "BTC-USD")
BN = parse_symbol("binance", "BTCUSDT")


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    df = make_bars(HOURS, seed=5, start=START, price=42_000.0)
    return df.with_columns(pl.col("open", "high", "low", "close").round(2))


@pytest.fixture
def srv(bars: pl.DataFrame) -> Iterator[FakeCoinbase]:
    with running_fake_coinbase({"BTC-USD": bars}) as server:
        yield server


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def _store(tmp_path: Path) -> DataLake:
    return DataLake(data_dir=str(tmp_path / "data"))


def test_a_partition_fetches_its_month_through_ccxt_into_the_store(
    srv: FakeCoinbase, bars: pl.DataFrame, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    store = _store(tmp_path)
    resources = {"lake": store, "venues": VenueExchanges(coinbase_url=srv.url, rate_limit_ms=1)}
    key = venue_month_key("coinbase-BTCUSD-1h", "2024-02-01")
    result = dg.materialize(
        [venue_candles], partition_key=str(key), instance=instance, resources=resources
    )
    assert result.success
    meta = result.asset_materializations_for_node("venues__venue_candles")[0].metadata
    assert meta["rows"].value == 29 * 24 and meta["status"].value == "written"
    assert meta["requests"].value == 3  # 696 bars in 300-bar pages
    back = load_store(store.layout.history_dir, market="coinbase", symbol="BTCUSD", interval="1h")
    cols = ["open_time", "open", "high", "low", "close", "volume"]
    assert back.select(cols).equals(bars.slice(31 * 24).select(cols))
    assert Manifest(store.layout.history.manifest_path).get("venue/coinbase/BTC-USD/1h/2024-02")
    again = dg.materialize(
        [venue_candles], partition_key=str(key), instance=instance, resources=resources
    )
    meta = again.asset_materializations_for_node("venues__venue_candles")[0].metadata
    assert meta["status"].value == "complete" and meta["requests"].value == 0


def test_a_symbol_the_venue_does_not_list_fails_the_run_with_the_reason(
    srv: FakeCoinbase, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    resources = {"lake": _store(tmp_path), "venues": VenueExchanges(coinbase_url=srv.url)}
    key = venue_month_key("coinbase-ETHUSD-1h", "2024-02-01")
    result = dg.materialize(
        [venue_candles], partition_key=str(key), instance=instance, resources=resources,
        raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "ETH-USD is not listed on coinbase" in failure.message
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("when", "month"),
    [
        (datetime(2026, 11, 15, 4, 30, tzinfo=UTC), "2026-11-01"),
        (datetime(2026, 12, 1, 4, 30, tzinfo=UTC), "2026-11-01"),  # the 1st completes November
    ],
)
def test_the_daily_schedule_asks_for_yesterdays_month_of_every_series(
    instance: dg.DagsterInstance, when: datetime, month: str
) -> None:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
    requests = venue_candles_daily_schedule(context)
    assert isinstance(requests, list)
    got = sorted(
        (r.partition_key.keys_by_dimension["series"], r.partition_key.keys_by_dimension["month"])
        for r in requests
        if isinstance(r.partition_key, dg.MultiPartitionKey)
    )
    assert got == sorted((s, month) for s in VENUE_SERIES)


def _put(layout: HistoryLayout, df: pl.DataFrame, market: str, symbol: str) -> None:
    from trading_pipeline.history.layout import Series

    write_store(layout.root, Series(market, symbol, "1h"), conform(df))


def test_basis_excludes_bars_missing_on_either_side_and_measures_the_spread(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    store = _store(tmp_path)
    binance = make_bars(744, seed=1, start=START, price=40_000.0)
    coinbase = binance.with_columns(  # Coinbase 5 bps dearer: the whole bar
        pl.col("open", "high", "low", "close") * 1.0005
    )
    _put(store.layout.history, binance.filter(pl.int_range(pl.len()) != 100), "spot", "BTCUSDT")
    _put(
        store.layout.history,
        coinbase.filter(~pl.int_range(pl.len()).is_in([200, 201])),
        "coinbase",
        "BTCUSD",
    )
    result = dg.materialize([venue_basis], instance=instance, resources={"lake": store})
    assert result.success
    meta = result.asset_materializations_for_node("venues__venue_basis")[0].metadata
    assert meta["overlap_bars"].value == 744 - 3
    assert meta["excluded_a_only"].value == 2 and meta["excluded_b_only"].value == 1
    assert meta["median_abs_basis_bps"].value == pytest.approx(5.0, abs=1e-6)
    assert "USDT vs USD" in str(meta["quote_difference"].value)
    out = read_basis(basis_path(store.layout.venue_basis_dir, BN, CB, "1h"))
    assert out.height == 741 and out["basis_bps"].min() == pytest.approx(5.0, abs=1e-6)
    assert {"a_open", "b_open", "a_close", "b_close"} <= set(out.columns)

    # the arbitrage study reads that basis: 5 bps never pays Binance + Coinbase fees
    study = dg.materialize(
        [arbitrage_study], instance=instance, resources={"lake": store},
        run_config={"ops": {"venues__arbitrage_study": {"config": {"folds": 2}}}},
    )  # fmt: skip
    assert study.success
    smeta = study.asset_materializations_for_node("venues__arbitrage_study")[0].metadata
    assert smeta["bars"].value == 741 and smeta["net_arb_pnl"].value <= 0.0
    assert Path(str(smeta["report"].value)).is_file()


def test_basis_refuses_usdt_against_usd_unless_the_config_allows_it(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    store = _store(tmp_path)
    result = dg.materialize(
        [venue_basis], instance=instance, resources={"lake": store}, raise_on_error=False,
        run_config={"ops": {"venues__venue_basis": {"config": {"equate_quotes": ""}}}},
    )  # fmt: skip
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None and "differ in quote currency (USDT vs USD)" in error.message


def test_real_overlap_binance_against_coinbase_through_the_fake(
    real_data: Path, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    store = _store(tmp_path)
    layout = store.layout.history
    # Binance BTC/USDT 1h (freqtrade, Roshan) imported into the store as market=spot
    freqtrade = tmp_path / "freqtrade"
    freqtrade.mkdir()
    shutil.copy(
        real_data / "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather",
        freqtrade,
    )
    import_freqtrade(freqtrade, layout=layout, exchange="binance")
    # Coinbase BTC-USD 1h served by the fake and fetched back through ccxt
    real_cb = read_candle_file(
        real_data / "saijayanth888-trading-bot/freqtrade_coinbase_spot_1h/BTC_USD-1h.feather"
    )
    with running_fake_coinbase({"BTC-USD": real_cb}) as srv:
        ex = make_exchange("coinbase", base_url=srv.url)
        ex.rateLimit = 1
        run_venue_fetch(
            VenueFetchRequest("coinbase", "BTC-USD", "1h", date(2024, 4, 1), date(2026, 5, 31)),
            exchange=ex, layout=layout, now=lambda: datetime(2026, 6, 1, tzinfo=UTC),
            sleep=lambda s: None,
        )  # fmt: skip
    result = dg.materialize(
        [venue_basis], instance=instance, resources={"lake": store},
        run_config={"ops": {"venues__venue_basis": {"config": {"start": "2024-04-01", "end": "2026-05-31"}}}},
    )  # fmt: skip
    assert result.success
    materialization = result.asset_materializations_for_node("venues__venue_basis")[0]
    meta: dict[str, Any] = {k: v.value for k, v in materialization.metadata.items()}
    # SOURCES.md: the two overlap on 17,990 hours, median |basis| 3.2 bps, p99 17.8 bps
    assert meta["overlap_bars"] == 17_990 and meta["excluded_b_only"] == 0
    assert 2.5 < meta["median_abs_basis_bps"] < 4.0
    assert 15.0 < meta["p99_abs_basis_bps"] < 20.0
