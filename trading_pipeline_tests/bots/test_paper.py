"""The paper broker fills like the backtest kernel, is idempotent and remembers its orders."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.bots.broker import MAX_CLIENT_ORDER_ID, Broker, OrderRequest, client_order_id
from trading_pipeline.bots.candles import FrameCandles
from trading_pipeline.bots.clock import ReplayClock, to_ms
from trading_pipeline.bots.paper import PaperBroker


def _broker(
    bars: pl.DataFrame, at: int, path: Path | None = None, cash: float = 100.0
) -> tuple[PaperBroker, ReplayClock]:
    candles = FrameCandles({"BTCUSDT": bars})
    clock = ReplayClock(at, at + 10**9)
    return PaperBroker(
        candles, clock, interval="1h", starting_balances={"USDT": cash}, path=path
    ), clock


def test_buy_spends_exactly_the_kernels_value_and_sell_pays_the_kernels_proceeds(
    bars: pl.DataFrame,
) -> None:
    at = to_ms(bars["open_time"][10])
    broker, _ = _broker(bars, at)
    assert isinstance(broker, Broker)
    costs = CostModel()
    px = float(bars["open"][10])
    value = 100.0
    qty = value / (1 + costs.fee) / (px * (1 + costs.slippage))  # how the runner sizes a buy
    res = broker.submit(OrderRequest("c1", "BTCUSDT", "buy", qty))
    assert res.avg_price is not None
    assert res.status == "filled" and res.avg_price == pytest.approx(px * 1.0002, rel=1e-15)
    assert res.filled_qty * res.avg_price + res.fee == pytest.approx(value, rel=1e-12)
    assert res.fee == pytest.approx(value - value / 1.001, rel=1e-9)  # kernel: value - notional
    assert broker.balances()["USDT"] == pytest.approx(0.0, abs=1e-9)
    sell = broker.submit(OrderRequest("c2", "BTCUSDT", "sell", qty))
    gross = qty * px * (1 - 0.0002)
    assert sell.avg_price == pytest.approx(px * 0.9998, rel=1e-15)
    assert broker.balances()["USDT"] == pytest.approx(gross * (1 - 0.001), rel=1e-12)


def test_submit_is_idempotent_and_the_book_survives_a_restart(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    at = to_ms(bars["open_time"][5])
    broker, _ = _broker(bars, at, tmp_path / "paper.sqlite")
    req = OrderRequest("bot1-1-BTCUSDT-1-buy", "BTCUSDT", "buy", 0.1)
    first = broker.submit(req)
    again = broker.submit(req)
    assert again == first
    assert broker.balances()["BTC"] == pytest.approx(0.1)  # bought once
    broker.close()
    reopened, _ = _broker(bars, at, tmp_path / "paper.sqlite")
    assert reopened.fetch_order(req.client_order_id, "BTCUSDT") == first
    assert reopened.fetch_order("never-sent", "BTCUSDT") is None
    assert reopened.balances()["BTC"] == pytest.approx(0.1)


def test_rejections_insufficient_balance_and_no_price(bars: pl.DataFrame) -> None:
    broker, clock = _broker(bars, to_ms(bars["open_time"][5]), cash=10.0)
    big = broker.submit(OrderRequest("b", "BTCUSDT", "buy", 1.0))
    assert big.status == "rejected" and "insufficient balance" in big.reason and big.filled_qty == 0
    short = broker.submit(OrderRequest("s", "BTCUSDT", "sell", 1.0))
    assert short.status == "rejected" and "insufficient" in short.reason
    clock.sleep_until(clock.now_ms() + 1)  # not a bar open: no price
    nop = broker.submit(OrderRequest("n", "BTCUSDT", "buy", 0.01))
    assert nop.status == "rejected" and "no price" in nop.reason
    assert broker.balances() == {"USDT": 10.0}


def test_client_order_ids_are_deterministic_short_and_distinct() -> None:
    a = client_order_id("bot1", 3, "BTCUSDT", 1_651_363_200_000, "buy")
    assert a == "bot1-3-BTCUSDT-1651363200000-buy"
    assert client_order_id("bot1", 3, "BTCUSDT", 1_651_363_200_000, "buy") == a
    long_ = client_order_id("bot2", 12345, "DOGEUSDT", 1_651_363_200_000, "sell")
    assert len(long_) <= MAX_CLIENT_ORDER_ID and long_.startswith("bot2-")
    ids = {
        client_order_id("bot2", v, s, t, side)  # type: ignore[arg-type]
        for v in (1, 99999)
        for s in ("BTCUSDT", "DOGEUSDT")
        for t in (0, 3_600_000)
        for side in ("buy", "sell")
    }
    assert len(ids) == 16 and all(len(i) <= MAX_CLIENT_ORDER_ID for i in ids)
