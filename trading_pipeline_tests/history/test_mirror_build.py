"""``mirror build``: a Binance-Vision-shaped folder from generated candles or a Parquet store."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import date
from pathlib import Path

import pytest

from trading_pipeline.cli import main as cli
from trading_pipeline.history.layout import Series
from trading_pipeline.history.mirror_build import build_mirror, make_plan
from trading_pipeline.history.vision import month_daily_prefix, monthly_key
from trading_pipeline.market.candles import load_store

TODAY = date(2024, 3, 11)  # the mirror ends the day before: 2024-03-10, daily zips for March
BTC = Series("spot", "BTCUSDT", "1h")


def _verify(root: Path, key: str) -> bytes:
    """The zip's CSV, after checking it against its .CHECKSUM and its one member."""
    path = root / key
    digest, name = path.with_name(path.name + ".CHECKSUM").read_text().split()
    assert name == path.name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == [path.name[:-4] + ".csv"]
        return zf.read(zf.namelist()[0])


def test_generated_mirror_has_monthly_and_daily_zips_in_binance_layout(tmp_path: Path) -> None:
    plan = make_plan(["btcusdt", "ETHUSDT"], interval="1h", start="2024-01", end=None, today=TODAY)
    counts = build_mirror(tmp_path / "m", plan)
    assert counts == {"BTCUSDT": 2 + 10, "ETHUSDT": 2 + 10}  # Jan, Feb + Mar 1…10
    jan = _verify(tmp_path / "m", monthly_key(BTC, 2024, 1)).decode().splitlines()
    assert len(jan) == 31 * 24 and len(jan[0].split(",")) == 12
    assert jan[0].startswith("1704067200000,")  # 2024-01-01 00:00 UTC in ms, no header
    daily = month_daily_prefix(BTC, 2024, 3)
    assert len(_verify(tmp_path / "m", daily + "10.zip").decode().splitlines()) == 24
    assert not (tmp_path / "m" / (daily + "11.zip")).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # the staging folder is gone
    # the same arguments give the same bytes (seeded)
    build_mirror(tmp_path / "again", plan)
    key = monthly_key(BTC, 2024, 1)
    assert (tmp_path / "again" / key).read_bytes() == (tmp_path / "m" / key).read_bytes()


def test_a_store_exports_to_a_mirror(tmp_path: Path, store_factory, make_bars) -> None:  # type: ignore[no-untyped-def]
    from trading_pipeline_tests.fakes.bars import START_2021

    frame = make_bars(24 * 59, start=START_2021, trend="walk_traded", decimals=8)
    history = store_factory({"BTCUSDT": frame})
    plan = make_plan(["BTCUSDT"], interval="1h", start="2021-01", end="2021-02", today=TODAY)
    build_mirror(tmp_path / "m", plan, source=history)
    csv = _verify(tmp_path / "m", monthly_key(BTC, 2021, 2)).decode().splitlines()
    assert len(csv) == 28 * 24
    back = load_store(history / "history", market="spot", symbol="BTCUSDT", interval="1h")
    assert float(csv[-1].split(",")[4]) == pytest.approx(back["close"][-1])


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "2021-13"],
        ["--from", "2024-01", "--to", "2023-12"],
        ["--symbols", "BTC$"],
        ["--symbols", ","],
        ["--interval", "7h"],
        ["--source", "no-such-folder"],
        ["--from", "2000-01"],
    ],
)
def test_bad_input_is_one_error_line_exit_2_and_no_files(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "m"
    code = cli(["mirror", "build", str(target), "--from", "2024-01", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert list(tmp_path.iterdir()) == []
