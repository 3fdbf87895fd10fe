"""Binance Vision keys and the validation of what a user asks for."""

from __future__ import annotations

from datetime import date

import pytest

from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.history.vision import (
    daily_key,
    month_daily_prefix,
    monthly_key,
    parse_key,
    series_prefix,
    symbols_prefix,
    validate_interval,
    validate_market,
    validate_range,
    validate_symbol,
)


def test_monthly_and_daily_keys_follow_binance_paths() -> None:
    spot = Series("spot", "BTCUSDT", "1h")
    assert (
        monthly_key(spot, 2024, 1) == "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip"
    )
    assert (
        daily_key(spot, date(2024, 3, 1))
        == "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-03-01.zip"
    )
    um = Series("um", "ETHUSDT", "5m")
    assert monthly_key(um, 2022, 4).startswith("data/futures/um/monthly/klines/ETHUSDT/5m/")
    cm = Series("cm", "BTCUSD_PERP", "1m")
    assert daily_key(cm, date(2022, 10, 24)) == (
        "data/futures/cm/daily/klines/BTCUSD_PERP/1m/BTCUSD_PERP-1m-2022-10-24.zip"
    )
    assert series_prefix(spot, "daily") == "data/spot/daily/klines/BTCUSDT/1h/"
    assert symbols_prefix("cm") == "data/futures/cm/monthly/klines/"
    assert month_daily_prefix(spot, 2024, 2).endswith("/BTCUSDT-1h-2024-02-")


@pytest.mark.parametrize(
    ("series", "kind", "period"),
    [
        (Series("spot", "BTCUSDT", "1mo"), "monthly", date(2021, 2, 1)),
        (Series("um", "BTCUSDT", "1m"), "daily", date(2022, 9, 5)),
        (Series("cm", "BTCUSD_PERP", "12h"), "daily", date(2026, 5, 8)),
    ],
)
def test_parse_key_round_trips(series: Series, kind: str, period: date) -> None:
    key = (
        monthly_key(series, period.year, period.month)
        if kind == "monthly"
        else daily_key(series, period)
    )
    parsed = parse_key(key)
    assert (parsed.series, parsed.kind, parsed.period) == (series, kind, period)
    assert parsed.key == key


@pytest.mark.parametrize(
    "key",
    [
        "data/spot/monthly/klines/BTCUSDT/1h/ETHUSDT-1h-2024-01.zip",  # symbol mismatch
        "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-02.zip",  # daily name, monthly kind
        "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip.CHECKSUM",
        "data/options/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip",
    ],
)
def test_parse_key_rejects_other_names(key: str) -> None:
    with pytest.raises(ValueError):
        parse_key(key)


def test_validation_messages() -> None:
    with pytest.raises(UserInputError, match="1mo"):
        validate_interval("1M")
    with pytest.raises(UserInputError, match="spot only"):
        validate_interval("1s", "um")
    with pytest.raises(UserInputError, match="no daily files for interval 1w"):
        validate_interval("1w", "spot", fill_daily=True)
    assert validate_interval("1w", "spot") == "1w"
    assert validate_interval("1s", "spot", fill_daily=True) == "1s"
    with pytest.raises(UserInputError, match="unknown market"):
        validate_market("options")
    with pytest.raises(UserInputError, match="after"):
        validate_range(date(2024, 2, 1), date(2024, 1, 1))
    assert validate_symbol(" btcusdt ") == "BTCUSDT"
    with pytest.raises(UserInputError):
        validate_symbol("BTC/USDT")
