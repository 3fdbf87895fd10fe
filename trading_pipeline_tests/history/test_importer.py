"""``trading-pipeline import freqtrade``: generated freqtrade files and the real multi-year ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.cli import main
from trading_pipeline.errors import UserInputError
from trading_pipeline.history.importer import import_freqtrade, parse_candle_name
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.manifest import Manifest, ManifestEntry

T0 = datetime(2023, 12, 31, 20, tzinfo=UTC)
NULL_COLUMNS = (
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)


def candles(n: int, seed: int = 5, start: datetime = T0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([30_000.0], close[:-1]))
    return pl.DataFrame(
        {
            "date": [start + timedelta(hours=i) for i in range(n)],
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": rng.gamma(2.0, 10.0, n),
        }
    ).with_columns(pl.col("date").cast(pl.Datetime("ns", "UTC")))


def write_feather(path: Path, df: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_ipc(path)
    return path


def write_json(path: Path, df: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        [int(r[0].timestamp() * 1000), *r[1:]]
        for r in df.select("date", "open", "high", "low", "close", "volume").rows()
    ]
    path.write_text(json.dumps(rows))
    return path


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BTC_USDT-1h.feather", ("spot", "BTCUSDT", "1h")),
        ("ETH_BTC-1d.json", ("spot", "ETHBTC", "1d")),
        ("BTC_USDT-1M.feather", ("spot", "BTCUSDT", "1mo")),
        ("BTC_USDT_USDT-1h-futures.feather", ("um", "BTCUSDT", "1h")),
        ("BTC_USD_BTC-4h-futures.feather", ("cm", "BTCUSD_PERP", "4h")),
    ],
)
def test_parse_candle_name(name: str, expected: tuple[str, str, str]) -> None:
    cf = parse_candle_name(Path(name))
    assert cf is not None and (cf.market, cf.symbol, cf.interval) == expected


@pytest.mark.parametrize(
    "name", ["BTCUSDT-1h.feather", "BTC_USDT.feather", "BTC_USDT-7x.json", "notes.json"]
)
def test_unparsable_names(name: str) -> None:
    assert parse_candle_name(Path(name)) is None


def test_import_splits_months_leaves_missing_columns_null(tmp_path: Path) -> None:
    src = tmp_path / "user_data" / "data" / "binance"
    btc = candles(24 * 40)  # 2023-12-31 20:00 → 2024-02-09
    write_feather(src / "BTC_USDT-1h.feather", btc)
    write_json(src / "ETH_USDT-1h.json", candles(30, seed=9))
    layout = HistoryLayout(tmp_path / "history")
    # DIR may be user_data/data (the exchange sub-folder is found) or the exchange folder itself
    summary = import_freqtrade(
        tmp_path / "user_data" / "data", layout=layout, now=lambda: datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert summary.rows == 24 * 40 + 30
    by_name = {f.path.name: f for f in summary.files}
    assert by_name["BTC_USDT-1h.feather"].months_written == ["2023-12", "2024-01", "2024-02"]
    dec = pl.read_parquet(layout.parquet_path(Series("spot", "BTCUSDT", "1h"), 2023, 12))
    assert dec.height == 4
    store = pl.scan_parquet(str(layout.parquet_dir / "**" / "*.parquet"), hive_partitioning=True)
    back = store.filter(pl.col("symbol") == "BTCUSDT").sort("open_time").collect()
    assert back.height == btc.height
    assert back["close"].to_list() == btc["close"].to_list()
    assert back["open_time"][0] == T0
    for col in NULL_COLUMNS:
        assert back[col].null_count() == back.height
    entries = Manifest(layout.manifest_path).load()
    e = entries["import/freqtrade/binance/BTC_USDT-1h.feather/2024-01"]
    assert (e.kind, e.market, e.symbol, e.interval, e.period, e.rows) == (
        "import",
        "spot",
        "BTCUSDT",
        "1h",
        "2024-01",
        744,
    )
    assert e.source == f"freqtrade:{(src / 'BTC_USDT-1h.feather').resolve()}"
    assert (
        e.parquet_path
        == "parquet/market=spot/symbol=BTCUSDT/interval=1h/year=2024/month=01/data.parquet"
    )
    assert len(entries) == 3 + 2  # ETH: 30 hours over the new year


def test_another_exchange_is_its_own_store_market(tmp_path: Path) -> None:
    src = tmp_path / "data" / "coinbase"
    btc = candles(30)
    write_feather(src / "BTC_USD-1h.feather", btc)
    layout = HistoryLayout(tmp_path / "history")
    import_freqtrade(tmp_path / "data", layout=layout, exchange="coinbase")
    back = pl.read_parquet(layout.parquet_path(Series("coinbase", "BTCUSD", "1h"), 2024, 1))
    assert (
        back["close"].to_list() == btc.filter(pl.col("date").dt.year() == 2024)["close"].to_list()
    )
    assert not (layout.parquet_dir / "market=spot").exists()
    e = Manifest(layout.manifest_path).load()[
        "import/freqtrade/coinbase/BTC_USD-1h.feather/2024-01"
    ]
    assert (e.market, e.symbol) == ("coinbase", "BTCUSD")
    with pytest.raises(UserInputError, match="imports spot only"):
        import_freqtrade(tmp_path / "data", layout=layout, exchange="coinbase", market="um")


def test_reimport_changes_nothing_and_a_changed_file_rewrites(tmp_path: Path) -> None:
    src = tmp_path / "binance"
    f = write_feather(src / "BTC_USDT-1h.feather", candles(24 * 35))
    layout = HistoryLayout(tmp_path / "history")
    import_freqtrade(src, layout=layout)
    before = snapshot(layout.root)
    again = import_freqtrade(src, layout=layout)
    assert again.months_written == 0 and again.months_unchanged == 3
    assert snapshot(layout.root) == before
    # the user extends the file: months get rewritten, rows follow the source
    write_feather(f, candles(24 * 70))
    third = import_freqtrade(src, layout=layout)
    assert third.months_written == 4
    total = pl.scan_parquet(str(layout.parquet_dir / "**" / "*.parquet")).collect().height
    assert total == 24 * 70


def _vision_month(layout: HistoryLayout, frame: pl.DataFrame, year: int, month: int) -> Path:
    """Write ``frame`` as the Binance fetcher's month (Parquet + a monthly manifest entry)."""
    from trading_pipeline.history.convert import write_parquet
    from trading_pipeline.market.schema import conform

    target = layout.parquet_path(Series("spot", "BTCUSDT", "1h"), year, month)
    write_parquet(conform(frame.rename({"date": "open_time"})), target)
    Manifest(layout.manifest_path).update(
        [
            ManifestEntry(
                key=f"data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-{year}-{month:02d}.zip",
                kind="monthly",
                parquet_path=str(target),
            )
        ]
    )
    return target


def test_complete_vision_months_are_not_overwritten(tmp_path: Path) -> None:
    src = tmp_path / "binance"
    frame = candles(24 * 35)
    write_feather(src / "BTC_USDT-1h.feather", frame)
    layout = HistoryLayout(tmp_path / "history")
    january = frame.filter(pl.col("date").dt.month() == 1)
    vision = _vision_month(layout, january, 2024, 1)
    before = vision.read_bytes()
    summary = import_freqtrade(src, layout=layout)
    assert summary.months_kept_vision == 1 and summary.months_written == 2
    assert vision.read_bytes() == before


def test_a_partial_vision_month_is_completed_not_kept_with_a_hole(tmp_path: Path) -> None:
    src = tmp_path / "binance"
    frame = candles(24 * 35)
    write_feather(src / "BTC_USDT-1h.feather", frame)
    layout = HistoryLayout(tmp_path / "history")
    january = frame.filter(pl.col("date").dt.month() == 1)
    two_days = january.head(48).with_columns(pl.col("close") * 1.0)  # Binance's own bars
    vision = _vision_month(layout, two_days, 2024, 1)
    summary = import_freqtrade(src, layout=layout)
    [f] = summary.files
    assert f.months_merged == [("2024-01", 48, january.height - 48)]
    stored = pl.read_parquet(vision)
    assert stored.height == january.height and stored["open_time"].is_sorted()
    assert "2024-01 merged: 48 existing bars kept" in f.describe()
    again = import_freqtrade(src, layout=layout)
    assert again.months_unchanged == 3 and again.months_written == 0


def test_a_shorter_file_never_replaces_a_longer_import(tmp_path: Path) -> None:
    layout = HistoryLayout(tmp_path / "history")
    full, short = tmp_path / "full", tmp_path / "short"
    frame = candles(24 * 35)
    write_feather(full / "BTC_USDT-1h.feather", frame)
    import_freqtrade(full, layout=layout)
    newer = frame.slice(24 * 5, 24).with_columns(pl.col("close") * 1.001, pl.col("high") * 1.001)
    write_feather(short / "BTC_USDT-1h.feather", newer)
    import_freqtrade(short, layout=layout)
    path = layout.parquet_path(Series("spot", "BTCUSDT", "1h"), 2024, 1)
    stored = pl.read_parquet(path)
    assert stored.height == frame.filter(pl.col("date").dt.month() == 1).height
    t = newer["date"][3]
    assert stored.filter(pl.col("open_time") == t)["close"][0] == newer["close"][3]  # newer wins


def test_an_hourly_file_named_daily_and_epoch_ms_dates(tmp_path: Path) -> None:
    layout = HistoryLayout(tmp_path / "history")
    write_feather(tmp_path / "a" / "BTC_USDT-1d.feather", candles(60))
    with pytest.raises(UserInputError, match=r"not a multiple of 1d"):
        import_freqtrade(tmp_path / "a", layout=layout)
    assert not layout.root.exists() or not any(layout.root.rglob("*.parquet"))
    ms = candles(30).with_columns(pl.col("date").dt.epoch("ms"))  # integer epoch milliseconds
    write_feather(tmp_path / "b" / "BTC_USDT-1h.feather", ms)
    import_freqtrade(tmp_path / "b", layout=layout)
    stored = pl.scan_parquet(str(layout.parquet_dir / "**" / "*.parquet")).collect()
    assert stored["open_time"].min() == T0 and stored.height == 30


def test_futures_files_skipped_for_spot_imported_for_um(tmp_path: Path) -> None:
    src = tmp_path / "binance"
    write_feather(src / "BTC_USDT-1h.feather", candles(10))
    write_feather(src / "futures" / "BTC_USDT_USDT-1h-futures.feather", candles(12))
    write_feather(src / "futures" / "BTC_USDT_USDT-1h-mark.feather", candles(12))
    layout = HistoryLayout(tmp_path / "history")
    spot = import_freqtrade(src, layout=layout)
    assert [f.series for f in spot.files] == ["spot-BTCUSDT-1h"]
    assert any("use --market um" in why for _, why in spot.skipped)
    um = import_freqtrade(src, layout=layout, market="um")
    assert [(f.series, f.rows) for f in um.files] == [("um-BTCUSDT-1h", 12)]
    assert layout.parquet_path(Series("um", "BTCUSDT", "1h"), 2024, 1).exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such directory"),
        ("empty", "no freqtrade spot candle files"),
        ("badname", "cannot parse"),
        ("twice", "two files for spot-BTCUSDT-1h"),
        ("badfile", "BTC_USDT-1h.feather"),
        ("futures-only", "use --market um"),
        ("jsongz", "convert to feather"),
    ],
)
def test_bad_input_writes_nothing(tmp_path: Path, setup: str, message: str) -> None:
    src = tmp_path / "binance"
    src.mkdir()
    if setup == "missing":
        src = tmp_path / "nope"
    elif setup == "badname":
        write_feather(src / "BTC_USDT-1h.feather", candles(5))
        write_feather(src / "bitcoin.feather", candles(5))
    elif setup == "twice":
        write_feather(src / "BTC_USDT-1h.feather", candles(5))
        write_json(src / "BTC_USDT-1h.json", candles(5))
    elif setup == "badfile":
        write_feather(src / "ETH_USDT-1h.feather", candles(5))
        (src / "BTC_USDT-1h.feather").write_bytes(b"garbage")
    elif setup == "jsongz":
        (src / "BTC_USDT-1h.json.gz").write_bytes(b"\x1f\x8b")
    elif setup == "futures-only":
        write_feather(src / "futures" / "BTC_USDT_USDT-1h-futures.feather", candles(5))
    data_dir = tmp_path / "data"
    with pytest.raises(UserInputError, match=message):
        import_freqtrade(src, layout=HistoryLayout(data_dir / "history"))
    assert not data_dir.exists()


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "binance"
    write_feather(src / "BNB_USDT-1h.feather", candles(48))
    data_dir = tmp_path / "data"
    assert main(["import", "freqtrade", str(tmp_path / "nope"), "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such directory") and err.count("\n") == 1
    assert not data_dir.exists()
    assert (
        main(["import", "freqtrade", str(src), "--market", "moon", "--data-dir", str(data_dir)])
        == 2
    )
    assert not data_dir.exists()
    assert main(["import", "freqtrade", str(tmp_path), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "48 rows" in out
    assert (data_dir / "history" / "manifest.json").exists()


# --- the real multi-year freqtrade files -----------------------------------------------------


@pytest.mark.slow  # imports years of real freqtrade candles
@pytest.mark.parametrize(
    ("folder", "files"),
    [
        (
            "Roshan7869-algotrading/freqtrade_binance_spot_1h",
            {"BTC_USDT-1h.feather": 73_265, "ETH_USDT-1h.feather": 73_265},
        ),
        ("djienne-3EMA_SRSI_ATR/freqtrade_binance_spot", {"BNB_USDT-1h.json": 43_087}),
    ],
)
def test_real_freqtrade_import(
    real_data: Path, tmp_path: Path, folder: str, files: dict[str, int]
) -> None:
    src = real_data / folder
    layout = HistoryLayout(tmp_path / "history")
    summary = import_freqtrade(src, layout=layout)
    got = {f.path.name: f.rows for f in summary.files}
    for name, n in files.items():
        assert got[name] == n
    store = pl.scan_parquet(str(layout.parquet_dir / "**" / "*.parquet"), hive_partitioning=True)
    for name, n in files.items():
        symbol = name.split("-")[0].replace("_", "")
        df = store.filter((pl.col("symbol") == symbol) & (pl.col("interval") == "1h")).collect()
        assert df.height == n and df["open_time"].n_unique() == n
        for col in NULL_COLUMNS:
            assert df[col].null_count() == n
        source = pl.read_ipc(src / name) if name.endswith(".feather") else None
        if source is not None:
            assert df.sort("open_time")["close"].to_list() == source.sort("date")["close"].to_list()
    manifest = Manifest(layout.manifest_path).load()
    assert all(e.kind == "import" and e.source.startswith("freqtrade:") for e in manifest.values())  # type: ignore[union-attr]
    assert sum(e.rows or 0 for e in manifest.values()) == summary.rows
    before = snapshot(layout.root)
    assert import_freqtrade(src, layout=layout).months_written == 0
    assert snapshot(layout.root) == before
