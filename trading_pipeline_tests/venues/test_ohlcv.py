"""Venue candles through ccxt into the store: pagination, rate limits, resume, Binance US, real data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import HistoryLayout
from trading_pipeline.history.manifest import Manifest
from trading_pipeline.market.candles import load_store, read_candle_file
from trading_pipeline.venues.exchange import VENUE_RETRY, make_exchange
from trading_pipeline.venues.ohlcv import (
    RetryPolicy,
    VenueFetchError,
    VenueFetchRequest,
    manifest_key,
    run_venue_fetch,
)
from trading_pipeline.venues.symbols import parse_symbol
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.binance import running_fake_binance
from trading_pipeline_tests.fakes.coinbase import FakeCoinbase, running_fake_coinbase

pytestmark = pytest.mark.slow  # a local HTTP server (the fake venues)

START = datetime(2024, 1, 1, tzinfo=UTC)
HOURS_JAN_MAR = (31 + 29 + 31) * 24  # 2024 is a leap year
LATER = datetime(2024, 6, 1, tzinfo=UTC)  # every test month has ended
OHLCV = ["open_time", "open", "high", "low", "close", "volume"]
CB_BTC = parse_symbol("coinbase", "BTC-USD")


def _bars(n: int = HOURS_JAN_MAR, seed: int = 3) -> pl.DataFrame:
    df = make_bars(n, seed=seed, start=START, price=42_000.0)
    return df.with_columns(
        pl.col("open", "high", "low", "close").round(2), pl.col("volume").round(6)
    )


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return _bars()


@pytest.fixture
def coinbase(bars: pl.DataFrame) -> Iterator[FakeCoinbase]:
    with running_fake_coinbase({"BTC-USD": bars}) as srv:
        yield srv


class Sleeper:
    """Records the pauses instead of sleeping; can stand for a kill on the n-th pause."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.pauses: list[float] = []
        self.kill_at = kill_at

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        if self.kill_at is not None and len(self.pauses) >= self.kill_at:
            raise KeyboardInterrupt


def _fetch(
    srv_url: str,
    root: Path,
    *,
    venue: str = "coinbase",
    symbol: str = "BTC-USD",
    start: date = date(2024, 1, 1),
    end: date = date(2024, 3, 31),
    now: datetime = LATER,
    sleep: Sleeper | None = None,
    retry: RetryPolicy | None = None,
    progress: object = None,
):  # type: ignore[no-untyped-def]
    ex = make_exchange(venue, base_url=srv_url)
    ex.rateLimit = 1  # ccxt's pacing stays on, just short for tests
    return run_venue_fetch(
        VenueFetchRequest(venue, symbol, "1h", start, end),
        exchange=ex,
        layout=HistoryLayout(root),
        now=lambda: now,
        sleep=sleep or Sleeper(),
        retry=retry,
        progress=progress,  # type: ignore[arg-type]
    )


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "parquet").rglob("*.parquet"))
    }


def test_months_are_paginated_by_since_into_the_venue_partition(
    coinbase: FakeCoinbase, bars: pl.DataFrame, tmp_path: Path
) -> None:
    summary = _fetch(coinbase.url, tmp_path)
    assert [m.period for m in summary.months] == ["2024-01", "2024-02", "2024-03"]
    assert [m.rows for m in summary.months] == [744, 696, 744]
    calls = coinbase.candle_requests()
    assert len(calls) == 3 + 3 + 3  # 300-bar windows: 744 → 300+300+144, 696 → 300+300+96
    starts = [int(c.query["start"]) for c in calls[:3]]
    assert starts == [int(START.timestamp()) + i * 300 * 3600 for i in range(3)]
    path = tmp_path / "parquet/market=coinbase/symbol=BTCUSD/interval=1h/year=2024/month=02"
    assert (path / "data.parquet").exists()
    assert not (tmp_path / "parquet" / "market=spot").exists()  # Binance paths untouched
    back = load_store(tmp_path, market="coinbase", symbol="BTCUSD", interval="1h")
    assert back.select(OHLCV).equals(bars.select(OHLCV))
    entry = Manifest(tmp_path / "manifest.json").load()[manifest_key(CB_BTC, "1h", 2024, 2)]
    assert entry.kind == "venue" and entry.source == "ccxt:coinbase"
    assert entry.extra["complete"] is True and entry.extra["quote"] == "USD"
    assert entry.rows == 696 and entry.gaps == 0
    assert entry.parquet_path == str(path.relative_to(tmp_path) / "data.parquet")


def test_a_429_is_waited_out_through_the_sleeper_then_succeeds(
    coinbase: FakeCoinbase, bars: pl.DataFrame, tmp_path: Path
) -> None:
    coinbase.add_fault(429, times=2)
    sleeper = Sleeper()
    summary = _fetch(coinbase.url, tmp_path, sleep=sleeper, end=date(2024, 1, 31))
    # exponential back-off (1 s, 2 s) plus up to VENUE_RETRY.jitter_s of jitter
    assert summary.retries == 2 and len(sleeper.pauses) == 2
    for pause, base in zip(sleeper.pauses, (1.0, 2.0), strict=True):
        assert base <= pause <= base + VENUE_RETRY.jitter_s
    assert summary.months[0].rows == 744
    statuses = [c for c in coinbase.candle_requests()]
    assert len(statuses) == 3 + 2
    back = load_store(tmp_path, market="coinbase", symbol="BTCUSD", interval="1h")
    assert back.select(OHLCV).equals(bars.head(744).select(OHLCV))


def test_a_venue_that_keeps_refusing_fails_without_writing_the_month(
    coinbase: FakeCoinbase, tmp_path: Path
) -> None:
    coinbase.add_fault(503, times=None)
    with pytest.raises(VenueFetchError, match="after 3 attempts"):
        _fetch(coinbase.url, tmp_path, retry=RetryPolicy(attempts=3))
    assert not (tmp_path / "parquet").exists()


def test_resume_after_an_interruption_gives_the_same_files(
    coinbase: FakeCoinbase, tmp_path: Path
) -> None:
    whole = tmp_path / "whole"
    _fetch(coinbase.url, whole)
    # interrupted: after January is written, the venue rate-limits and the process is killed
    # during the back-off (KeyboardInterrupt from the sleeper stands for SIGINT)
    cut = tmp_path / "cut"

    def after_january(month: object, done: int, total: int) -> None:
        if done == 1:
            coinbase.add_fault(429, times=None)

    with pytest.raises(KeyboardInterrupt):
        _fetch(coinbase.url, cut, sleep=Sleeper(kill_at=1), progress=after_january)
    coinbase.clear_faults()
    assert list(_digests(cut)) == [
        "parquet/market=coinbase/symbol=BTCUSD/interval=1h/year=2024/month=01/data.parquet"
    ]
    assert not [p for p in cut.rglob("*") if p.name.endswith(".part")]
    before = len(coinbase.candle_requests())
    summary = _fetch(coinbase.url, cut)
    assert [m.status for m in summary.months] == ["complete", "written", "written"]
    assert len(coinbase.candle_requests()) - before == 3 + 3  # January was not asked again
    assert _digests(cut) == _digests(whole)
    manifest_cut = json.loads((cut / "manifest.json").read_text())["files"]
    manifest_whole = json.loads((whole / "manifest.json").read_text())["files"]
    for doc in (manifest_cut, manifest_whole):
        for entry in doc.values():
            entry.pop("written_at")
    assert manifest_cut == manifest_whole
    again = _fetch(coinbase.url, cut)
    assert {m.status for m in again.months} == {"complete"} and again.requests == 0


def test_the_month_in_progress_is_rewritten_as_it_grows(
    coinbase: FakeCoinbase, tmp_path: Path
) -> None:
    noon_10th = datetime(2024, 3, 10, 12, 30, tzinfo=UTC)
    first = _fetch(
        coinbase.url, tmp_path, start=date(2024, 2, 1), end=date(2024, 3, 31), now=noon_10th
    )
    march = first.months[-1]
    assert not march.complete and march.rows == 9 * 24 + 12  # closed bars only, to 12:00
    assert march.last_open_time == datetime(2024, 3, 10, 11, tzinfo=UTC)
    key = manifest_key(CB_BTC, "1h", 2024, 3)
    assert Manifest(tmp_path / "manifest.json").load()[key].extra["complete"] is False
    later = _fetch(coinbase.url, tmp_path, start=date(2024, 2, 1), end=date(2024, 3, 31))
    assert [m.status for m in later.months] == ["complete", "written"]
    assert later.months[-1].rows == 744 and later.months[-1].complete


def test_gaps_longer_than_a_page_are_skipped_not_invented(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    outage = (pl.col("open_time") >= START + timedelta(hours=100)) & (
        pl.col("open_time") < START + timedelta(hours=500)
    )
    holed = bars.filter(~outage)
    with running_fake_coinbase({"BTC-USD": holed}) as srv:
        summary = _fetch(srv.url, tmp_path, end=date(2024, 1, 31))
    jan = summary.months[0]
    assert jan.rows == 744 - 400 and jan.gaps == 1 and jan.missing_bars == 400
    back = load_store(tmp_path, market="coinbase", symbol="BTCUSD", interval="1h")
    assert back.select(OHLCV).equals(holed.head(344).select(OHLCV))


def test_binance_us_through_the_fake_binance(bars: pl.DataFrame, tmp_path: Path) -> None:
    with running_fake_binance({("BTCUSD", "1h"): bars, ("BTCUSDT", "1h"): bars}) as srv:
        summary = _fetch(srv.url, tmp_path, venue="binanceus", symbol="BTCUSD")
        klines = [r for r in srv.requests if r.path == "/api/v3/klines"]
    assert [m.rows for m in summary.months] == [744, 696, 744]
    assert len(klines) == 1 + 1 + 1  # 1000-bar windows: one per month
    assert klines[0].query["symbol"] == "BTCUSD" and klines[0].query["interval"] == "1h"
    back = load_store(tmp_path, market="binanceus", symbol="BTCUSD", interval="1h")
    assert back.select(OHLCV).equals(bars.select(OHLCV))
    assert not (tmp_path / "parquet" / "market=binanceus" / "symbol=BTCUSDT").exists()


@pytest.mark.parametrize(
    ("venue", "symbol", "start", "end", "message"),
    [
        ("kraken", "BTC-USD", date(2024, 1, 1), date(2024, 1, 31), "unknown venue"),
        ("binance", "BTCUSDT", date(2024, 1, 1), date(2024, 1, 31), "Binance Vision"),
        ("coinbase", "DOGE-USD", date(2024, 1, 1), date(2024, 1, 31), "not listed on coinbase"),
        ("coinbase", "BTC-EUR", date(2024, 1, 1), date(2024, 1, 31), "listed for BTC: BTC-USD"),
        ("coinbase", "BTC-USD", date(2024, 3, 1), date(2024, 1, 31), "is after --to"),
        ("coinbase", "BTC-USD", date(2024, 7, 1), date(2024, 7, 31), "in the future"),
    ],
)
def test_bad_input_is_refused_before_any_file(
    coinbase: FakeCoinbase,
    tmp_path: Path,
    venue: str,
    symbol: str,
    start: date,
    end: date,
    message: str,
) -> None:
    url = coinbase.url
    with pytest.raises(UserInputError, match=message):
        ex = make_exchange("coinbase", base_url=url)
        run_venue_fetch(
            VenueFetchRequest(venue, symbol, "1h", start, end),
            exchange=ex,
            layout=HistoryLayout(tmp_path),
            now=lambda: LATER,
            sleep=Sleeper(),
        )
    assert list(tmp_path.iterdir()) == []
    assert coinbase.candle_requests() == []


def test_an_interval_the_venue_lacks_is_refused(coinbase: FakeCoinbase, tmp_path: Path) -> None:
    ex = make_exchange("coinbase", base_url=coinbase.url)
    with pytest.raises(UserInputError, match="coinbase has no 4h candles"):
        run_venue_fetch(
            VenueFetchRequest("coinbase", "BTC-USD", "4h", date(2024, 1, 1), date(2024, 1, 2)),
            exchange=ex,
            layout=HistoryLayout(tmp_path),
            now=lambda: LATER,
        )
    assert list(tmp_path.iterdir()) == []


def test_real_coinbase_candles_round_trip_through_fake_and_ccxt(
    real_data: Path, tmp_path: Path
) -> None:
    path = real_data / "saijayanth888-trading-bot/freqtrade_coinbase_spot_1h/BTC_USD-1h.feather"
    real = read_candle_file(path)
    with running_fake_coinbase({"BTC-USD": real}) as srv:
        summary = _fetch(
            srv.url, tmp_path, start=date(2024, 4, 1), end=date(2026, 5, 31),
            now=datetime(2026, 6, 1, tzinfo=UTC),
        )  # fmt: skip
    assert summary.rows == real.height == 17_990
    assert len(summary.months) == 26 and summary.retries == 0
    assert sum(m.gaps for m in summary.months) == 2  # 2025-10-25 and 2026-05-08 (SOURCES.md)
    back = load_store(tmp_path, market="coinbase", symbol="BTCUSD", interval="1h")
    assert back.select(OHLCV).equals(real.select(OHLCV))
