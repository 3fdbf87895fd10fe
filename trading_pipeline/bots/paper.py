"""The paper broker: fills market orders exactly as the backtester does, and remembers them.

Price: the candle source's price at the clock's "now" — in a replay the open of the bar that
starts now (the backtester's next-open fill), live the ticker. Costs: the backtester's
:class:`CostModel` (fee per side, slippage against the trader), with the kernel's arithmetic —
a buy of ``qty`` costs ``qty × open × (1 + slip)`` plus that times the fee, a sell receives
``qty × open × (1 - slip)`` less the fee — so a runner sizing a buy as ``value / (1 + fee) /
(open × (1 + slip))`` spends exactly ``value`` like the kernel's ``_open``.

Protective stops (``OrderRequest(type="stop")``, the runner's daily-loss stop) rest in the book
and are settled when looked up (``fetch_order``/``cancel_order``): the first bar that opened at
or after the stop was placed and traded at or below it fills it at ``min(stop, that bar's open)``
(a bar that gaps through the stop fills at its open), less slippage and the fee, timed at that
bar's open — what an exchange's stop-market order does, as far as hourly bars can tell.

Its orders and balances live in their own SQLite file (the "exchange's memory"), separate from
the bot's ledger, so a runner killed between sending an order and booking it finds the order
here by client order id on restart — the situation a real exchange puts it in.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, cast

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.bots.broker import OrderRequest, OrderResult, OrderStatus
from trading_pipeline.bots.candles import CandleSource, bar_ms
from trading_pipeline.bots.clock import Clock
from trading_pipeline.bots.ledger import split_symbol

_SCHEMA = """
CREATE TABLE IF NOT EXISTS paper_orders (
    client_order_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, qty REAL NOT NULL, time_ms INTEGER NOT NULL, status TEXT NOT NULL,
    filled_qty REAL NOT NULL, avg_price REAL, fee REAL NOT NULL, fee_currency TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS paper_balances (asset TEXT PRIMARY KEY, free REAL NOT NULL);
CREATE TABLE IF NOT EXISTS paper_transfers (id TEXT PRIMARY KEY, asset TEXT NOT NULL, amount REAL NOT NULL);
CREATE TABLE IF NOT EXISTS paper_stops (
    client_order_id TEXT PRIMARY KEY, stop_price REAL NOT NULL, filled_ms INTEGER
);
"""

TOLERANCE = 1e-9  # relative: float rounding of "spend all the cash" must not be "insufficient"


class PaperBroker:
    """A :class:`~trading_pipeline.bots.broker.Broker` that never touches an exchange."""

    name = "paper"
    live = False

    def __init__(
        self,
        prices: CandleSource,
        clock: Clock,
        *,
        interval: str,
        starting_balances: dict[str, float],
        costs: CostModel | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.prices = prices
        self.clock = clock
        self.interval = interval
        self.costs = costs or CostModel()
        target = ":memory:" if path is None else str(path)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(target, isolation_level=None, timeout=30.0)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN IMMEDIATE")
        for asset, amount in starting_balances.items():
            self._db.execute("INSERT OR IGNORE INTO paper_balances VALUES (?, ?)", (asset, amount))
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def use_costs(self, costs: CostModel) -> None:
        """Charge ``costs`` from the next order on (the runner passes its assignment's)."""
        self.costs = costs

    def balances(self) -> dict[str, float]:
        return {a: float(f) for a, f in self._db.execute("SELECT asset, free FROM paper_balances")}

    def transfer(self, transfer_id: str, asset: str, amount: float) -> None:
        """Move ``amount`` of ``asset`` in (+) or out (-) of the paper account, once per id
        (a re-allocation of the fleet's capital)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute(
                "INSERT OR IGNORE INTO paper_transfers VALUES (?,?,?)", (transfer_id, asset, amount)
            )
            if cur.rowcount:
                row = db.execute(
                    "SELECT free FROM paper_balances WHERE asset=?", (asset,)
                ).fetchone()
                free = max(0.0, (float(row[0]) if row else 0.0) + amount)
                db.execute("INSERT OR REPLACE INTO paper_balances VALUES (?, ?)", (asset, free))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def fetch_order(self, client_order_id: str, symbol: str) -> OrderResult | None:
        self._settle_stop(client_order_id)
        return self._order(client_order_id)

    def cancel_order(self, client_order_id: str, symbol: str) -> OrderResult | None:
        """Cancel a resting stop; its result (``filled`` when it triggered first, None when the
        book never saw it)."""
        self._settle_stop(client_order_id)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "UPDATE paper_orders SET status='canceled' WHERE client_order_id=? AND status='open'",
                (client_order_id,),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return self._order(client_order_id)

    def _settle_stop(self, client_order_id: str) -> None:
        """Fill a resting stop if a bar since it was placed traded through it (see the module
        docstring); a no-op for anything else."""
        row = self._db.execute(
            "SELECT o.symbol, o.qty, o.time_ms, s.stop_price FROM paper_orders o JOIN paper_stops s"
            " USING (client_order_id) WHERE o.client_order_id=? AND o.status='open'",
            (client_order_id,),
        ).fetchone()
        if row is None:
            return
        symbol, qty, placed, stop = str(row[0]), float(row[1]), int(row[2]), float(row[3])
        now = self.clock.now_ms()
        step = bar_ms(self.interval)
        if now < placed + step:  # no bar has closed since (a restarted replay starts earlier)
            return
        bars = self.prices.closed_bars(symbol, self.interval, now, (now - placed) // step + 2)
        if bars.height == 0:
            return
        t = bars["open_time"].dt.epoch("ms").to_list()
        lows, opens = bars["low"].to_list(), bars["open"].to_list()
        hit = next((k for k in range(len(t)) if t[k] >= placed and lows[k] <= stop), None)
        if hit is None:
            return
        base, quote = split_symbol(symbol)
        bal = self.balances()
        qty = min(qty, bal.get(base, 0.0))
        px = min(stop, float(opens[hit])) * (1.0 - self.costs.slippage)
        notional = qty * px
        fee = notional * self.costs.fee
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if qty > 0:
                db.execute(
                    "UPDATE paper_orders SET status='filled', filled_qty=?, avg_price=?, fee=?"
                    " WHERE client_order_id=?",
                    (qty, px, fee, client_order_id),
                )
                db.execute(
                    "INSERT OR REPLACE INTO paper_balances VALUES (?, ?)",
                    (base, max(0.0, bal.get(base, 0.0) - qty)),
                )
                db.execute(
                    "INSERT OR REPLACE INTO paper_balances VALUES (?, ?)",
                    (quote, bal.get(quote, 0.0) + notional - fee),
                )
            else:
                db.execute(
                    "UPDATE paper_orders SET status='canceled', reason='nothing to sell'"
                    " WHERE client_order_id=?",
                    (client_order_id,),
                )
            db.execute(
                "UPDATE paper_stops SET filled_ms=? WHERE client_order_id=?",
                (int(t[hit]), client_order_id),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _order(self, client_order_id: str) -> OrderResult | None:
        row = self._db.execute(
            "SELECT o.client_order_id, status, filled_qty, avg_price, fee, fee_currency, seq,"
            " reason, s.filled_ms FROM paper_orders o LEFT JOIN paper_stops s"
            " USING (client_order_id) WHERE o.client_order_id = ?",
            (client_order_id,),
        ).fetchone()
        if row is None:
            return None
        cid, status, filled, avg, fee, fee_ccy, seq, reason, filled_ms = row
        return OrderResult(
            cid,
            cast(OrderStatus, status),
            float(filled),
            avg,
            float(fee),
            fee_ccy,
            f"paper-{seq}",
            reason,
            int(filled_ms) if filled_ms is not None else None,
        )

    def submit(self, req: OrderRequest) -> OrderResult:
        known = self.fetch_order(req.client_order_id, req.symbol)
        if known is not None:  # idempotent: the first result, never a second order
            return known
        if req.type == "stop":
            return self._place_stop(req)
        base, quote = split_symbol(req.symbol)
        now = self.clock.now_ms()
        px = self.prices.price(req.symbol, self.interval, now)
        bal = self.balances()
        status, filled, avg, fee, reason = "rejected", 0.0, None, 0.0, ""
        if req.type != "market":
            reason = f"unsupported order type {req.type}"
        elif not (req.qty > 0):
            reason = "quantity must be positive"
        elif px is None:
            reason = f"no price for {req.symbol} at {now}"
        else:
            slip = self.costs.slippage
            fill_px = px * (1.0 + slip) if req.side == "buy" else px * (1.0 - slip)
            notional = req.qty * fill_px
            fee = notional * self.costs.fee
            if req.side == "buy":
                need, have = notional + fee, bal.get(quote, 0.0)
                if need > have * (1.0 + TOLERANCE):
                    reason, fee = (
                        f"insufficient balance: need {need:.8f} {quote}, have {have:.8f}",
                        0.0,
                    )
                else:
                    bal[quote] = max(0.0, have - need)
                    bal[base] = bal.get(base, 0.0) + req.qty
                    status, filled, avg = "filled", req.qty, fill_px
            else:
                have = bal.get(base, 0.0)
                if req.qty > have * (1.0 + TOLERANCE):
                    reason, fee = f"insufficient balance: sell {req.qty} {base}, have {have}", 0.0
                else:
                    bal[base] = max(0.0, have - req.qty)
                    bal[quote] = bal.get(quote, 0.0) + notional - fee
                    status, filled, avg = "filled", req.qty, fill_px
        updates = (
            [
                ("INSERT OR REPLACE INTO paper_balances VALUES (?, ?)", (a, bal[a]))
                for a in (base, quote)
            ]
            if status == "filled"
            else []
        )
        return self._book(req, now, status, filled, avg, fee, quote, reason, updates)

    def _place_stop(self, req: OrderRequest) -> OrderResult:
        """Rest a protective sell stop in the book (settled by :meth:`_settle_stop`)."""
        _, quote = split_symbol(req.symbol)
        ok = req.side == "sell" and req.qty > 0 and (req.stop_price or 0.0) > 0
        status, reason = ("open", "") if ok else ("rejected", "a stop is a sell with a price")
        updates = (
            [
                (
                    "INSERT INTO paper_stops VALUES (?, ?, NULL)",
                    (req.client_order_id, float(req.stop_price or 0.0)),
                )
            ]
            if ok
            else []
        )
        return self._book(req, self.clock.now_ms(), status, 0.0, None, 0.0, quote, reason, updates)

    def _book(
        self,
        req: OrderRequest,
        now: int,
        status: str,
        filled: float,
        avg: float | None,
        fee: float,
        quote: str,
        reason: str,
        updates: list[tuple[str, tuple[Any, ...]]],
    ) -> OrderResult:
        """Record an order and the book changes it makes (balances, a resting stop) in one
        transaction, and answer like an exchange would."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = db.execute("SELECT COUNT(*) FROM paper_orders").fetchone()[0] + 1
            db.execute(
                "INSERT INTO paper_orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (req.client_order_id, seq, req.symbol, req.side, req.qty, now, status, filled,
                 avg, fee, quote, reason),
            )  # fmt: skip
            for sql, args in updates:
                db.execute(sql, args)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return OrderResult(
            req.client_order_id,
            cast(OrderStatus, status),
            filled,
            avg,
            fee,
            quote,
            f"paper-{seq}",
            reason,
        )
