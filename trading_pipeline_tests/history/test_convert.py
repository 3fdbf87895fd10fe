"""Zip → CSV → Parquet conversion: generated fixtures and the genuine Binance Vision files."""

from __future__ import annotations

import hashlib
import itertools
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from trading_pipeline.history.convert import (
    MonthBuild,
    ZipRejected,
    build_month,
    extract_zip,
    has_header,
    read_kline_csv,
)
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.market.quality import find_gaps, find_off_grid, quality_report
from trading_pipeline.market.schema import KLINE_SCHEMA

HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
HOUR_MS = 3_600_000


def kline_lines(
    start: datetime, n: int, *, step_ms: int = HOUR_MS, micro: bool = False, seed: int = 1
) -> list[str]:
    """``n`` Binance kline CSV rows from ``start`` (seeded prices; ms or µs timestamps)."""
    rng = np.random.default_rng(seed)
    t0 = int(start.timestamp() * 1000)
    scale = 1000 if micro else 1
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    rows = []
    for i in range(n):
        ot = (t0 + i * step_ms) * scale
        ct = ot + step_ms * scale - 1
        c = close[i]
        o = close[i - 1] if i else 100.0
        rows.append(
            f"{ot},{o:.8f},{max(o, c) * 1.001:.8f},{min(o, c) * 0.999:.8f},{c:.8f},"
            f"{1.5 + i:.8f},{ct},{(1.5 + i) * c:.8f},{10 + i},{0.5:.8f},{0.5 * c:.8f},0"
        )
    return rows


def write_csv(path: Path, lines: list[str], *, header: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(([HEADER] if header else []) + lines) + "\n")
    return path


def make_zip(path: Path, members: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


T0 = datetime(2024, 3, 1, tzinfo=UTC)


# --- extract_zip -----------------------------------------------------------------------------


def test_extract_zip_streams_the_single_member(tmp_path: Path) -> None:
    text = "\n".join(kline_lines(T0, 5)) + "\n"
    z = make_zip(tmp_path / "BTCUSDT-1h-2024-03.zip", {"BTCUSDT-1h-2024-03.csv": text})
    out = extract_zip(z, tmp_path / "csv" / "BTCUSDT-1h-2024-03.csv")
    assert out.read_text() == text
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left behind


@pytest.mark.parametrize(
    "members",
    [
        {"BTCUSDT-1h-2024-03.csv": "x", "extra.zip": "y"},
        {"ETHUSDT-1h-2024-03.csv": "x"},
        {"sub/BTCUSDT-1h-2024-03.csv": "x"},
        {},
    ],
    ids=["extra-member", "wrong-name", "in-folder", "empty"],
)
def test_extract_zip_rejects_unexpected_members(tmp_path: Path, members: dict[str, str]) -> None:
    z = make_zip(tmp_path / "BTCUSDT-1h-2024-03.zip", members)
    dest = tmp_path / "csv" / "BTCUSDT-1h-2024-03.csv"
    with pytest.raises(ZipRejected):
        extract_zip(z, dest)
    assert not dest.exists()
    assert not dest.parent.exists() or not any(dest.parent.iterdir())


def test_extract_zip_rejects_non_zip_and_corrupt_member(tmp_path: Path) -> None:
    bogus = tmp_path / "BTCUSDT-1h-2024-03.zip"
    bogus.write_bytes(b"<html>not a zip</html>")
    with pytest.raises(ZipRejected):
        extract_zip(bogus, tmp_path / "a.csv")
    good = make_zip(
        tmp_path / "z" / "BTCUSDT-1h-2024-03.zip",
        {"BTCUSDT-1h-2024-03.csv": "\n".join(kline_lines(T0, 200)) + "\n"},
    )
    data = bytearray(good.read_bytes())
    data[200] ^= 0xFF  # flip a byte inside the compressed member
    good.write_bytes(bytes(data))
    dest = tmp_path / "b.csv"
    with pytest.raises(ZipRejected):
        extract_zip(good, dest)
    assert not dest.exists()


# --- read_kline_csv --------------------------------------------------------------------------


def test_header_sniffing_and_units_give_the_same_frame(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "a.csv", kline_lines(T0, 24))
    headed = write_csv(tmp_path / "b.csv", kline_lines(T0, 24), header=True)
    micro = write_csv(tmp_path / "c.csv", kline_lines(T0, 24, micro=True))
    assert not has_header(plain) and has_header(headed) and not has_header(micro)
    a, b, c = (read_kline_csv(p) for p in (plain, headed, micro))
    assert a.schema == pl.Schema(KLINE_SCHEMA)
    assert a.equals(b)
    assert a.drop("close_time").equals(c.drop("close_time"))
    assert a["open_time"][0] == T0
    # ms files close at …999 ms, µs files at …999999 µs: both one unit before the next open
    assert a["close_time"][0] == T0 + timedelta(hours=1) - timedelta(milliseconds=1)
    assert c["close_time"][0] == T0 + timedelta(hours=1) - timedelta(microseconds=1)
    assert a["trades"].dtype == pl.Int64 and a["open"].dtype == pl.Float64


def test_read_sorts_and_keeps_prices_as_floats(tmp_path: Path) -> None:
    lines = kline_lines(T0, 10)
    p = write_csv(tmp_path / "x.csv", lines[5:] + lines[:5])
    df = read_kline_csv(p)
    assert df["open_time"].is_sorted() and df.height == 10
    assert df["open"][0] == pytest.approx(100.0)
    assert df["close"].dtype == pl.Float64


def test_empty_csv_is_an_empty_canonical_frame(tmp_path: Path) -> None:
    p = tmp_path / "empty.csv"
    p.write_text("")
    assert read_kline_csv(p).schema == pl.Schema(KLINE_SCHEMA)
    header_only = tmp_path / "h.csv"
    header_only.write_text(HEADER + "\n")
    assert read_kline_csv(header_only).height == 0


# --- build_month -----------------------------------------------------------------------------


def test_build_month_from_dailies_dedupes_keeps_first_and_reports_gaps(tmp_path: Path) -> None:
    day1 = kline_lines(T0, 24, seed=1)
    day2 = kline_lines(T0 + timedelta(days=1), 24, seed=2)
    # day 2 repeats day 1's last bar (different values) and misses 3 hours in the middle
    dup = day1[-1].replace(",0\n", ",0").split(",")
    dup[4] = dup[3]  # close at the bar's low: a valid bar, different from day 1's
    d1 = write_csv(tmp_path / "d1.csv", day1)
    d2 = write_csv(tmp_path / "d2.csv", [",".join(dup), *day2[:10], *day2[13:]], header=True)
    out = build_month([d2, d1], tmp_path / "out" / "data.parquet", interval="1h")
    assert isinstance(out, MonthBuild)
    df = pl.read_parquet(out.path)
    assert out.rows == df.height == 24 + 21
    assert out.duplicates_dropped == 1
    assert df["open_time"].is_sorted() and df["open_time"].n_unique() == df.height
    # keep the first occurrence in the order the files were given (d2 first)
    last_of_day1 = df.filter(pl.col("open_time") == T0 + timedelta(hours=23))
    assert last_of_day1["close"][0] == float(dup[3]) != float(day1[-1].split(",")[4])
    assert (out.gaps, out.missing_bars) == (1, 3)
    assert out.first_open_time == T0 and out.last_open_time == T0 + timedelta(hours=47)
    assert out.sha256 == hashlib.sha256(out.path.read_bytes()).hexdigest()
    assert sorted(p.name for p in out.path.parent.iterdir()) == ["data.parquet"]


def test_build_month_is_byte_deterministic(tmp_path: Path) -> None:
    csvs = [
        write_csv(tmp_path / f"d{i}.csv", kline_lines(T0 + timedelta(days=i), 24, seed=i))
        for i in range(3)
    ]
    a = build_month(csvs, tmp_path / "a" / "data.parquet", interval="1h")
    b = build_month(csvs, tmp_path / "b" / "data.parquet", interval="1h")
    again = build_month(csvs, a.path, interval="1h")
    assert a.sha256 == b.sha256 == again.sha256
    assert a.path.read_bytes() == b.path.read_bytes()


def test_build_month_keeps_misaligned_bars(tmp_path: Path) -> None:
    lines = kline_lines(T0, 6)
    fields = lines[3].split(",")
    fields[0] = str(int(fields[0]) + 1_694_789)  # …:28:14.789 like Binance 2018-02
    lines[3] = ",".join(fields)
    out = build_month([write_csv(tmp_path / "m.csv", lines)], tmp_path / "p.parquet", interval="1h")
    df = pl.read_parquet(out.path)
    assert out.rows == 6
    off = find_off_grid(df, "1h")
    assert off.filter("off_grid").height == 1


def test_parquet_store_reads_with_hive_partitioning(tmp_path: Path) -> None:
    layout = HistoryLayout(tmp_path / "history")
    for sym, seed in (("BTCUSDT", 1), ("ETHUSDT", 2)):
        for month in (1, 2):
            start = datetime(2024, month, 1, tzinfo=UTC)
            csv = write_csv(tmp_path / f"{sym}{month}.csv", kline_lines(start, 48, seed=seed))
            build_month(
                [csv], layout.parquet_path(Series("spot", sym, "1h"), 2024, month), interval="1h"
            )
    glob = str(layout.parquet_dir / "**" / "*.parquet")
    rows = duckdb.sql(
        # DuckDB infers the zero-padded month=01 key as text: cast it
        f"select market, symbol, interval, year, month::int, count(*) n "
        f"from read_parquet('{glob}', hive_partitioning=true) group by all order by all"
    ).fetchall()
    assert rows == [("spot", s, "1h", 2024, m, 48) for s in ("BTCUSDT", "ETHUSDT") for m in (1, 2)]
    lf = pl.scan_parquet(glob, hive_partitioning=True)
    df = lf.filter((pl.col("symbol") == "ETHUSDT") & (pl.col("month") == 2)).collect()
    assert df.height == 48
    assert {"market", "symbol", "interval", "year", "month"} <= set(df.columns)
    assert df["open_time"].min() == datetime(2024, 2, 1, tzinfo=UTC)


# --- genuine Binance Vision files ------------------------------------------------------------


def _extract_all(zips: list[Path], dest: Path) -> list[Path]:
    return [extract_zip(z, dest / f"{z.stem}.csv") for z in zips]


def test_real_spot_ms_daily_zips(real_data: Path, tmp_path: Path) -> None:
    zips = sorted(
        (real_data / "lostleaf-binance_datatool/spot_daily_klines_BTCUSDT_1m").glob("*.zip")
    )
    csvs = _extract_all(zips, tmp_path)
    out = build_month(csvs, tmp_path / "p.parquet", interval="1m")
    assert (out.rows, out.gaps, out.duplicates_dropped) == (3 * 1440, 0, 0)
    df = pl.read_parquet(out.path)
    assert df["open_time"][0] == datetime(2020, 1, 1, tzinfo=UTC)
    assert df["open"][0] == 7195.24 and df["trades"][0] == 493
    assert df["close_time"][0] == datetime(2020, 1, 1, 0, 0, 59, 999000, tzinfo=UTC)
    rep = quality_report(df, "1m")
    assert rep.misaligned == 0 and rep.ohlc_violations == 0


def test_real_spot_microsecond_daily_zips(real_data: Path, tmp_path: Path) -> None:
    zips = sorted(
        (real_data / "tommy-ca-binance_datatool/spot_daily_klines_BTCUSDT_1h").glob("*.zip")
    )
    out = build_month(_extract_all(zips, tmp_path), tmp_path / "p.parquet", interval="1h")
    df = pl.read_parquet(out.path)
    assert out.rows == 48 and out.gaps == 0
    assert df["open_time"][0] == datetime(2026, 5, 8, tzinfo=UTC)
    assert df["close_time"][-1] == datetime(2026, 5, 9, 23, 59, 59, 999999, tzinfo=UTC)
    assert find_off_grid(df, "1h").height == 0


@pytest.mark.parametrize(
    ("folder", "interval", "rows"),
    [
        ("futures_um_daily_klines", "1m", 1440),
        ("futures_um_daily_klines", "1h", 24),
        ("futures_cm_daily_klines", "1m", 1440),
        ("spot_daily_klines", "1h", 24),
    ],
)
def test_real_hal9000cc_with_and_without_header(
    real_data: Path, tmp_path: Path, folder: str, interval: str, rows: int
) -> None:
    base = real_data / "hal9000cc-live_trading_indicators" / folder
    zips = sorted(base.glob(f"*-{interval}-*.zip"))
    assert zips
    for csv in _extract_all(zips, tmp_path):
        assert has_header(csv) == folder.startswith("futures")
        df = read_kline_csv(csv)
        day = datetime.strptime(csv.stem[-10:], "%Y-%m-%d").replace(tzinfo=UTC)
        assert df.height == rows
        assert df["open_time"][0] == day
        assert df["close_time"][-1] == day + timedelta(days=1) - timedelta(milliseconds=1)
        assert quality_report(df, interval).clean


def test_real_futures_csvs_without_header(real_data: Path, tmp_path: Path) -> None:
    base = real_data / "thecolngroup-alphakit/futures_um_BTCUSDT"
    monthly = base / "BTCUSDT-5m-2022-04.csv"
    assert not has_header(monthly)
    out = build_month([monthly], tmp_path / "m.parquet", interval="5m")
    assert out.rows == 30 * 288 and out.gaps == 0
    dailies = sorted(base.glob("BTCUSDT-1m-2022-05-0*.csv"))
    out = build_month(dailies, tmp_path / "d.parquet", interval="1m")
    assert out.rows == 3 * 1440 and out.gaps == 0
    assert out.first_open_time == datetime(2022, 5, 4, tzinfo=UTC)


def test_real_monthly_1d_across_the_ms_to_us_switch(real_data: Path, tmp_path: Path) -> None:
    base = real_data / "Banaqwer-j/spot_monthly_klines_BTCUSDT_1d"
    dec, jan = base / "BTCUSDT-1d-2024-12.zip", base / "BTCUSDT-1d-2025-01.zip"
    csvs = _extract_all([dec, jan], tmp_path)
    assert csvs[0].read_text().split(",", 1)[0] == "1733011200000"  # 13 digits
    assert csvs[1].read_text().split(",", 1)[0] == "1735689600000000"  # 16 digits
    out = build_month(csvs, tmp_path / "p.parquet", interval="1d")
    df = pl.read_parquet(out.path)
    assert out.rows == 62 and out.gaps == 0
    days = df["open_time"].to_list()
    assert days[0] == datetime(2024, 12, 1, tzinfo=UTC)
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days))
    assert find_off_grid(df, "1d").height == 0  # …999 ms and …999999 µs closes both accepted
    # every genuine monthly zip converts, continuous days throughout
    total = [read_kline_csv(c) for c in _extract_all(sorted(base.glob("*.zip")), tmp_path / "all")]
    allbars = pl.concat(total)
    assert allbars.height == 1795
    assert find_gaps(allbars, "1d").height == 0


def test_real_tampered_zip_is_rejected(real_data: Path, tmp_path: Path) -> None:
    z = real_data / "Banaqwer-j/tampered_not_official/BTCUSDT-1d-2021-01.zip"
    dest = tmp_path / "BTCUSDT-1d-2021-01.csv"
    with pytest.raises(ZipRejected, match=r"BTCUSDT-1d-2025-12\.zip"):
        extract_zip(z, dest)
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_real_alphakit_misaligned_2018_02_kept_and_reported(
    real_data: Path, tmp_path: Path
) -> None:
    csv = real_data / "thecolngroup-alphakit/spot_BTCUSDT_1h_monthly/BTCUSDT-1h-2018-02.csv"
    out = build_month([csv], tmp_path / "p.parquet", interval="1h")
    raw_rows = sum(1 for line in csv.read_text().splitlines() if line)
    df = pl.read_parquet(out.path)
    assert out.rows == raw_rows
    off = find_off_grid(df, "1h")
    misaligned = off.filter("off_grid")
    assert misaligned.height == 43
    assert all(t.minute == 28 and t.second == 14 for t in misaligned["open_time"])


def test_real_alphakit_gaps_match_sources(real_data: Path, tmp_path: Path) -> None:
    base = real_data / "thecolngroup-alphakit/spot_BTCUSDT_1h_monthly"
    feb = build_month([base / "BTCUSDT-1h-2020-02.csv"], tmp_path / "feb.parquet", interval="1h")
    assert feb.rows == 690 and feb.missing_bars == 29 * 24 - 690
    for name, rows in (("2021-02", 671), ("2021-04", 715)):
        out = build_month(
            [base / f"BTCUSDT-1h-{name}.csv"], tmp_path / f"{name}.parquet", interval="1h"
        )
        assert out.rows == rows
    out = build_month(sorted(base.glob("*.csv")), tmp_path / "all.parquet", interval="1h")
    df = pl.read_parquet(out.path)
    assert out.rows == 39_638 and out.duplicates_dropped == 0
    gaps = find_gaps(df, "1h")
    # SOURCES.md: 28 irregular steps / 94 missing on-grid hours, plus the 2018-02-08 outage that
    # ends at a misaligned bar (33 grid slots) and the short step back onto the grid after it.
    steps = df["open_time"].diff().drop_nulls()
    assert (steps != timedelta(hours=1)).sum() == 28
    on_grid_end = gaps.filter(pl.col("end").dt.minute() == 0)
    assert (on_grid_end.height, on_grid_end["missing_bars"].sum()) == (26, 94)
    odd = gaps.filter(pl.col("end").dt.minute() != 0)
    assert odd["missing_bars"].to_list() == [33]
    rep = quality_report(df, "1h")
    assert rep.off_grid == 43 and rep.close_before_open == 1 and rep.bad_close >= 14


def test_real_alphakit_eth_gaps(real_data: Path, tmp_path: Path) -> None:
    base = real_data / "thecolngroup-alphakit/spot_ETHUSDT_1h_monthly"
    out = build_month(
        sorted(base.glob("ETHUSDT-1h-2021-0*.csv")), tmp_path / "p.parquet", interval="1h"
    )
    gaps = find_gaps(pl.read_parquet(out.path), "1h")
    assert [
        (g.date().isoformat(), n) for g, n in zip(gaps["start"], gaps["missing_bars"], strict=True)
    ] == [
        ("2021-02-11", 1),
        ("2021-03-06", 1),
    ]


def test_failed_build_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_csv(tmp_path / "a.csv", kline_lines(T0, 24))
    target = tmp_path / "out" / "data.parquet"
    first = build_month([csv], target, interval="1h")

    def boom(self: pl.DataFrame, path: Path, **_: object) -> None:
        Path(path).write_bytes(b"half a parquet")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        build_month(
            [csv, write_csv(tmp_path / "b.csv", kline_lines(T0, 48))], target, interval="1h"
        )
    assert hashlib.sha256(target.read_bytes()).hexdigest() == first.sha256
    assert [p.name for p in target.parent.iterdir()] == ["data.parquet"]
