from pathlib import Path

import pytest

from trading_pipeline.settings import (
    DEFAULT_LISTING_URL,
    DEFAULT_VISION_URL,
    Settings,
    SettingsError,
)


def test_defaults_live_under_the_project_data_dir() -> None:
    s = Settings.from_env({})
    assert s.data_dir == Path("data")
    assert s.history_dir == Path("data/history")
    assert s.bots_dir == Path("data/bots")
    assert s.vision_url == DEFAULT_VISION_URL
    assert s.listing_url == DEFAULT_LISTING_URL
    assert s.universe == ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def test_production_paths_come_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "TP_DATA_DIR": "/srv/trading-bots",
            "TP_HISTORY_DIR": "/srv/trading-bots/history",
            "TP_VISION_URL": "http://127.0.0.1:9000/",
            "TP_UNIVERSE": "BTCUSDT, SOLUSDT",
        }
    )
    assert s.history_dir == Path("/srv/trading-bots/history")
    assert s.bots_dir == Path("/srv/trading-bots/bots")
    assert s.vision_url == "http://127.0.0.1:9000"
    assert s.universe == ("BTCUSDT", "SOLUSDT")


def test_bad_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="TP_CONCURRENCY"):
        Settings.from_env({"TP_CONCURRENCY": "many"})


def test_venue_urls_come_from_the_environment_trimmed() -> None:
    s = Settings.from_env(
        {"TP_COINBASE_URL": " http://127.0.0.1:9001/ ", "TP_BINANCE_URL": "", "TP_X": "y"}
    )
    assert s.venue_url("coinbase") == "http://127.0.0.1:9001"
    assert s.venue_url("binance") is None
    assert s.venue_url("binanceus") is None
