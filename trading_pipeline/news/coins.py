"""Which coins a text is about: a small table of tickers and names.

Tickers match as upper-case words or cash tags (``BTC``, ``$SOL``; ``sol`` or ``link`` in
lower case are ordinary words), names case-insensitively (``bitcoin``, ``Ethereum``).
"""

from __future__ import annotations

import re

# ticker → names (lower case); the tickers are the base assets of the universe's symbols
COINS: dict[str, tuple[str, ...]] = {
    "BTC": ("bitcoin", "btc", "xbt"),
    "ETH": ("ethereum", "ether", "eth"),
    "BNB": ("bnb", "binance coin"),
    "SOL": ("solana",),
    "XRP": ("xrp", "ripple"),
    "ADA": ("cardano",),
    "DOGE": ("dogecoin", "doge"),
    "AVAX": ("avalanche", "avax"),
    "DOT": ("polkadot",),
    "LINK": ("chainlink",),
    "LTC": ("litecoin", "ltc"),
    "TRX": ("tron", "trx"),
    "MATIC": ("polygon", "matic"),
}
QUOTES = ("USDT", "FDUSD", "USDC", "BUSD", "TUSD", "USD", "EUR", "BTC", "ETH", "BNB")

_TICKERS = re.compile(r"(?<![A-Za-z0-9])\$?(" + "|".join(COINS) + r")(?![A-Za-z0-9])")
_NAMES = {
    ticker: re.compile(r"(?<![a-z0-9])(" + "|".join(map(re.escape, names)) + r")(?![a-z0-9])")
    for ticker, names in COINS.items()
}


def match_coins(text: str) -> list[str]:
    """The tickers ``text`` mentions, sorted (empty when it names none of the table)."""
    found = set(_TICKERS.findall(text))
    low = text.lower()
    found.update(t for t, pattern in _NAMES.items() if pattern.search(low))
    return sorted(found)


def coin_of_symbol(symbol: str) -> str | None:
    """The table's ticker a trading symbol is based on (``BTCUSDT`` → ``BTC``), or None."""
    sym = symbol.upper()
    for quote in QUOTES:
        if sym.endswith(quote) and sym[: -len(quote)] in COINS:
            return sym[: -len(quote)]
    return sym if sym in COINS else None


def coin_of_series(key: str) -> str | None:
    """The coin of a series key (``spot-BTCUSDT-1h`` → ``BTC``), or None."""
    parts = key.split("-")
    return coin_of_symbol(parts[1]) if len(parts) == 3 else None
