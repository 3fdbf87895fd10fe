"""Several venues behind one broker: orders routed by venue-qualified symbol.

bot4 (arbitrage) trades the same coin on two venues at once. Its symbols carry the venue:
``binanceus:BTCUSDT`` and ``coinbase:BTCUSD`` (``<venue>:<BASE><QUOTE>``, read with
:func:`trading_pipeline.venues.symbols.parse_symbol`), so the quote currency of each venue stays
in the name — USDT on Binance US, USD on Coinbase — and nothing equates them silently: the
arbitrage pair is accepted only with the quote pair named (:data:`PAR_QUOTES`), and the runner's
single cash figure counts the two at par, exactly as ``backtest_multi`` does.

:class:`RoutingBroker` is a :class:`~trading_pipeline.bots.broker.Broker` holding one broker per
venue (paper accounts in a replay, ccxt brokers live): ``submit``/``fetch_order`` go to the
venue the symbol names (with the venue's own symbol), ``balances`` are per venue
(``"coinbase:USD"``). Each venue keeps its own balances: nothing moves between venues at trade
time, which is what makes pre-funded inventory necessary.

The helpers below size the arbitrage pair exactly like
:func:`trading_pipeline.backtest.multi.simulate_arbitrage` (``max_use`` of the limiting balance,
buy-venue quote or sell-venue base) and the starting inventory like its pre-funding (half the
capital per venue, ``quote_share`` of it kept in quote, the rest bought as base — here with a
real market order that pays the venue's fee and slippage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.bots.broker import Broker, OrderRequest, OrderResult
from trading_pipeline.bots.candles import CandleSource
from trading_pipeline.errors import UserInputError
from trading_pipeline.venues.symbols import VenueSymbol, parse_symbol, require_equivalent

SEP = ":"
PAR_QUOTES: frozenset[tuple[str, str]] = frozenset({("USDT", "USD")})
"""Quote pairs the arbitrage bot counts at par (Binance US USDT against Coinbase USD); the basis
it trades therefore includes the USDT/USD rate (see strategies/arbitrage.py)."""

PAIR_FAMILIES = ("arbitrage",)
"""Families whose flags are two-venue pair events (sized from per-venue balances) rather than
per-symbol entries and exits."""

INVENTORY = "inventory"  # the reason on the orders that buy a venue's starting base inventory


def is_qualified(symbol: str) -> bool:
    return SEP in symbol


def venue_symbol(symbol: str) -> VenueSymbol:
    """``"coinbase:BTCUSD"`` → VenueSymbol(coinbase, BTC, USD); anything else is a one-line
    :class:`UserInputError`."""
    venue, sep, rest = symbol.partition(SEP)
    if not sep or not venue or not rest:
        raise UserInputError(
            f"symbol {symbol!r} is not <venue>:<BASE><QUOTE> (e.g. coinbase:BTCUSD)"
        )
    return parse_symbol(venue, rest)


def qualify(vs: VenueSymbol) -> str:
    """The runner's name of ``vs``: ``coinbase:BTCUSD`` (venue, base and quote, no separator)."""
    return f"{vs.venue}{SEP}{vs.store_symbol}"


def split_venue(symbol: str) -> tuple[str, str]:
    """``("coinbase", "BTCUSD")``: the venue and the symbol its broker knows."""
    vs = venue_symbol(symbol)
    return vs.venue, vs.store_symbol


def check_pair(symbols: Sequence[str]) -> tuple[VenueSymbol, VenueSymbol]:
    """The two venues of an arbitrage assignment: same base on two different venues, quotes
    equal or a pair in :data:`PAR_QUOTES` (named, never silently equated)."""
    if len(symbols) != 2:
        raise UserInputError(f"arbitrage needs two venue symbols, got {list(symbols)}")
    a, b = (venue_symbol(s) for s in symbols)
    if a.venue == b.venue:
        raise UserInputError(f"arbitrage needs two different venues, got {a.venue} twice")
    require_equivalent(a, b, allow=PAR_QUOTES)
    return a, b


def venue_costs(params: Mapping[str, Any], symbols: Sequence[str]) -> dict[str, CostModel]:
    """Each venue's :class:`CostModel` from the arbitrage parameters that describe the venues
    (``fee_a_bps``/``fee_b_bps`` for the first/second symbol, ``slippage_bps`` per leg)."""
    slip = float(params["slippage_bps"])
    fees = (float(params["fee_a_bps"]), float(params["fee_b_bps"]))
    return {
        s: CostModel(fee=f / 1e4, slippage_bps=slip) for s, f in zip(symbols, fees, strict=True)
    }


def inventory_qty(value: float, price: float, costs: CostModel) -> float:
    """Base bought with ``value`` of quote at ``price``, fee and slippage included (spends exactly
    ``value``, the runner's entry sizing)."""
    return value / (1.0 + costs.fee) / (price * (1.0 + costs.slippage))


@dataclass(frozen=True)
class PairOrder:
    """One arbitrage event sized: buy ``units`` on ``buy``, sell them on ``sell``."""

    buy: str
    sell: str
    units: float


def size_pair(
    buy: str,
    sell: str,
    *,
    quote: Mapping[str, float],
    base: Mapping[str, float],
    prices: Mapping[str, float],
    costs: Mapping[str, CostModel],
    max_use: float,
    min_order_value: float,
    max_value: float = float("inf"),
) -> PairOrder | None:
    """``simulate_arbitrage``'s sizing: ``max_use × min(base on the sell venue, quote on the buy
    venue / (buy price × (1 + fee)))``; None below the minimum order value (it skips too)."""
    c = costs[buy]
    buy_px = prices[buy] * (1.0 + c.slippage)
    units = max_use * min(base.get(sell, 0.0), quote.get(buy, 0.0) / (buy_px * (1.0 + c.fee)))
    units = min(units, max_value / prices[buy]) if max_value < float("inf") else units
    if not (units > 0) or units * prices[buy] < min_order_value:
        return None
    return PairOrder(buy, sell, units)


class VenuePrices:
    """A venue's view of a runner's candle source: the venue broker asks for ``BTCUSD``, the
    source knows ``coinbase:BTCUSD``."""

    def __init__(self, candles: CandleSource, venue: str) -> None:
        self.candles = candles
        self.venue = venue

    def _q(self, symbol: str) -> str:
        return f"{self.venue}{SEP}{symbol}"

    def closed_bars(self, symbol: str, interval: str, now_ms: int, n: int) -> Any:
        return self.candles.closed_bars(self._q(symbol), interval, now_ms, n)

    def price(self, symbol: str, interval: str, now_ms: int) -> float | None:
        return self.candles.price(self._q(symbol), interval, now_ms)

    def next_close_ms(self, interval: str, now_ms: int) -> int | None:
        return self.candles.next_close_ms(interval, now_ms)


class RoutingBroker:
    """One :class:`Broker` over several venues' brokers (see the module docstring).

    ``quotes`` (venue → its quote currency) say where a capital re-allocation lands: split
    equally over the venues, each in its own quote currency. Venue brokers get ``BTCUSD``
    (base and quote joined: what the paper broker splits), or with ``native_ids`` the venue's
    own id, ``BTC-USD`` on Coinbase (what a ccxt broker looks markets up by).
    """

    name = "routing"

    def __init__(
        self, brokers: Mapping[str, Broker], *, quotes: Mapping[str, str], native_ids: bool = False
    ) -> None:
        if not brokers:
            raise UserInputError("a routing broker needs at least one venue")
        self.brokers = dict(brokers)
        self.quotes = dict(quotes)
        self.native_ids = native_ids
        self.live = any(b.live for b in self.brokers.values())
        self.name = "routing(" + ",".join(f"{v}={b.name}" for v, b in self.brokers.items()) + ")"

    def use_costs(self, costs: CostModel) -> None:
        """Charge ``costs`` on every venue's paper account (not for pairs: their venue fees
        are the family's parameters, and the runner does not call this for them)."""
        for b in self.brokers.values():
            use = getattr(b, "use_costs", None)
            if callable(use):
                use(costs)

    def _route(self, symbol: str) -> tuple[Broker, str]:
        vs = venue_symbol(symbol)
        venue, native = vs.venue, vs.native_id if self.native_ids else vs.store_symbol
        try:
            return self.brokers[venue], native
        except KeyError:
            raise UserInputError(
                f"no broker for venue {venue} (have {', '.join(self.brokers)})"
            ) from None

    def submit(self, req: OrderRequest) -> OrderResult:
        broker, native = self._route(req.symbol)
        return broker.submit(replace(req, symbol=native))

    def fetch_order(self, client_order_id: str, symbol: str) -> OrderResult | None:
        broker, native = self._route(symbol)
        return broker.fetch_order(client_order_id, native)

    def balances(self) -> dict[str, float]:
        """Free balance per venue and asset: ``{"coinbase:USD": 75.0, "coinbase:BTC": 0.001}``."""
        return {
            f"{venue}{SEP}{asset}": amount
            for venue, b in self.brokers.items()
            for asset, amount in b.balances().items()
        }

    def transfer(self, transfer_id: str, asset: str, amount: float) -> None:
        """A capital re-allocation (paper only): ``amount`` split equally over the venues, each
        in its own quote currency (``asset`` names the bot's accounting currency)."""
        share = amount / len(self.brokers)
        for venue, b in self.brokers.items():
            move = getattr(b, "transfer", None)
            if move is not None:
                move(f"{transfer_id}-{venue}", self.quotes.get(venue, asset), share)

    def close(self) -> None:
        for b in self.brokers.values():
            close = getattr(b, "close", None)
            if close is not None:
                close()


__all__ = [
    "INVENTORY",
    "PAIR_FAMILIES",
    "PAR_QUOTES",
    "PairOrder",
    "RoutingBroker",
    "VenuePrices",
    "check_pair",
    "inventory_qty",
    "is_qualified",
    "qualify",
    "size_pair",
    "split_venue",
    "venue_costs",
    "venue_symbol",
]
