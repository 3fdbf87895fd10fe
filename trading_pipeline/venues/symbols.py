"""One market, spelled the way each venue spells it, with its quote currency kept explicit.

Binance writes ``BTCUSDT``, Binance US ``BTCUSDT`` or ``BTCUSD``, Coinbase ``BTC-USD``, ccxt
``BTC/USD`` everywhere, freqtrade ``BTC_USD``. A :class:`VenueSymbol` holds the parts once (base,
quote, venue) and derives every spelling from them, so nothing downstream parses strings again.

USDT is not USD: a Binance BTC/USDT price and a Coinbase BTC/USD price differ by the USDT/USD
rate as well as by the venues' spread (in 2017–18 that rate alone was worth hundreds of bps).
:func:`equivalent` therefore treats two symbols as the same market only when base *and* quote
match, unless the caller names the quote pair it accepts as equal (``allow={("USDT", "USD")}``),
and :func:`require_equivalent` says which currencies differ when it refuses.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series

VENUES: tuple[str, ...] = ("binance", "binanceus", "coinbase")

# Where each venue's candles live in the history store (``parquet/market=<this>/…``). Binance
# spot history comes from Binance Vision and keeps ``market=spot``; ccxt-fetched venues get a
# market segment named after the venue, so their paths never collide with Vision's.
STORE_MARKET: dict[str, str] = {"binance": "spot", "binanceus": "binanceus", "coinbase": "coinbase"}

# Quote currencies recognised when splitting a concatenated id such as ``BTCUSDT``; longest
# first so that ``USDT`` wins over ``USD`` and ``FDUSD`` over ``USD``.
KNOWN_QUOTES: tuple[str, ...] = tuple(
    sorted(
        ("USDT", "USDC", "FDUSD", "TUSD", "BUSD", "USD", "EUR", "GBP", "BTC", "ETH", "BNB", "DAI"),
        key=lambda q: (-len(q), q),
    )
)


def check_venue(venue: str) -> str:
    """The venue name lower-cased, or a ``UserInputError`` listing the known ones."""
    name = venue.strip().lower()
    if name not in VENUES:
        raise UserInputError(f"unknown venue {venue!r}: use one of {', '.join(VENUES)}")
    return name


@dataclass(frozen=True)
class VenueSymbol:
    """A spot market on one venue: ``base``/``quote`` as the venue lists them (upper case)."""

    venue: str
    base: str
    quote: str

    @property
    def native_id(self) -> str:
        """The id in the venue's own API: ``BTC-USD`` on Coinbase, ``BTCUSDT`` on Binance (US)."""
        if self.venue == "coinbase":
            return f"{self.base}-{self.quote}"
        return f"{self.base}{self.quote}"

    @property
    def ccxt_symbol(self) -> str:
        """The unified ccxt symbol, ``BTC/USD``."""
        return f"{self.base}/{self.quote}"

    @property
    def store_symbol(self) -> str:
        """The symbol segment in the store: base and quote joined (no ``-``, so series keys parse)."""
        return f"{self.base}{self.quote}"

    @property
    def store_market(self) -> str:
        return STORE_MARKET[self.venue]

    def series(self, interval: str) -> Series:
        """The store series of this market's candles at ``interval``."""
        return Series(self.store_market, self.store_symbol, interval)

    def on(self, venue: str, *, quote: str | None = None) -> VenueSymbol:
        """The same base on ``venue``; the quote stays unless a different one is asked for."""
        return VenueSymbol(check_venue(venue), self.base, (quote or self.quote).upper())

    def __str__(self) -> str:
        return f"{self.venue}:{self.native_id}"


def _split_concatenated(text: str) -> tuple[str, str] | None:
    for quote in KNOWN_QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)], quote
    return None


def parse_symbol(venue: str, text: str) -> VenueSymbol:
    """Read ``BTC-USD``, ``BTC/USD``, ``BTC_USD`` or ``BTCUSD`` as a symbol of ``venue``.

    A concatenated id is split at a known quote currency (:data:`KNOWN_QUOTES`); anything else
    is a ``UserInputError``. Whether the venue actually lists the market is checked against its
    markets by the fetcher, not here.
    """
    name = check_venue(venue)
    raw = text.strip().upper()
    for sep in ("/", "-", "_"):
        if sep in raw:
            parts = raw.split(sep)
            if len(parts) == 2 and all(p.isalnum() for p in parts):
                return VenueSymbol(name, parts[0], parts[1])
            raise UserInputError(f"symbol {text!r} is not BASE{sep}QUOTE")
    if raw.isalnum():
        split = _split_concatenated(raw)
        if split is not None:
            return VenueSymbol(name, *split)
    raise UserInputError(
        f"cannot read symbol {text!r}: write BASE-QUOTE (e.g. BTC-USD) or BASE/QUOTE"
    )


def from_series(series: Series) -> VenueSymbol:
    """The venue symbol a store series holds (``coinbase-BTCUSD-1h`` → coinbase BTC-USD)."""
    venues = [v for v, m in STORE_MARKET.items() if m == series.market]
    if not venues:
        raise UserInputError(f"series {series.key} is not a venue series (market {series.market})")
    return parse_symbol(venues[0], series.symbol)


QuotePair = tuple[str, str]


def _allowed(a: str, b: str, allow: Iterable[QuotePair]) -> bool:
    return any({a, b} == {x.upper(), y.upper()} for x, y in allow)


def equivalent(a: VenueSymbol, b: VenueSymbol, *, allow: Collection[QuotePair] = ()) -> bool:
    """Same base, and the same quote or a quote pair the caller explicitly accepts as equal."""
    if a.base != b.base:
        return False
    return a.quote == b.quote or _allowed(a.quote, b.quote, allow)


def quote_difference(a: VenueSymbol, b: VenueSymbol) -> str | None:
    """``"USDT vs USD"`` when the quotes differ, None when they are the same currency."""
    return None if a.quote == b.quote else f"{a.quote} vs {b.quote}"


def require_equivalent(
    a: VenueSymbol, b: VenueSymbol, *, allow: Collection[QuotePair] = ()
) -> None:
    """Raise ``UserInputError`` unless :func:`equivalent`; the message names what differs."""
    if a.base != b.base:
        raise UserInputError(f"{a} and {b} are different assets ({a.base} vs {b.base})")
    if not equivalent(a, b, allow=allow):
        raise UserInputError(
            f"{a} and {b} differ in quote currency ({a.quote} vs {b.quote}); they are compared "
            f"only when the pair ({a.quote}, {b.quote}) is allowed explicitly"
        )
