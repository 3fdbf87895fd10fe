"""Venue symbols: every spelling maps to one market, and USDT is never silently USD."""

from __future__ import annotations

import pytest

from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.venues.symbols import (
    VenueSymbol,
    equivalent,
    from_series,
    parse_symbol,
    quote_difference,
    require_equivalent,
)


@pytest.mark.parametrize(
    ("venue", "text", "native", "ccxt_symbol", "quote"),
    [
        ("binance", "BTCUSDT", "BTCUSDT", "BTC/USDT", "USDT"),
        ("binance", "btc/usdt", "BTCUSDT", "BTC/USDT", "USDT"),
        ("binanceus", "BTCUSDT", "BTCUSDT", "BTC/USDT", "USDT"),
        ("binanceus", "BTCUSD", "BTCUSD", "BTC/USD", "USD"),
        ("binanceus", "BTC/USD", "BTCUSD", "BTC/USD", "USD"),
        ("coinbase", "BTC-USD", "BTC-USD", "BTC/USD", "USD"),
        ("coinbase", "BTC/USD", "BTC-USD", "BTC/USD", "USD"),
        ("coinbase", "BTC_USD", "BTC-USD", "BTC/USD", "USD"),
        ("coinbase", "BTCUSD", "BTC-USD", "BTC/USD", "USD"),
        ("coinbase", "ETH-USDT", "ETH-USDT", "ETH/USDT", "USDT"),
        ("binance", "ETHFDUSD", "ETHFDUSD", "ETH/FDUSD", "FDUSD"),
    ],
)
def test_each_spelling_gives_native_ccxt_and_store_names(
    venue: str, text: str, native: str, ccxt_symbol: str, quote: str
) -> None:
    sym = parse_symbol(venue, text)
    assert (sym.native_id, sym.ccxt_symbol, sym.quote) == (native, ccxt_symbol, quote)
    assert "-" not in sym.store_symbol and sym.store_symbol == sym.base + sym.quote


def test_store_series_keep_binance_vision_paths_and_give_venues_their_own() -> None:
    assert parse_symbol("binance", "BTCUSDT").series("1h") == Series("spot", "BTCUSDT", "1h")
    cb = parse_symbol("coinbase", "BTC-USD").series("1h")
    assert cb == Series("coinbase", "BTCUSD", "1h") and cb.key == "coinbase-BTCUSD-1h"
    assert Series.parse(cb.key) == cb
    assert from_series(cb) == VenueSymbol("coinbase", "BTC", "USD")
    us = parse_symbol("binanceus", "BTCUSD").series("1h")
    assert us.key == "binanceus-BTCUSD-1h"
    assert us != parse_symbol("binanceus", "BTCUSDT").series("1h")  # USD and USDT never share


def test_usdt_and_usd_are_equated_only_when_allowed() -> None:
    binance = parse_symbol("binance", "BTCUSDT")
    coinbase = parse_symbol("coinbase", "BTC-USD")
    assert not equivalent(binance, coinbase)
    assert equivalent(binance, coinbase, allow={("USD", "USDT")})
    assert quote_difference(binance, coinbase) == "USDT vs USD"
    with pytest.raises(UserInputError, match=r"differ in quote currency \(USDT vs USD\)"):
        require_equivalent(binance, coinbase)
    require_equivalent(binance, coinbase, allow=[("USDT", "USD")])
    assert equivalent(coinbase, parse_symbol("binanceus", "BTCUSD"))
    assert quote_difference(coinbase, parse_symbol("binanceus", "BTCUSD")) is None


def test_different_bases_are_never_equivalent() -> None:
    btc, eth = parse_symbol("coinbase", "BTC-USD"), parse_symbol("coinbase", "ETH-USD")
    assert not equivalent(btc, eth, allow={("USD", "USD")})
    with pytest.raises(UserInputError, match="different assets"):
        require_equivalent(btc, eth)


def test_moving_a_symbol_to_another_venue_keeps_the_quote_unless_asked() -> None:
    binance = parse_symbol("binance", "BTCUSDT")
    assert binance.on("coinbase").native_id == "BTC-USDT"
    assert binance.on("coinbase", quote="usd").native_id == "BTC-USD"
    assert str(binance.on("binanceus", quote="USD")) == "binanceus:BTCUSD"


@pytest.mark.parametrize(
    ("venue", "text", "message"),
    [
        ("kraken", "BTC-USD", "unknown venue 'kraken'"),
        ("coinbase", "BTC-USD-X", "is not BASE-QUOTE"),
        ("coinbase", "BTCXYZ", "cannot read symbol"),
        ("coinbase", "", "cannot read symbol"),
    ],
)
def test_bad_input_is_a_one_line_user_error(venue: str, text: str, message: str) -> None:
    with pytest.raises(UserInputError, match=message) as info:
        parse_symbol(venue, text)
    assert "\n" not in str(info.value)
