"""The main job with ``--series-from-fleet``: a bot's 5-minute series is fetched from a local
mirror and featured like the universe's hourly one (in-process runs, a persistent instance)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from trading_pipeline.bots.fleet_file import load_fleet
from trading_pipeline.bots.spec import use_fleet
from trading_pipeline.defs.chain import Budget, Chain
from trading_pipeline.defs.history.partitions import previous_month
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.mirror import running_mirror
from trading_pipeline_tests.fakes.vision import make_vision_tree, month_days

pytestmark = pytest.mark.slow  # Dagster runs

FLEET = """
[[bots]]
name = "scalp"
symbols = ["SOLUSDT"]
interval = "5m"
families = ["ema_cross"]
capital_fraction = 0.5

[[bots]]
name = "arb"
symbols = ["binanceus:BTCUSDT", "coinbase:BTCUSD"]
interval = "1h"
families = ["arbitrage"]
capital_fraction = 0.1
venues = ["binanceus", "coinbase"]
"""
BTC, SOL5 = Series("spot", "BTCUSDT", "1h"), Series("spot", "SOLUSDT", "5m")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[None]:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    use_fleet(load_fleet(path))
    yield
    use_fleet(None)


@pytest.fixture
def today() -> date:
    return datetime.now(UTC).date()


@pytest.fixture
def mirror_url(tmp_path: Path, today: date) -> Iterator[str]:
    """Last month published for BTCUSDT 1h and SOLUSDT 5m, and this month's daily files."""
    last = previous_month(today)
    days = [d for d in month_days(today.year, today.month, until=today - timedelta(days=1))]
    root = tmp_path / "vision"
    for seed, series in enumerate((BTC, SOL5)):
        make_vision_tree(root, series, months=[(last.year, last.month)], days=days, seed=seed)
    with running_mirror(root) as server:
        yield server.url


@pytest.mark.usefixtures("fleet")
def test_series_from_fleet_fetches_and_features_a_bots_5m_series(
    tmp_path: Path, mirror_url: str, today: date, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    for name in ("TP_HISTORY_DIR", "TP_MARKET", "TP_INTERVAL", "TP_FLEET_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TP_UNIVERSE", "BTCUSDT")
    # the location's resource says universe only: the flag alone widens what the chain runs
    monkeypatch.setenv("TP_FLEET_SERIES", "off")
    monkeypatch.setenv("TP_DATA_DIR", str(data))
    monkeypatch.setenv("TP_VISION_URL", mirror_url)
    monkeypatch.setenv("TP_VISION_LISTING_URL", mirror_url)
    monkeypatch.setenv("TP_START", previous_month(today).isoformat())
    lines: list[str] = []
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        chain = Chain(
            instance,
            today=today,
            echo=lines.append,
            budget=Budget(families=("sma_cross",)),
            series_from_fleet=True,
        )
        # the universe first, then the bot's own series; the arbitrage bot's venue candles not
        assert chain.report.series == [BTC.key, SOL5.key]
        assert chain.families_for(SOL5.key) == ("ema_cross",)
        report = chain.run(["history", "features"])
        assert not report.failures, lines
        assert set(instance.get_dynamic_partitions("series")) == {BTC.key, SOL5.key}
    layout = HistoryLayout(data / "history")
    last = previous_month(today)
    assert layout.parquet_path(SOL5, last.year, last.month).is_file()
    assert any(line.startswith(f"  features {SOL5.key}: features and regimes") for line in lines)
    for table in ("indicators", "regime_labels"):
        month = f"month={last.year:04d}-{last.month:02d}"
        path = data / "features" / table / f"series={SOL5.key}" / month / "data.parquet"
        assert path.is_file(), path
