"""A bot's ledger: orders, fills, positions, cash, equity and risk events in one SQLite file.

Why SQLite and why this shape: every runner step (one closed candle) is written in ONE
transaction — order results, fills, positions, cash, the equity mark, risk events and the
"bar done" marker — so a crash leaves either the whole step or none of it. Orders are written
first as intents (status ``submitting``) in their own transaction before they go to the broker;
a restarted runner finds them and asks the broker what became of them (by client order id)
instead of sending again. ``client_order_id`` is the primary key of ``orders`` and UNIQUE in
``fills``: the database itself refuses a doubled order or a doubled fill.

Times are integers (ms since the epoch, UTC) from the runner's clock, so a replay's ledger is
byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from trading_pipeline.bots.broker import OrderRequest, OrderResult

QUOTES = ("USDT", "FDUSD", "USDC", "BUSD", "TUSD", "USD", "EUR", "BTC", "ETH", "BNB")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    assignment_version INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty REAL NOT NULL,
    reason TEXT NOT NULL,
    bar_ms INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    filled_qty REAL NOT NULL DEFAULT 0,
    avg_price REAL,
    fee REAL NOT NULL DEFAULT 0,
    fee_currency TEXT NOT NULL DEFAULT '',
    exchange_order_id TEXT,
    status_reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL UNIQUE REFERENCES orders(client_order_id),
    time_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty REAL NOT NULL,
    price REAL NOT NULL,
    fee REAL NOT NULL,
    fee_currency TEXT NOT NULL,
    cash_delta REAL NOT NULL,
    base_delta REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT PRIMARY KEY, qty REAL NOT NULL, cost REAL NOT NULL, entry_ms INTEGER
);
CREATE TABLE IF NOT EXISTS equity (
    time_ms INTEGER PRIMARY KEY, equity REAL NOT NULL, cash REAL NOT NULL, exposure REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    bar_close_ms INTEGER PRIMARY KEY, assignment_version INTEGER NOT NULL, fingerprint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS risk_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transfers (
    time_ms INTEGER PRIMARY KEY, amount REAL NOT NULL, reason TEXT NOT NULL
);
"""

PENDING = ("submitting", "open")


def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTCUSDT`` → ``("BTC", "USDT")`` (the quote is the longest known suffix); a
    venue-qualified ``binanceus:BTCUSDT`` (bots/routing.py) splits the same way."""
    symbol = symbol.rpartition(":")[2]
    for q in sorted(QUOTES, key=len, reverse=True):
        if symbol.endswith(q) and len(symbol) > len(q):
            return symbol[: -len(q)], q
    return symbol, ""


@dataclass(frozen=True)
class Fill:
    """An executed order as the ledger books it (``cash_delta`` in the quote currency)."""

    client_order_id: str
    time_ms: int
    symbol: str
    side: str
    qty: float
    price: float
    fee: float
    fee_currency: str
    cash_delta: float
    base_delta: float


def fill_of(req_symbol: str, side: str, res: OrderResult, time_ms: int) -> Fill | None:
    """The ledger entry for a broker result (None when nothing was filled).

    A fee in the quote currency comes off the cash; one in the base asset (Binance charges buy
    fees in the received coin) comes off the position; any other (BNB) is recorded only.
    """
    if res.filled_qty <= 0 or res.avg_price is None:
        return None
    base, quote = split_symbol(req_symbol)
    notional = res.filled_qty * res.avg_price
    fee_q = res.fee if res.fee_currency in (quote, "") else 0.0
    fee_b = res.fee if res.fee_currency == base else 0.0
    if side == "buy":
        cash_delta = -(notional + fee_q)
        base_delta = res.filled_qty - fee_b
    else:
        cash_delta = notional - fee_q
        base_delta = -(res.filled_qty + fee_b)
    return Fill(
        res.client_order_id,
        time_ms,
        req_symbol,
        side,
        res.filled_qty,
        res.avg_price,
        res.fee,
        res.fee_currency or quote,
        cash_delta,
        base_delta,
    )


@dataclass
class StepRecord:
    """Everything one runner step changes, written in one transaction by :meth:`Ledger.record_step`."""

    bar_close_ms: int
    assignment_version: int
    fingerprint: str
    results: Sequence[tuple[OrderRequest, OrderResult]] = ()
    fill_ms: int = 0
    equity_ms: int | None = None
    equity: tuple[float, float, float] = (0.0, 0.0, 0.0)  # equity, cash, exposure at the mark
    risk_events: Sequence[tuple[str, dict[str, Any]]] = ()
    state: Mapping[str, Any] = field(default_factory=dict)
    transfer: tuple[float, str] | None = None  # capital moved in (+) or out (-) and why


class Ledger:
    """One bot's ledger at ``path`` (created on first use)."""

    def __init__(self, path: str | Path, *, durable: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---- set-up -------------------------------------------------------------------------
    def open_account(
        self, bot: str, initial_cash: float, quote: str = "USDT", fleet_capital: float | None = None
    ) -> None:
        """Record the bot, its starting cash and the fleet capital its fraction is of, the
        first time; later calls change nothing."""
        with self._tx() as db:
            if fleet_capital is not None:
                db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('fleet_capital', ?)",
                    (repr(float(fleet_capital)),),
                )
            db.execute("INSERT OR IGNORE INTO meta VALUES ('bot', ?)", (bot,))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('quote', ?)", (quote,))
            cur = db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('initial_cash', ?)",
                (repr(float(initial_cash)),),
            )
            if cur.rowcount:
                db.execute(
                    "INSERT OR REPLACE INTO state VALUES ('cash', ?)", (repr(float(initial_cash)),)
                )

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def initial_cash(self) -> float:
        v = self.meta().get("initial_cash")
        return float(v) if v is not None else 0.0

    # ---- reads --------------------------------------------------------------------------
    def _frame(self, sql: str, args: Iterable[Any] = ()) -> pl.DataFrame:
        cur = self._db.execute(sql, tuple(args))
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
        return pl.DataFrame(rows, schema=cols, orient="row", infer_schema_length=None)

    def orders(self) -> pl.DataFrame:
        return self._frame("SELECT * FROM orders ORDER BY bar_ms, symbol, side")

    def fills(self) -> pl.DataFrame:
        return self._frame("SELECT * FROM fills ORDER BY seq")

    def positions(self) -> dict[str, float]:
        rows = self._db.execute("SELECT symbol, qty FROM positions WHERE qty != 0 ORDER BY symbol")
        return {s: float(q) for s, q in rows.fetchall()}

    def position_cost(self, symbol: str) -> float:
        row = self._db.execute("SELECT cost FROM positions WHERE symbol = ?", (symbol,)).fetchone()
        return float(row[0]) if row else 0.0

    def cash(self) -> float:
        v = self.get_state("cash")
        return float(v) if v is not None else 0.0

    def equity(self) -> pl.DataFrame:
        """``time`` (UTC datetime of the mark, a bar's close), ``equity``, ``cash``, ``exposure``."""
        df = self._frame("SELECT time_ms, equity, cash, exposure FROM equity ORDER BY time_ms")
        if df.height == 0:
            return pl.DataFrame(
                schema={
                    "time": pl.Datetime("ms", "UTC"),
                    "equity": pl.Float64,
                    "cash": pl.Float64,
                    "exposure": pl.Float64,
                }
            )
        return df.select(
            pl.from_epoch("time_ms", "ms")
            .dt.replace_time_zone("UTC")
            .cast(pl.Datetime("ms", "UTC"))
            .alias("time"),
            "equity",
            "cash",
            "exposure",
        )

    def transfers(self) -> pl.DataFrame:
        """Capital moved into (+) or out of (-) the bot when its capital fraction changed."""
        return self._frame("SELECT time_ms, amount, reason FROM transfers ORDER BY time_ms")

    def risk_events(self) -> pl.DataFrame:
        return self._frame("SELECT seq, time_ms, kind, detail FROM risk_events ORDER BY seq")

    def fills_of_reason(self, reason: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Fills of orders sent for ``reason`` (e.g. ``stop``) timed in ``[start_ms, end_ms)``."""
        cur = self._db.execute(
            "SELECT f.* FROM fills f JOIN orders o USING (client_order_id)"
            " WHERE o.reason = ? AND f.time_ms >= ? AND f.time_ms < ? ORDER BY f.seq",
            (reason, start_ms, end_ms),
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def last_step_ms(self) -> int | None:
        row = self._db.execute("SELECT MAX(bar_close_ms) FROM steps").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def order(self, client_order_id: str) -> dict[str, Any] | None:
        cur = self._db.execute("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    def pending_orders(self) -> list[dict[str, Any]]:
        """Orders sent (or about to be) whose outcome the ledger does not know yet."""
        cur = self._db.execute(
            f"SELECT * FROM orders WHERE status IN ({','.join('?' * len(PENDING))}) ORDER BY bar_ms",
            PENDING,
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def holdings_before(self, time_ms: int) -> tuple[float, dict[str, float]]:
        """Cash and positions as they were before any fill at or after ``time_ms``.

        A step marks equity with what was held over the bar that just closed; if the start-up
        reconciliation already booked this step's own fills, they are taken back out here so a
        restarted step marks exactly what an uninterrupted one would.
        """
        cash = self.cash()
        pos = {s: q for s, q in self._db.execute("SELECT symbol, qty FROM positions").fetchall()}
        rows = self._db.execute(
            "SELECT symbol, cash_delta, base_delta FROM fills WHERE time_ms >= ?", (time_ms,)
        ).fetchall()
        for symbol, cash_delta, base_delta in rows:
            cash -= float(cash_delta)
            pos[symbol] = float(pos.get(symbol, 0.0)) - float(base_delta)
        return cash, {s: float(q) for s, q in pos.items() if abs(float(q)) > 1e-12}

    def get_state_json(self, key: str, default: Any = None) -> Any:
        v = self.get_state(key)
        return default if v is None else json.loads(v)

    def get_state(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def last_equity(self) -> float | None:
        row = self._db.execute("SELECT equity FROM equity ORDER BY time_ms DESC LIMIT 1").fetchone()
        return float(row[0]) if row else None

    def equity_at_or_before(self, time_ms: int) -> float | None:
        row = self._db.execute(
            "SELECT equity FROM equity WHERE time_ms <= ? ORDER BY time_ms DESC LIMIT 1", (time_ms,)
        ).fetchone()
        return float(row[0]) if row else None

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows in a stable order (for comparing two ledgers)."""
        order = {
            "meta": "key",
            "orders": "client_order_id",
            "fills": "client_order_id",
            "positions": "symbol",
            "equity": "time_ms",
            "steps": "bar_close_ms",
            "risk_events": "time_ms, kind",
            "state": "key",
            "transfers": "time_ms",
        }
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table, by in order.items():
            cols = "time_ms, kind, detail" if table == "risk_events" else "*"
            cols = (
                "client_order_id, time_ms, symbol, side, qty, price, fee, cash_delta"
                if table == "fills"
                else cols
            )
            out[table] = [
                tuple(r) for r in self._db.execute(f"SELECT {cols} FROM {table} ORDER BY {by}")
            ]
        return out

    # ---- writes -------------------------------------------------------------------------
    def record_intents(
        self, reqs: Sequence[OrderRequest], *, version: int, bar_ms: int, sent_ms: int
    ) -> None:
        """Write orders as ``submitting`` BEFORE they go to the broker (write-ahead)."""
        if not reqs:
            return
        with self._tx() as db:
            for r in reqs:
                db.execute(
                    "INSERT OR IGNORE INTO orders (client_order_id, assignment_version, symbol, side,"
                    " qty, reason, bar_ms, sent_ms, status) VALUES (?,?,?,?,?,?,?,?, 'submitting')",
                    (
                        r.client_order_id,
                        version,
                        r.symbol,
                        r.side,
                        r.qty,
                        r.reason,
                        bar_ms,
                        sent_ms,
                    ),
                )

    def _apply(
        self, db: sqlite3.Connection, req: OrderRequest, res: OrderResult, fill_ms: int
    ) -> None:
        db.execute(
            "UPDATE orders SET status=?, filled_qty=?, avg_price=?, fee=?, fee_currency=?,"
            " exchange_order_id=?, status_reason=? WHERE client_order_id=?",
            (
                res.status,
                res.filled_qty,
                res.avg_price,
                res.fee,
                res.fee_currency,
                res.exchange_order_id,
                res.reason,
                res.client_order_id,
            ),
        )
        if res.status not in ("filled", "canceled", "rejected"):
            return
        f = fill_of(req.symbol, req.side, res, fill_ms)
        if f is None:
            return
        exists = db.execute(
            "SELECT 1 FROM fills WHERE client_order_id=?", (f.client_order_id,)
        ).fetchone()
        if exists:  # already booked (e.g. by the start-up reconciliation): never twice
            return
        db.execute(
            "INSERT INTO fills (client_order_id, time_ms, symbol, side, qty, price, fee, fee_currency,"
            " cash_delta, base_delta) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                f.client_order_id,
                f.time_ms,
                f.symbol,
                f.side,
                f.qty,
                f.price,
                f.fee,
                f.fee_currency,
                f.cash_delta,
                f.base_delta,
            ),
        )
        row = db.execute(
            "SELECT qty, cost, entry_ms FROM positions WHERE symbol=?", (f.symbol,)
        ).fetchone()
        qty, cost, entry_ms = (float(row[0]), float(row[1]), row[2]) if row else (0.0, 0.0, None)
        if f.side == "buy":
            entry_ms = entry_ms if qty > 0 else f.time_ms
            qty, cost = qty + f.base_delta, cost - f.cash_delta
        else:
            frac = min(1.0, -f.base_delta / qty) if qty > 0 else 1.0
            qty, cost = qty + f.base_delta, cost * (1.0 - frac)
        if abs(qty) <= 1e-12:
            qty, cost, entry_ms = 0.0, 0.0, None
        db.execute(
            "INSERT OR REPLACE INTO positions VALUES (?,?,?,?)", (f.symbol, qty, cost, entry_ms)
        )
        cash = float(db.execute("SELECT value FROM state WHERE key='cash'").fetchone()[0])
        db.execute("INSERT OR REPLACE INTO state VALUES ('cash', ?)", (repr(cash + f.cash_delta),))

    def apply_results(
        self, pairs: Sequence[tuple[OrderRequest, OrderResult]], *, fill_ms: int
    ) -> None:
        """Book broker results outside a step (the start-up reconciliation), one transaction."""
        with self._tx() as db:
            for req, res in pairs:
                self._apply(db, req, res, fill_ms)

    def record_step(self, step: StepRecord) -> None:
        """Book one runner step atomically (see the module docstring)."""
        with self._tx() as db:
            if step.equity_ms is not None:
                db.execute(
                    "INSERT OR REPLACE INTO equity VALUES (?,?,?,?)", (step.equity_ms, *step.equity)
                )
            if step.transfer is not None:
                amount, why = step.transfer
                db.execute("INSERT INTO transfers VALUES (?,?,?)", (step.bar_close_ms, amount, why))
                cash = float(db.execute("SELECT value FROM state WHERE key='cash'").fetchone()[0])
                db.execute(
                    "INSERT OR REPLACE INTO state VALUES ('cash', ?)", (repr(cash + amount),)
                )
            for req, res in step.results:
                self._apply(db, req, res, step.fill_ms)
            for kind, detail in step.risk_events:
                db.execute(
                    "INSERT INTO risk_events (time_ms, kind, detail) VALUES (?,?,?)",
                    (step.bar_close_ms, kind, json.dumps(detail, sort_keys=True)),
                )
            for k, v in step.state.items():
                db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (k, json.dumps(v)))
            db.execute(
                "INSERT OR REPLACE INTO steps VALUES (?,?,?)",
                (step.bar_close_ms, step.assignment_version, step.fingerprint),
            )

    def adopt_positions(
        self, qtys: Mapping[str, float], *, time_ms: int, detail: Mapping[str, Any]
    ) -> None:
        """Take the account's quantities for these symbols (an acknowledged balance divergence:
        cost scaled, no cash moved), clear the ``diverged`` state and record the event."""
        with self._tx() as db:
            for symbol, qty in qtys.items():
                row = db.execute(
                    "SELECT qty, cost, entry_ms FROM positions WHERE symbol=?", (symbol,)
                ).fetchone()
                old, cost, entry = (float(row[0]), float(row[1]), row[2]) if row else (0, 0, None)
                cost = cost * qty / old if old > 0 else 0.0
                db.execute(
                    "INSERT OR REPLACE INTO positions VALUES (?,?,?,?)",
                    (symbol, qty, cost, entry if qty > 0 else None),
                )
            db.execute(
                "INSERT INTO risk_events (time_ms, kind, detail) VALUES (?,?,?)",
                (time_ms, "balances_acknowledged", json.dumps(detail, sort_keys=True)),
            )
            db.execute("INSERT OR REPLACE INTO state VALUES ('diverged', 'null')")

    def mark_status(self, client_order_id: str, status: str, reason: str) -> None:
        """Set an order's status without a fill (e.g. ``not_sent``: the venue never saw it)."""
        with self._tx() as db:
            db.execute(
                "UPDATE orders SET status=?, status_reason=? WHERE client_order_id=?",
                (status, reason, client_order_id),
            )
