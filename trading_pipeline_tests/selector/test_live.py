"""Live candles through ccxt against the fake Binance server, and one decision tick end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.bots.spec import CASH, FLEET
from trading_pipeline.selector.decide import Decider, open_registry
from trading_pipeline.selector.decisions import DecisionStore, decisions_path, inputs_hash
from trading_pipeline.selector.live import CandleFetchError, LiveCandles, StoreCandles
from trading_pipeline.selector.registry import MlflowRegistry
from trading_pipeline.selector.state import latest_state
from trading_pipeline.tracking import default_tracking_uri
from trading_pipeline.venues.exchange import make_exchange
from trading_pipeline_tests.fakes.binance import FakeBinance, Fault, running_fake_binance
from trading_pipeline_tests.fakes.store import write_store
from trading_pipeline_tests.selector.decision_support import (
    BTC,
    ETH,
    START,
    fitted_selector,
    fleet_bars,
    hours,
)

pytestmark = pytest.mark.slow  # a local HTTP server (the fake Binance)

STORED = 1200  # bars in the Parquet store
SERVED = 1262  # bars the exchange knows (the last one still open at NOW)
NOW = START + hours(SERVED - 1) + hours(1) / 2


@pytest.fixture(scope="module")
def bars() -> dict[str, pl.DataFrame]:
    return fleet_bars(SERVED)


@pytest.fixture
def history(tmp_path: Path, bars: dict[str, pl.DataFrame]) -> Path:
    root = tmp_path / "data" / "history"
    for key, df in bars.items():
        write_store(root, key, df.head(STORED))
    return root


@pytest.fixture
def fake(bars: dict[str, pl.DataFrame]) -> Iterator[FakeBinance]:
    served = {("BTCUSDT", "1h"): bars[BTC].slice(1100), ("ETHUSDT", "1h"): bars[ETH].slice(1100)}
    with running_fake_binance(served) as srv:
        srv.set_now(NOW)
        yield srv


def _kline_starts(fake: FakeBinance) -> list[int]:
    return [int(r.query["startTime"]) for r in fake.requests_to("/api/v3/klines")]


def test_store_plus_exchange_closed_bars_without_duplicates(
    history: Path, fake: FakeBinance, bars: dict[str, pl.DataFrame]
) -> None:
    live = LiveCandles(make_exchange("binance", base_url=fake.url), store=StoreCandles(history))
    got = live.bars([BTC, ETH], now=NOW, lookback=5000)
    for key in (BTC, ETH):
        df = got[key]
        assert df["open_time"].is_unique().all() and df["open_time"].is_sorted()
        assert df.height == SERVED - 1  # every bar but the open one
        assert df["open_time"][-1] == START + hours(SERVED - 2)
        assert df["close"].to_list() == bars[key]["close"].head(SERVED - 1).to_list()
    # the exchange was asked only for what the store lacks
    first_missing = int((START + hours(STORED)).timestamp() * 1000)
    assert _kline_starts(fake) == [first_missing, first_missing]


def test_exchange_only_when_the_store_is_empty(tmp_path: Path, fake: FakeBinance) -> None:
    live = LiveCandles(make_exchange("binance", base_url=fake.url), store=StoreCandles(tmp_path))
    got = live.bars([BTC], now=NOW, lookback=50)
    assert got[BTC].height == 50
    assert got[BTC]["open_time"][-1] == START + hours(SERVED - 2)


def test_exchange_failure_is_a_fetch_error(history: Path, fake: FakeBinance) -> None:
    fake.add_fault(Fault.server_error(path="/api/v3/klines", status=503, times=10))
    pauses: list[float] = []
    live = LiveCandles(
        make_exchange("binance", base_url=fake.url),
        store=StoreCandles(history),
        attempts=2,
        sleep=pauses.append,
    )
    with pytest.raises(CandleFetchError, match="binance klines"):
        live.bars([BTC], now=NOW, lookback=100)
    assert len(pauses) == 1


@pytest.mark.slow
def test_one_decision_tick_end_to_end(
    tmp_path: Path, history: Path, fake: FakeBinance, bars: dict[str, pl.DataFrame]
) -> None:
    data = tmp_path / "data"
    uri = default_tracking_uri(data)
    registry = MlflowRegistry(uri, "strategy-selector")
    model = fitted_selector({k: df.head(STORED) for k, df in bars.items()})
    v1 = registry.register(model, name="strategy-selector", metrics={"heldout_net_return": 0.1})
    registry.promote("strategy-selector", v1)

    reopened = open_registry(uri)
    assert reopened is not None
    store = DecisionStore(decisions_path(data))
    candles = LiveCandles(make_exchange("binance", base_url=fake.url), store=StoreCandles(history))
    decider = Decider(reopened, candles, store, fleet=FLEET)
    result = decider.tick(NOW)

    assert result.model.version == 1 and result.model.run_id
    assert len(result.decisions) == 5 and all(d.id is not None for d in result.decisions)
    closed = {k: df.head(SERVED - 1) for k, df in bars.items()}
    expected_hash = inputs_hash(closed, extra={"model": "strategy-selector", "version": 1})
    bot1 = {d.bot: d for d in result.decisions}["bot1"]
    assert bot1.inputs_hash == expected_hash  # store + exchange, the open candle left out
    assert bot1.choice in {CASH, "sma_cross@spot-BTCUSDT-1h", "sma_cross@spot-ETHUSDT-1h"}
    assert sum(bot1.probabilities.values()) == pytest.approx(1.0)
    raw = model.predict_proba(latest_state(closed, interval="1h"))
    eligible = ("cash", "sma_cross@spot-BTCUSDT-1h", "sma_cross@spot-ETHUSDT-1h")
    total = sum(raw[k] for k in eligible)
    assert bot1.probabilities == pytest.approx({k: raw[k] / total for k in eligible})
    recorded = store.history()
    assert recorded.height == 5 and set(recorded["model_version"]) == {1}
    assert set(recorded["inputs_hash"]) == {expected_hash}
    assert fake.requests_to("/api/v3/exchangeInfo")

    # same alias: no reload; a new champion: reloaded once
    decider.tick(NOW + hours(1) / 12)
    assert decider.loads == 1
    v2 = registry.register(
        fitted_selector({k: df.head(STORED) for k, df in bars.items()}, c=1.0),
        name="strategy-selector",
        metrics={"heldout_net_return": 0.2},
    )
    registry.promote("strategy-selector", v2)
    later = decider.tick(NOW + hours(1) / 6)
    assert decider.loads == 2 and later.model.version == 2
    assert store.history().height == 15
