"""make_exchange: URL rewrite keeps paths, spot-only loading, env URLs, keys never logged."""

from __future__ import annotations

import logging

import pytest

from trading_pipeline.errors import UserInputError
from trading_pipeline.venues.exchange import make_exchange, rewrite_urls
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.binance import running_fake_binance

pytestmark = pytest.mark.slow  # a local HTTP server (the fake venues)


@pytest.mark.parametrize("venue", ["binance", "binanceus"])
def test_every_binance_url_points_at_the_base_with_its_path_kept(venue: str) -> None:
    ex = make_exchange(venue, base_url="http://127.0.0.1:9999")
    api = ex.urls["api"]
    assert api["public"] == "http://127.0.0.1:9999/api/v3"
    assert api["private"] == "http://127.0.0.1:9999/api/v3"
    assert api["sapi"] == "http://127.0.0.1:9999/sapi/v1"
    assert all(u.startswith("http://127.0.0.1:9999") for u in api.values())
    assert ex.options["fetchMarkets"]["types"] == ["spot"]
    assert ex.options["fetchCurrencies"] is False and ex.enableRateLimit is True


def test_coinbase_rest_url_and_a_base_path_prefix() -> None:
    ex = make_exchange("coinbase", base_url="http://127.0.0.1:8080/")
    assert ex.urls["api"]["rest"] == "http://127.0.0.1:8080"
    nested = rewrite_urls({"a": {"b": "https://x.com/p/q?z=1"}}, "http://h:1/mirror")
    assert nested == {"a": {"b": "http://h:1/mirror/p/q?z=1"}}


def test_without_base_url_the_real_hosts_stay() -> None:
    ex = make_exchange("binance", timeout_ms=1234)
    assert ex.urls["api"]["public"] == "https://api.binance.com/api/v3"
    assert ex.timeout == 1234


def test_bad_venue_and_bad_url_are_user_errors() -> None:
    with pytest.raises(UserInputError, match="unknown venue 'kraken'"):
        make_exchange("kraken")
    with pytest.raises(UserInputError, match="venue URL"):
        make_exchange("binance", base_url="127.0.0.1:80")


def test_signed_calls_against_the_fake_never_log_the_key_or_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key, secret = "KEY-abcdef0123456789", "SECRET-9876543210fedcba"
    caplog.set_level(logging.DEBUG)
    with running_fake_binance(
        {"BTCUSDT": make_bars(50, price=30_000.0)}, api_key=key, secret=secret
    ) as srv:
        ex = make_exchange("binance", base_url=srv.url, api_key=key, secret=secret)
        ex.load_markets()
        assert ex.fetch_balance()["free"]["USDT"] == pytest.approx(10_000.0)
        # the fake checked the HMAC signature, so the secret really was used
        assert srv.requests_to("/api/v3/account")[0].headers["x-mbx-apikey"] == key
    messages = [r.getMessage() for r in caplog.records]
    assert any("/api/v3/account" in m for m in messages)  # ccxt did log the request
    assert any("***" in m for m in messages)  # ... with the key redacted
    for m in messages:
        assert key not in m and secret not in m
    for r in caplog.records:
        assert key not in repr(r.args) and secret not in repr(r.args)
