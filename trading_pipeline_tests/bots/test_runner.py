"""The runner trades exactly like the backtester, reloads its assignment, and survives a crash
between sending an order and booking it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.engine import backtest
from trading_pipeline.bots.assignment import Assignment, RiskLimits
from trading_pipeline.bots.broker import OrderRequest, OrderResult
from trading_pipeline.bots.candles import FrameCandles
from trading_pipeline.bots.clock import ReplayClock, to_ms
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.paper import PaperBroker
from trading_pipeline.bots.replay import backtest_window, reconcile, replay_bot
from trading_pipeline.bots.runner import BotRunner
from trading_pipeline.market.schema import conform

pytestmark = pytest.mark.slow  # whole-fleet and multi-bot replays over thousands of bars

START, END = datetime(2020, 1, 10, tzinfo=UTC), datetime(2020, 3, 1, tzinfo=UTC)
NO_LIMITS = RiskLimits(daily_loss=1.0, max_drawdown=1.0)  # the backtester has no daily limit


pytestmark = pytest.mark.usefixtures("permissive_fleet")


def sma(
    fast: int = 5,
    slow: int = 20,
    *,
    symbols: tuple[str, ...] = ("BTCUSDT",),
    version: int = 1,
    risk: RiskLimits = NO_LIMITS,
) -> Assignment:
    return Assignment(
        "bot1", version, symbols, "1h", "sma_cross", 1, {"fast": fast, "slow": slow}, 0.3, risk
    )


def test_replay_fills_equal_the_backtesters_trades(bars: pl.DataFrame, tmp_path: Path) -> None:
    r = replay_bot(
        sma(), {"BTCUSDT": bars}, start=START, end=END, initial_cash=300.0, workdir=tmp_path
    )
    s, e = backtest_window(bars, START, END)
    bt = backtest(
        bars,
        "sma_cross",
        {"fast": 5, "slow": 20},
        cash=300.0,
        interval="1h",
        detail=True,
        start=s,
        stop=e,
    )
    assert bt.trades is not None and bt.trades.height > 20  # a real test: many round trips
    assert r.fills.height in (2 * bt.trades.height, 2 * bt.trades.height - 1)
    diffs = reconcile(
        r.fills,
        bt.trades,
        replay_final_equity=r.final,
        backtest_final_equity=bt.metrics["final_equity"],
    )
    assert diffs == []
    # the equity curve is the backtester's, bar for bar
    assert bt.equity is not None
    assert r.equity["equity"].to_list() == pytest.approx(bt.equity.tolist(), rel=1e-9)


def test_reconcile_lists_every_divergence(bars: pl.DataFrame, tmp_path: Path) -> None:
    r = replay_bot(
        sma(), {"BTCUSDT": bars}, start=START, end=END, initial_cash=300.0, workdir=tmp_path
    )
    s, e = backtest_window(bars, START, END)
    dearer = backtest(
        bars,
        "sma_cross",
        {"fast": 5, "slow": 20},
        cash=300.0,
        interval="1h",
        detail=True,
        start=s,
        stop=e,
        costs=CostModel(fee=0.002),
    )
    assert dearer.trades is not None
    diffs = reconcile(
        r.fills,
        dearer.trades,
        replay_final_equity=r.final,
        backtest_final_equity=dearer.metrics["final_equity"],
    )
    assert (
        any("units" in d for d in diffs)
        and any("pnl" in d for d in diffs)
        and diffs[-1].startswith("final equity")
    )
    other = backtest(
        bars,
        "sma_cross",
        {"fast": 6, "slow": 20},
        cash=300.0,
        interval="1h",
        detail=True,
        start=s,
        stop=e,
    )
    assert other.trades is not None
    assert any("entry at" in d or "trade count" in d for d in reconcile(r.fills, other.trades))


def test_real_btc_replay_reconciles_with_the_backtester(
    luna_frames: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    btc = luna_frames["BTCUSDT"]
    start, end = datetime(2022, 4, 1, tzinfo=UTC), datetime(2022, 5, 31, tzinfo=UTC)
    a = sma(10, 30)
    r = replay_bot(a, {"BTCUSDT": btc}, start=start, end=end, initial_cash=300.0, workdir=tmp_path)
    s, e = backtest_window(btc, start, end)
    bt = backtest(
        btc,
        "sma_cross",
        {"fast": 10, "slow": 30},
        cash=300.0,
        interval="1h",
        detail=True,
        start=s,
        stop=e,
    )
    assert bt.trades is not None and bt.trades.height > 5
    assert (
        reconcile(
            r.fills,
            bt.trades,
            replay_final_equity=r.final,
            backtest_final_equity=bt.metrics["final_equity"],
        )
        == []
    )


def _runner(
    bars: pl.DataFrame,
    tmp_path: Path,
    assignments: Any,
    broker: Any = None,
    end: datetime = END,
    fleet_capital: float | None = None,
) -> tuple[BotRunner, Ledger, PaperBroker]:
    candles = FrameCandles({"BTCUSDT": bars}, end_ms=to_ms(end))
    clock = ReplayClock(to_ms(START), to_ms(end))
    paper = PaperBroker(
        candles,
        clock,
        interval="1h",
        starting_balances={"USDT": 300.0},
        path=tmp_path / "paper.sqlite",
    )
    ledger = Ledger(tmp_path / "ledger.sqlite", durable=False)
    runner = BotRunner(
        "bot1",
        ledger=ledger,
        broker=broker or paper,
        candles=candles,
        clock=clock,
        assignments=assignments,
        initial_cash=300.0,
        fleet_capital=fleet_capital,
    )
    return runner, ledger, paper


def test_a_new_assignment_is_picked_up_and_a_broken_store_keeps_the_old(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    switch = to_ms(datetime(2020, 2, 1, tzinfo=UTC))
    cash = dataclasses.replace(sma(), version=2, family="cash", params={})
    clock_box: dict[str, Any] = {}

    def assignments() -> Assignment:
        now = clock_box["clock"].now_ms()
        if (
            to_ms(datetime(2020, 1, 20, tzinfo=UTC))
            <= now
            < to_ms(datetime(2020, 1, 21, tzinfo=UTC))
        ):
            raise OSError("store unreadable")  # the bot keeps trading on what it has
        return sma() if now < switch else cash

    runner, ledger, _ = _runner(bars, tmp_path, assignments)
    clock_box["clock"] = runner.clock
    runner.run()
    orders = ledger.orders()
    v1 = orders.filter(pl.col("assignment_version") == 1)
    assert v1.height > 10
    assert max(v1["bar_ms"].to_list()) < switch
    after = orders.filter(pl.col("bar_ms") >= switch - 3_600_000)
    # on the switch to cash, anything held is sold (reason "reassigned") and nothing is bought
    assert set(after["side"].to_list()) <= {"sell"} and set(after["reason"].to_list()) <= {
        "reassigned"
    }
    assert ledger.positions() == {}
    steps = ledger._db.execute(
        "SELECT COUNT(*) FROM steps WHERE bar_close_ms > ? AND bar_close_ms <= ?",
        (to_ms(datetime(2020, 1, 20, tzinfo=UTC)), to_ms(datetime(2020, 1, 21, tzinfo=UTC))),
    ).fetchone()[0]
    assert steps == 24  # the unreadable store did not stop a single step


def test_an_invalid_deploy_is_refused_and_the_bot_keeps_trading_on_the_old_one(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    from trading_pipeline.bots.deploy_store import DeploymentStore

    store = DeploymentStore(tmp_path / "bots")
    assert store.deploy([sma()]).ok
    attempt = to_ms(datetime(2020, 1, 25, tzinfo=UTC))
    refusals: list[str] = []

    def assignments() -> Assignment | None:
        if not refusals and clock_box["clock"].now_ms() >= attempt:
            bad = sma(fast=500, slow=20)  # outside the search space and fast > slow
            report = store.deploy([bad])
            refusals.extend(r.reason for r in report.refused)
        return store.current("bot1")

    clock_box: dict[str, Any] = {}
    runner, ledger, _ = _runner(bars, tmp_path / "run", assignments)
    clock_box["clock"] = runner.clock
    runner.run()
    assert len(refusals) == 1 and "fast" in refusals[0]
    current = store.current("bot1")
    assert current is not None and (current.params["fast"], current.params["slow"]) == (5, 20)
    orders = ledger.orders()
    later = orders.filter(pl.col("bar_ms") >= attempt)
    assert later.height > 5  # it kept trading after the refusal ...
    assert set(orders["assignment_version"].to_list()) == {current.version}  # ... on the old one
    assert [h["event"] for h in store.history("bot1")] == ["deployed", "refused"]


class CrashAfterSubmit:
    """A broker wrapper that dies (like SIGKILL) right after the venue accepted the N-th order."""

    def __init__(self, inner: PaperBroker, n: int) -> None:
        self.inner, self.n, self.name, self.live = inner, n, "paper", False
        self.sent: list[str] = []

    def submit(self, req: OrderRequest) -> OrderResult:
        res = self.inner.submit(req)
        self.sent.append(req.client_order_id)
        if len(self.sent) == self.n:
            raise SystemExit("killed")
        return res

    def fetch_order(self, cid: str, symbol: str) -> OrderResult | None:
        return self.inner.fetch_order(cid, symbol)

    def cancel_order(self, cid: str, symbol: str) -> OrderResult | None:
        return self.inner.cancel_order(cid, symbol)

    def balances(self) -> dict[str, float]:
        return self.inner.balances()


def test_a_crash_between_send_and_book_is_reconciled_not_resent(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    ref, ref_ledger, _ = _runner(bars, tmp_path / "ref", lambda: sma())
    ref.run()
    runner, ledger, paper = _runner(bars, tmp_path / "crash", lambda: sma())
    crashing = CrashAfterSubmit(paper, 7)
    runner.broker = crashing
    with pytest.raises(SystemExit):
        runner.run()
    lost = crashing.sent[-1]
    assert ledger.order(lost)["status"] == "submitting"  # type: ignore[index]  # sent, not booked
    runner.close()  # the crashed process's ledger and lock are gone
    paper.close()
    again, ledger2, paper2 = _runner(bars, tmp_path / "crash", lambda: sma())
    assert lost in again.reconcile()  # found at the broker by its client order id
    assert ledger2.order(lost)["status"] == "filled"  # type: ignore[index]
    again.run()
    assert ledger2.snapshot() == ref_ledger.snapshot()
    book = paper2._db.execute("SELECT client_order_id FROM paper_orders").fetchall()
    assert len(book) == len({c for (c,) in book}) == ledger2.orders().height


class StepClock:
    """A clock the test moves by hand (the runner only reads it)."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def now_ms(self) -> int:
        return self.ms

    def sleep_until(self, ms: int) -> bool:
        self.ms = ms
        return True


def test_paper_runner_on_a_binance_speaking_server(bars: pl.DataFrame, tmp_path: Path) -> None:
    """The live-paper path: closed klines and the ticker from a local Binance REST server via
    ccxt, paper fills at the ticker with the backtester's costs."""
    from trading_pipeline.bots.candles import ExchangeCandles
    from trading_pipeline.venues.exchange import make_exchange
    from trading_pipeline_tests.fakes.binance import running_fake_binance

    with running_fake_binance({("BTCUSDT", "1h"): bars}) as srv:
        candles = ExchangeCandles(make_exchange("binance", base_url=srv.url))
        t0 = to_ms(bars["open_time"][300])
        clock = StepClock(t0)
        paper = PaperBroker(candles, clock, interval="1h", starting_balances={"USDT": 300.0})
        ledger = Ledger(tmp_path / "ledger.sqlite", durable=False)
        a = Assignment("bot1", 1, ("BTCUSDT",), "1h", "buy_and_hold", 1, {}, 0.3, RiskLimits())
        runner = BotRunner(
            "bot1",
            ledger=ledger,
            broker=paper,
            candles=candles,
            clock=clock,
            assignments=lambda: a,
            initial_cash=300.0,
        )
        ex = make_exchange("binance", base_url=srv.url)
        tickers = []
        for k in range(3):
            now = t0 + k * 3_600_000 + 1_000  # a second after the close, as live
            clock.ms = now
            srv.set_now(now)
            tickers.append(float(ex.fetch_ticker("BTC/USDT")["last"]))
            closed = candles.closed_bars("BTCUSDT", "1h", now, 5)
            assert (
                to_ms(closed["open_time"][-1]) == t0 + (k - 1) * 3_600_000
            )  # the open candle is not used
            assert runner.step(now)
            assert not runner.step(now)  # the same bar twice: nothing
        fills = ledger.fills()
        assert fills["side"].to_list() == ["buy"]
        assert float(fills["price"][0]) == pytest.approx(tickers[0] * (1 + 0.0002), rel=1e-12)
        assert -float(fills["cash_delta"][0]) == pytest.approx(300.0, rel=1e-9)
        assert ledger.equity().height == 3


def test_a_new_capital_fraction_moves_cash_without_looking_like_a_loss(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    switch = to_ms(datetime(2020, 1, 25, 13, tzinfo=UTC))
    risk = RiskLimits(max_position_fraction=0.5)
    before = Assignment("bot1", 1, ("BTCUSDT",), "1h", "buy_and_hold", 1, {}, 0.3, risk)
    after = dataclasses.replace(before, version=2, capital_fraction=0.2)
    box: dict[str, Any] = {}
    runner, ledger, paper = _runner(
        bars,
        tmp_path,
        lambda: before if box["clock"].now_ms() < switch else after,
        fleet_capital=1000.0,
    )
    box["clock"] = runner.clock
    runner.run()
    t = ledger.transfers()
    assert t["amount"].to_list() == pytest.approx([-100.0]) and int(t["time_ms"][0]) == switch
    assert paper.balances()["USDT"] == pytest.approx(
        ledger.cash(), rel=1e-12
    )  # the paper account moved too
    kinds = ledger.risk_events()["kind"].to_list()
    assert kinds == ["capital"]  # a third of the equity left, and no daily-loss or drawdown trip


def test_a_live_runner_survives_a_failing_step_and_stops_on_request(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    from trading_pipeline.bots.clock import WallClock

    stopped = {"v": True}
    assert WallClock(stop=lambda: stopped["v"]).sleep_until(10**15) is False  # SIGTERM: no wait

    class Flaky(FrameCandles):
        calls = 0

        def closed_bars(self, symbol: str, interval: str, now_ms: int, n: int) -> pl.DataFrame:
            Flaky.calls += 1
            if Flaky.calls == 3:
                raise ConnectionError("venue unreachable")
            return super().closed_bars(symbol, interval, now_ms, n)

    end = datetime(2020, 1, 12, tzinfo=UTC)
    candles = Flaky({"BTCUSDT": bars}, end_ms=to_ms(end))
    clock = ReplayClock(to_ms(START), to_ms(end))
    paper = PaperBroker(candles, clock, interval="1h", starting_balances={"USDT": 300.0})
    ledger = Ledger(tmp_path / "ledger.sqlite", durable=False)
    runner = BotRunner(
        "bot1",
        ledger=ledger,
        broker=paper,
        candles=candles,
        clock=clock,
        assignments=lambda: sma(),
        initial_cash=300.0,
    )
    with pytest.raises(ConnectionError):
        runner.run()
    Flaky.calls = 0
    runner.close()
    ledger2 = Ledger(tmp_path / "ledger2.sqlite", durable=False)
    clock2 = ReplayClock(to_ms(START), to_ms(end))
    runner2 = BotRunner(
        "bot1",
        ledger=ledger2,
        broker=PaperBroker(candles, clock2, interval="1h", starting_balances={"USDT": 300.0}),
        candles=candles,
        clock=clock2,
        assignments=lambda: sma(),
        initial_cash=300.0,
    )
    assert runner2.run(keep_going=True) == 47  # 48 closes, one failed step skipped


def test_the_familys_stop_and_take_profit_are_honoured(bars: pl.DataFrame, tmp_path: Path) -> None:
    """rsi_reversion sets a 1 % stop and a 1.5 % take-profit at entry: the runner checks them
    on every closed bar and exits at the next price (the backtester exits inside the bar, so
    these trades are listed by reconcile as divergences, by design)."""
    a = Assignment("bot2", 1, ("BTCUSDT",), "1h", "rsi_reversion", 1, {}, 0.25, NO_LIMITS)
    r = replay_bot(a, {"BTCUSDT": bars}, start=START, end=END, initial_cash=250.0, workdir=tmp_path)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    orders = ledger.orders().filter(pl.col("status") == "filled")
    reasons = set(orders["reason"].to_list())
    assert {"stop", "take_profit"} <= reasons
    fills = r.fills.sort("time_ms")
    entry = None
    for f in fills.iter_rows(named=True):
        if f["side"] == "buy":
            entry = f["price"]
            continue
        why = orders.filter(pl.col("client_order_id") == f["client_order_id"])["reason"][0]
        closed = bars.filter(pl.col("open_time").dt.epoch("ms") == f["time_ms"] - 3_600_000)
        assert entry is not None
        if why == "stop":
            assert float(closed["low"][0]) <= entry * (1 - 0.01)
        elif why == "take_profit":
            assert float(closed["high"][0]) >= entry * (1 + 0.015)


def test_an_assignment_that_never_passed_the_gate_is_refused_on_load(
    bars: pl.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hand-written assignment.json with 500% of the capital, a NaN daily limit, a symbol
    or an interval off the bot's spec is refused by the deploy gate's validator on load; the
    assignment in force stays, and the refusal is logged once."""
    good = sma(version=1)
    served = [good]
    runner, _, _ = _runner(bars, tmp_path, lambda: served[-1])
    assert runner.assignment().version == 1
    bad = [
        dataclasses.replace(good, version=2, capital_fraction=5.0),
        dataclasses.replace(good, version=3, risk=RiskLimits(daily_loss=float("nan"))),
        dataclasses.replace(good, version=4, symbols=("DOGEUSDT",)),
        dataclasses.replace(good, version=5, interval="1s"),
    ]
    for a in bad:
        served.append(a)
        with caplog.at_level("ERROR"):
            assert runner.assignment().version == 1
            assert runner.assignment().version == 1  # a second look says nothing new
        refusals = [r for r in caplog.records if f"assignment v{a.version} refused" in r.message]
        assert len(refusals) == 1
        caplog.clear()
    served.append(dataclasses.replace(good, version=6, params={"fast": 8, "slow": 30}))
    assert runner.assignment().version == 6
    runner.close()


BAR0 = datetime(2020, 1, 1, tzinfo=UTC)


def _exit_while_down_bars() -> pl.DataFrame:
    """sma_cross(2, 3) enters at bar 40, exits at bar 51 (a drop), then drifts down with no
    signal at all."""
    c = np.array(
        [100.0 - 0.5 * i for i in range(40)]
        + [110.0 + i for i in range(11)]
        + [100.0, 90.0, 85.0]
        + [84.0 - 0.2 * i for i in range(20)]
    )
    o = np.concatenate([[c[0]], c[:-1]])
    t = to_ms(BAR0) + np.arange(c.size, dtype=np.int64) * 3_600_000
    return conform(
        pl.DataFrame(
            {
                "open_time": pl.from_epoch(pl.Series(t), "ms"),
                "open": o,
                "high": np.maximum(o, c) * 1.001,
                "low": np.minimum(o, c) * 0.999,
                "close": c,
                "volume": np.full(c.size, 10.0),
                "close_time": pl.from_epoch(pl.Series(t + 3_599_999), "ms"),
            }
        )
    )


@pytest.mark.parametrize("catch_up", [True, False])
def test_an_exit_that_fired_while_the_runner_was_down_is_acted_on_at_restart(
    tmp_path: Path, catch_up: bool
) -> None:
    bars = _exit_while_down_bars()
    h = 3_600_000
    t = to_ms(BAR0)
    a = sma(2, 3)

    def run(start_bar: int, end_bar: int) -> Ledger:
        candles = FrameCandles({"BTCUSDT": bars})
        clock = ReplayClock(t + start_bar * h, t + end_bar * h)
        broker = PaperBroker(
            candles,
            clock,
            interval="1h",
            starting_balances={"USDT": 300.0},
            path=tmp_path / "paper.sqlite",
        )
        ledger = Ledger(tmp_path / "ledger.sqlite", durable=False)
        runner = BotRunner(
            "bot1",
            ledger=ledger,
            broker=broker,
            candles=candles,
            clock=clock,
            assignments=lambda: a,
            initial_cash=300.0,
        )
        runner.run()
        runner.lock.release()
        return ledger

    first = run(30, 50)  # bought at the bar-40 cross, still long at bar 50's close
    assert first.positions().get("BTCUSDT", 0.0) > 0
    first.close()
    # down over bars 50..55: the exit fired at bar 51's close; back at bar 56
    restart = 56 if catch_up else 51
    again = run(restart, 60)
    sells = again.fills().filter(pl.col("side") == "sell")
    orders = again.orders().filter((pl.col("side") == "sell") & (pl.col("reason") != "stop"))
    assert sells.height == 1 and again.positions() == {}
    if catch_up:  # the first step after the restart, at bar 56's close (+1 h)
        assert orders["reason"].to_list() == ["missed_exit"]
        assert int(sells["time_ms"][0]) == t + 57 * h
    else:  # back in time for bar 51's close: the ordinary exit
        assert orders["reason"].to_list() == ["exit"]
    again.close()


def test_every_step_reports_one_line_matching_the_ledger(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    from trading_pipeline.bots.step_line import StepReport

    reports: list[StepReport] = []
    runner, ledger, _ = _runner(bars, tmp_path, lambda: sma())
    runner.on_step = reports.append
    steps = runner.run()
    assert steps == len(reports) > 100
    orders = ledger.orders()
    reported = {q.client_order_id: r.status for rep in reports for q, r in rep.orders}
    assert sorted(reported) == sorted(orders["client_order_id"].to_list())  # every order, once
    filled = orders.filter(pl.col("status") == "filled")["client_order_id"].to_list()
    # market orders were filled when the step reported them (resting stops were still open)
    market = [c for c in filled if c.endswith(("-buy", "-sell"))]
    assert market and all(reported[c] == "filled" for c in market)
    lines = [r.line() for r in reports]
    assert all(line.startswith("bot1 2020-") and "equity " in line for line in lines)
    buys = [line for line in lines if " BUY " in line]
    assert buys and all("BTCUSDT enter" in line and "pos BTCUSDT" in line for line in buys)
    assert any(" SELL " in line and "BTCUSDT exit" in line for line in lines)
    # the last report's positions and the ledger agree
    final = {s: q for s, q in reports[-1].positions.items() if q}
    assert final == pytest.approx(ledger.positions())
