"""bot4: the arbitrage family through the same runner, two paper venues behind a routing broker.

Reconciled against ``backtest_multi`` on synthetic two-venue bars with wide spreads, and run on
the real Binance × Coinbase overlap with the default (documented) venue costs, where no hour pays.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.multi import backtest_multi
from trading_pipeline.bots.assignment import Assignment, RiskLimits, default_assignment
from trading_pipeline.bots.broker import OrderRequest
from trading_pipeline.bots.candles import FrameCandles, load_frames
from trading_pipeline.bots.clock import ReplayClock, to_ms
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.replay import backtest_window, reconcile_pairs, replay_bot
from trading_pipeline.bots.routing import check_pair, venue_costs, venue_symbol
from trading_pipeline.bots.spec import bot_spec
from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.store import write_store

pytestmark = pytest.mark.slow  # whole-fleet and multi-bot replays over thousands of bars

A, B = "binanceus:BTCUSDT", "coinbase:BTCUSD"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
FROM, TO = T0 + timedelta(hours=50), T0 + timedelta(hours=1150)
LOOSE = RiskLimits(daily_loss=0.5, max_position_fraction=1.0, max_drawdown=0.9)


def two_venues(n: int = 1200, seed: int = 5) -> dict[str, pl.DataFrame]:
    """Venue a a random walk; venue b the same bars times (1 + d), d = ±150 bps on ~20 % of the
    bars (either side), 0 otherwise: wide spreads that pass any cost estimate used here."""
    a = make_bars(n, seed=seed, vol=0.004, start=T0, price=30_000.0)
    rng = np.random.default_rng(seed)
    d = rng.choice([0.0, 0.015, -0.015], size=n, p=[0.8, 0.1, 0.1])
    b = a.with_columns(
        *[(pl.col(c) * pl.Series(1.0 + d)).alias(c) for c in ("open", "high", "low", "close")]
    )
    return {A: a, B: b}


def arb(params: dict[str, Any], version: int = 1) -> Assignment:
    fam = get_family("arbitrage")
    return Assignment(
        "bot4", version, (A, B), "1h", "arbitrage", 1, fam.validate(params), 0.15, LOOSE
    )


def reference(frames: dict[str, pl.DataFrame], a: Assignment, cash: float) -> Any:
    s0, s1 = backtest_window(frames[A], FROM, TO)
    return backtest_multi(
        frames,
        "arbitrage",
        a.params,
        cash=cash,
        costs=venue_costs(a.params, a.symbols),
        interval="1h",
        start=s0,
        stop=s1,
        detail=True,
    )


def replay(frames: dict[str, pl.DataFrame], a: Assignment, tmp: Path, cash: float) -> Any:
    return replay_bot(a, frames, start=FROM, end=TO, initial_cash=cash, workdir=tmp)


FREE = {"threshold_bps": 5.0, "fee_a_bps": 0.0, "fee_b_bps": 0.0, "slippage_bps": 0.0}


def test_symbols_are_venue_qualified_and_usdt_is_not_usd() -> None:
    assert bot_spec("bot4").symbols == (A, B)
    a, b = check_pair((A, B))
    assert (a.venue, a.quote, b.venue, b.quote) == ("binanceus", "USDT", "coinbase", "USD")
    assert venue_symbol(B).store_market == "coinbase" and venue_symbol(B).native_id == "BTC-USD"
    with pytest.raises(UserInputError, match="different assets"):
        check_pair((A, "coinbase:ETHUSD"))
    with pytest.raises(UserInputError, match="quote currency"):
        check_pair((A, "coinbase:BTCEUR"))
    with pytest.raises(UserInputError, match="venue"):
        venue_symbol("BTCUSDT")


def test_without_costs_bot4_fills_equal_backtest_multi_exactly(tmp_path: Path) -> None:
    """Free inventory, no rebalancing: every pair on the same bar, side, price, units and fee."""
    frames = two_venues()
    a = arb({**FREE, "rebalance_bars": 0, "max_use": 0.5})
    r = replay(frames, a, tmp_path / "free", 1000.0)
    bt = reference(frames, a, 1000.0)
    assert bt.ledger is not None and bt.metrics["trades"] > 50
    times = frames[A]["open_time"]
    costs = venue_costs(a.params, a.symbols)
    assert reconcile_pairs(r.fills, bt.ledger, times=times, symbols=(A, B), costs=costs) == []
    # both directions were traded, and the inventory was bought once per venue at the first open
    inv = r.fills.filter(pl.col("reason") == "inventory")
    assert sorted(inv["symbol"].to_list()) == [A, B]
    assert inv["time_ms"].unique().to_list() == [to_ms(FROM)]
    assert set(bt.ledger["buy_venue"]) == {"a", "b"}
    # equity: quote + inventory at the closes, the backtest's curve at the same closes
    eq = r.equity["equity"].to_numpy()
    assert bt.equity is not None
    np.testing.assert_allclose(eq[1:], bt.equity[1 : len(eq)], rtol=1e-9)


def test_with_venue_fees_every_divergence_is_listed_and_explained(tmp_path: Path) -> None:
    """Real-looking fees: same bars, sides and prices; units differ only because the replay's
    inventory paid its costs; a rebalancing backtest is listed too."""
    frames = two_venues()
    params = {"threshold_bps": 5.0, "fee_a_bps": 10.0, "fee_b_bps": 20.0, "slippage_bps": 2.0}
    a = arb({**params, "rebalance_bars": 0})
    r = replay(frames, a, tmp_path / "fees", 1000.0)
    bt = reference(frames, a, 1000.0)
    costs = venue_costs(a.params, a.symbols)
    diffs = reconcile_pairs(
        r.fills, bt.ledger, times=frames[A]["open_time"], symbols=(A, B), costs=costs
    )
    assert diffs, "the inventory costs must show"
    assert all("inventory paid fee" in d for d in diffs), diffs
    assert not any("price" in d or "filled at" in d or "bought on" in d for d in diffs)
    # with rebalancing the backtest moves inventory the runner does not: listed
    a2 = arb({**FREE, "rebalance_bars": 24}, version=2)
    r2 = replay(frames, a2, tmp_path / "rebalance", 1000.0)
    bt2 = reference(frames, a2, 1000.0)
    assert bt2.metrics["rebalances"] > 0
    diffs2 = reconcile_pairs(
        r2.fills,
        bt2.ledger,
        times=frames[A]["open_time"],
        symbols=(A, B),
        costs=venue_costs(a2.params, a2.symbols),
        rebalances=int(bt2.metrics["rebalances"]),
    )
    assert diffs2[0].startswith("backtest rebalanced the inventory")


def test_per_venue_paper_accounts_hold_their_own_quote(tmp_path: Path) -> None:
    frames = two_venues(300)
    a = arb({**FREE, "rebalance_bars": 0})
    end = T0 + timedelta(hours=250)
    r = replay_bot(a, frames, start=FROM, end=end, initial_cash=150.0, workdir=tmp_path / "v")
    from trading_pipeline.bots.paper import PaperBroker

    books = {}
    candles = FrameCandles(frames)
    for venue in ("binanceus", "coinbase"):
        pb = PaperBroker(
            candles,
            ReplayClock(to_ms(end), to_ms(end)),
            interval="1h",
            starting_balances={},
            path=tmp_path / "v" / f"paper-{venue}.sqlite",
        )
        books[venue] = pb.balances()
        pb.close()
    assert set(books["binanceus"]) == {"USDT", "BTC"} and set(books["coinbase"]) == {"USD", "BTC"}
    led = Ledger(tmp_path / "v" / "ledger.sqlite")
    pos = led.positions()
    assert pos[A] == pytest.approx(books["binanceus"]["BTC"], rel=1e-12)
    assert pos[B] == pytest.approx(books["coinbase"]["BTC"], rel=1e-12)
    # the ledger's single cash is the two quotes at par (1 USDT counted as 1 USD)
    assert led.cash() == pytest.approx(books["binanceus"]["USDT"] + books["coinbase"]["USD"])
    led.close()
    assert r.fills.height > 2
    # the same client order id twice through the routing broker: one order
    from trading_pipeline.bots.replay import venue_paper_broker

    rb = venue_paper_broker(
        a,
        candles,
        ReplayClock(to_ms(FROM), to_ms(end)),
        initial_cash=100.0,
        costs=CostModel(),
        workdir=tmp_path / "rb",
    )
    req = OrderRequest("x-1", B, "buy", 0.001)
    first, again = rb.submit(req), rb.submit(req)
    assert first == again and first.status == "filled" and first.fee_currency == "USD"
    assert rb.balances()["coinbase:BTC"] == pytest.approx(0.001)
    assert rb.fetch_order("x-1", B) == first and rb.fetch_order("x-1", A) is None
    with pytest.raises(UserInputError, match="no broker for venue"):
        rb.submit(OrderRequest("x-2", "binance:BTCUSDT", "buy", 0.001))
    rb.close()


def test_store_loader_reads_venue_markets(tmp_path: Path) -> None:
    frames = two_venues(200)
    for sym, df in frames.items():
        vs = venue_symbol(sym)
        write_store(tmp_path / "history", Series(vs.store_market, vs.store_symbol, "1h"), df)
    got = load_frames(
        tmp_path / "history",
        market="spot",
        symbols=(A, B),
        interval="1h",
        start=T0 + timedelta(hours=100),
        end=T0 + timedelta(hours=150),
        warmup_bars=10,
    )
    assert set(got) == {A, B}
    assert got[B]["close"].to_list() == frames[B].slice(88, 62)["close"].to_list()


BINANCE = "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
COINBASE = "saijayanth888-trading-bot/freqtrade_coinbase_spot_1h/BTC_USD-1h.feather"


@pytest.mark.usefixtures("permissive_fleet")  # Binance (not Binance US) × Coinbase
def test_real_overlap_default_costs_no_trade(real_data: Path, tmp_path: Path) -> None:
    """Binance BTC/USDT (standing in for Binance US: no Binance US history in the real data)
    against Coinbase BTC-USD, May–June 2024, default venue costs (10 + 60 bps + slippage +
    rebalancing): bot4 buys its inventory and makes no arbitrage trade; its equity is the
    inventory's value less what buying it cost. The spec default (cash) ends exactly in cash."""
    start, end = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)
    pair = ("binance:BTCUSDT", "coinbase:BTCUSD")
    raw = {
        pair[0]: read_candle_file(real_data / BINANCE),
        pair[1]: read_candle_file(real_data / COINBASE),
    }
    frames = {
        k: v.filter(pl.col("open_time").is_between(start - timedelta(days=10), end))
        for k, v in raw.items()
    }
    fam = get_family("arbitrage")
    params = fam.validate({})
    a = Assignment("bot4", 1, pair, "1h", "arbitrage", 1, params, 0.15, RiskLimits())
    r = replay_bot(a, frames, start=start, end=end, initial_cash=150.0, workdir=tmp_path / "real")
    assert r.fills["reason"].to_list() == ["inventory", "inventory"]
    assert r.risk_events.height == 0
    # the backtester agrees: no signal, no trade over the same bars
    s0, s1 = backtest_window(frames[pair[0]], start, end)
    costs = venue_costs(params, pair)
    bt = backtest_multi(
        frames, fam, params, cash=150.0, costs=costs, interval="1h", start=s0, stop=s1, detail=True
    )
    assert bt.metrics["trades"] == 0 and bt.metrics["signal_bars"] == 0
    assert (
        reconcile_pairs(
            r.fills, bt.ledger, times=frames[pair[0]]["open_time"], symbols=pair, costs=costs
        )
        == []
    )
    # equity = quote + inventory at the last closes; against holding inventory bought for free
    # (the backtest's hold curve) it is short by exactly the base the fees and slippage took
    assert bt.hold_equity is not None
    p0 = {s: float(frames[s].filter(pl.col("open_time") == start)["open"][0]) for s in pair}
    last = {s: float(frames[s].filter(pl.col("open_time") < end)["close"][-1]) for s in pair}
    bought = {s: float(r.fills.filter(pl.col("symbol") == s)["qty"][0]) for s in pair}
    free_units = {s: 150.0 / 2 * 0.5 / p0[s] for s in pair}
    final, hold = r.final, float(bt.hold_equity[-1])
    assert hold == pytest.approx(75.0 + sum(free_units[s] * last[s] for s in pair), rel=1e-9)
    assert final == pytest.approx(75.0 + sum(bought[s] * last[s] for s in pair), rel=1e-9)
    shortfall = sum((free_units[s] - bought[s]) * last[s] for s in pair)
    assert hold - final == pytest.approx(shortfall, rel=1e-6) and 0 < shortfall < 150.0 * 0.01
    paid = sum(37.5 - bought[s] * p0[s] for s in pair)  # fee + slippage at purchase, in quote
    print(
        f"\nbot4 real {start:%Y-%m-%d}..{end:%Y-%m-%d}: final {final:.4f} vs inventory held free "
        f"{hold:.4f} (inventory costs {paid:.4f} at purchase); median |spread| "
        f"{bt.metrics['median_abs_spread_bps']:.1f} bps; backtest trades {bt.metrics['trades']:.0f}"
    )
    # the fleet's default for bot4 is cash: flat 150, no order at all
    d = default_assignment("bot4")
    assert d.family == "cash"
    cash_frames = {d.symbols[0]: frames[pair[0]], d.symbols[1]: frames[pair[1]]}
    rc = replay_bot(
        d, cash_frames, start=start, end=end, initial_cash=150.0, workdir=tmp_path / "cash"
    )
    assert rc.fills.height == 0 and rc.final == 150.0


class _Recorder:
    """A venue broker that records the symbol it was asked for (a ccxt broker's stand-in)."""

    name, live = "rec", True

    def __init__(self) -> None:
        self.seen: list[str] = []

    def submit(self, req: OrderRequest) -> Any:
        self.seen.append(req.symbol)
        return None

    def fetch_order(self, client_order_id: str, symbol: str) -> None:
        self.seen.append(symbol)

    def balances(self) -> dict[str, float]:
        return {"USD": 1.0}


def test_live_routing_uses_each_venues_own_ids() -> None:
    """Live, the venue brokers and candle sources get the venue's own id (BTC-USD on Coinbase)."""
    from trading_pipeline.bots.candles import VenueCandles
    from trading_pipeline.bots.routing import RoutingBroker

    frames = two_venues(50)
    candles = VenueCandles(
        {
            "binanceus": FrameCandles({"BTCUSDT": frames[A]}),
            "coinbase": FrameCandles({"BTC-USD": frames[B]}),
        }
    )
    t = to_ms(T0 + timedelta(hours=10))
    assert candles.price(B, "1h", t) == float(frames[B]["open"][10])
    assert (
        candles.closed_bars(A, "1h", t, 3)["close"].to_list() == frames[A]["close"][7:10].to_list()
    )
    assert candles.next_close_ms("1h", t) == t + 3_600_000
    with pytest.raises(UserInputError, match="no candles for venue"):
        candles.price("binance:BTCUSDT", "1h", t)
    cb, bu = _Recorder(), _Recorder()
    rb = RoutingBroker(
        {"coinbase": cb, "binanceus": bu},
        quotes={"coinbase": "USD", "binanceus": "USDT"},
        native_ids=True,
    )
    assert rb.live
    rb.submit(OrderRequest("y", B, "sell", 1.0))
    rb.fetch_order("y", A)
    assert cb.seen == ["BTC-USD"] and bu.seen == ["BTCUSDT"]
    assert rb.balances() == {"coinbase:USD": 1.0, "binanceus:USD": 1.0}


def test_a_restarted_bot4_never_buys_its_inventory_twice(tmp_path: Path) -> None:
    """Run the same replay again in the same directory (a restart after the end): the ledger
    and both venue books are unchanged — no second inventory, no second pair."""
    frames = two_venues(400)
    a = arb({**FREE, "rebalance_bars": 0})
    end = T0 + timedelta(hours=350)
    replay_bot(a, frames, start=FROM, end=end, initial_cash=500.0, workdir=tmp_path / "r")
    led = Ledger(tmp_path / "r" / "ledger.sqlite")
    before = led.snapshot()
    led.close()
    again = replay_bot(a, frames, start=FROM, end=end, initial_cash=500.0, workdir=tmp_path / "r")
    led = Ledger(tmp_path / "r" / "ledger.sqlite")
    assert led.snapshot() == before
    led.close()
    assert again.fills.filter(pl.col("reason") == "inventory").height == 2
    assert again.fills.filter(pl.col("reason") == "arbitrage").height > 10
