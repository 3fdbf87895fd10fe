"""Fixtures for the Dagster layer: a generated Binance Vision tree served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from trading_pipeline.defs.history.partitions import series_partitions
from trading_pipeline.defs.history.resources import HistorySource
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.mirror import MirrorServer, running_mirror
from trading_pipeline_tests.fakes.bars import START_2021, make_bars
from trading_pipeline_tests.fakes.store import write_store
from trading_pipeline_tests.fakes.vision import make_vision_tree, month_days

BTC = Series("spot", "BTCUSDT", "1h")
ETH = Series("spot", "ETHUSDT", "1h")
MONTHLY = [(2024, 1), (2024, 2)]  # published monthly zips
DAILY_ONLY = (2024, 3)  # no monthly zip yet: 31 daily zips


@pytest.fixture(scope="module")
def vision_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vision")
    for i, series in enumerate((BTC, ETH)):
        make_vision_tree(root, series, months=MONTHLY, days=month_days(*DAILY_ONLY), seed=i)
    return root


@pytest.fixture(scope="module")
def mirror(vision_tree: Path) -> Iterator[MirrorServer]:
    with running_mirror(vision_tree) as server:
        yield server


@dataclass(frozen=True)
class HistoryKit:
    """The two resources the history assets take: where data lives and where it comes from."""

    lake: DataLake
    source: HistorySource

    def layout(self) -> HistoryLayout:
        return self.lake.layout.history

    @property
    def resources(self) -> dict[str, object]:
        return {"lake": self.lake, "history_source": self.source}


@pytest.fixture
def make_store(tmp_path: Path, mirror: MirrorServer) -> Callable[..., HistoryKit]:
    def make(**overrides: object) -> HistoryKit:
        fields: dict[str, object] = {
            "vision_url": mirror.url,
            "listing_url": mirror.url,
            "universe": ["BTCUSDT", "ETHUSDT"],
            "start": "2024-01-01",
            "concurrency": 2,
        }
        fields.update(overrides)
        lake = DataLake(data_dir=str(tmp_path / "data"))
        return HistoryKit(lake, HistorySource(**fields))  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dg.DagsterInstance]:
    """One SQLite instance per test module (schedule and sensor contexts need a persistent one)."""
    with dg.DagsterInstance.local_temp(str(tmp_path_factory.mktemp("dagster_home"))) as inst:
        inst.add_dynamic_partitions(series_partitions.name or "series", [BTC.key, ETH.key])
        yield inst


def month(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}-01"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir whose store holds 2,500 generated BTC hours (discovery and selector assets)."""
    root = tmp_path / "data"
    write_store(
        root / "history", BTC, make_bars(2500, seed=7, trend="walk_traded", start=START_2021)
    )
    return root


def discovery_resources(data_dir: Path) -> dict[str, object]:
    """The resources the discovery (and selector) assets need, over ``data_dir``, offline."""
    return {"lake": DataLake(data_dir=str(data_dir))}


def ops_config(**ops: dict[str, object]) -> dg.RunConfig:
    """A run config giving each named op its config."""
    return dg.RunConfig(ops={name: {"config": cfg} for name, cfg in ops.items()})
