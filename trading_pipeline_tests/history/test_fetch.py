"""The fetcher end to end against the local mirror: plan, download, verify, convert, re-run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.history.download import RetryPolicy
from trading_pipeline.history.fetch import (
    FetchRequest,
    FetchSummary,
    build_month_parquet,
    download_month,
    extract_month,
    run_fetch,
)
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.manifest import Manifest
from trading_pipeline.history.vision import daily_key, monthly_key
from trading_pipeline_tests.fakes.faults import FaultyMirror, faulty_mirror
from trading_pipeline_tests.fakes.vision import make_vision_tree, month_days, month_range

from .conftest import SPOT_1H, files_under

pytestmark = pytest.mark.slow  # a local HTTP server (the Vision mirror)

TODAY = date(2025, 2, 11)
FAST = RetryPolicy(attempts=4, sleep=lambda _: None)


def fetch(
    mirror: FaultyMirror,
    layout: HistoryLayout,
    *,
    start: date = date(2024, 11, 1),
    end: date = date(2025, 2, 28),
    fill_daily: bool = True,
    force: bool = False,
    series: Series = SPOT_1H,
    today: date = TODAY,
) -> FetchSummary:
    request = FetchRequest(
        series.market, (series.symbol,), series.interval, start, end, fill_daily, force
    )
    return run_fetch(
        request, layout=layout, vision_url=mirror.url, listing_url=mirror.url,
        today=today, retry=FAST, concurrency=3,
    )  # fmt: skip


def parquet_hashes(layout: HistoryLayout) -> dict[str, str]:
    return {
        p.relative_to(layout.root).as_posix(): sha256_file(p)
        for p in sorted(layout.parquet_dir.rglob("*.parquet"))
    }


def assert_no_unverified_files(layout: HistoryLayout, tree: Path) -> None:
    """Every zip under a final name is byte-identical to the published one; no ``.part``."""
    assert not [p for p in layout.root.rglob("*") if p.name.endswith(".part")]
    for path in layout.raw_dir.rglob("*.zip"):
        key = path.relative_to(layout.raw_dir).as_posix()
        assert path.read_bytes() == (tree / key).read_bytes(), key


@pytest.fixture
def published(tree: Path) -> Path:
    """Nov 2024 – Jan 2025 monthly (ms → µs at the new year), Feb 2025 only as dailies 1–10."""
    make_vision_tree(tree, SPOT_1H, months=month_range((2024, 11), 3))
    make_vision_tree(tree, SPOT_1H, days=month_days(2025, 2, until=date(2025, 2, 10)))
    return tree


def test_monthly_plus_fill_daily_over_paginated_listing(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    summary = fetch(mirror, layout)
    assert summary.ok and summary.new == 13 and summary.skipped == 0
    assert [(b.rows, b.gaps) for b in summary.months] == [(720, 0), (744, 0), (744, 0), (240, 0)]
    assert summary.rows == 720 + 744 + 744 + 240
    frame = duckdb.sql(
        f"select year, month, count(*) n, min(open_time) lo, max(open_time) hi from read_parquet("
        f"'{layout.parquet_dir}/**/*.parquet', hive_partitioning=true) group by all order by all"
    ).pl()
    assert frame["n"].to_list() == [720, 744, 744, 240]
    assert frame["hi"][-1] == datetime(2025, 2, 10, 23, tzinfo=UTC)  # µs file read as µs
    lazy = pl.scan_parquet(layout.parquet_dir, hive_partitioning=True)
    assert lazy.select(pl.len()).collect().item() == 2448
    entries = Manifest(layout.manifest_path).load()
    jan = entries[monthly_key(SPOT_1H, 2025, 1)]
    listed = (published / jan.key).stat()
    assert (jan.size, jan.rows, jan.kind, jan.period) == (listed.st_size, 744, "monthly", "2025-01")
    assert jan.etag == hashlib.md5((published / jan.key).read_bytes()).hexdigest()
    assert jan.sha256 == sha256_file(published / jan.key) and jan.parquet_path
    feb1 = entries[daily_key(SPOT_1H, date(2025, 2, 1))]
    assert (feb1.kind, feb1.rows, feb1.period) == ("daily", 24, "2025-02-01")
    listings = [p for m, p, _ in mirror.faults.requests if p == ""]
    assert len(listings) > 2  # pages of 3 entries
    assert_no_unverified_files(layout, published)


def test_rerun_with_nothing_new_downloads_nothing(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    fetch(mirror, layout)
    before = files_under(layout.root)
    mirror.faults.clear()
    again = fetch(mirror, layout)
    assert again.ok and again.new == 0 and again.skipped == 13 and again.months == []
    assert mirror.faults.count("*.zip") == 0 and mirror.faults.count("*.CHECKSUM") == 0
    assert files_under(layout.root) == before


def test_force_downloads_and_rebuilds_everything(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    fetch(mirror, layout)
    hashes = parquet_hashes(layout)
    mirror.faults.clear()
    forced = fetch(mirror, layout, force=True)
    assert forced.ok and forced.new == 13 and len(forced.months) == 4
    assert mirror.faults.count("*.zip") == 13
    assert parquet_hashes(layout) == hashes  # same input, same bytes


def test_monthly_appearing_later_supersedes_dailies(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    fetch(mirror, layout, today=date(2025, 2, 11))
    make_vision_tree(published, SPOT_1H, months=[(2025, 2)], seed=7)  # Binance publishes Feb
    mirror.faults.clear()
    summary = fetch(mirror, layout, today=date(2025, 3, 4))
    assert summary.ok and summary.new == 1 and [b.rows for b in summary.months] == [672]
    assert mirror.faults.count("*.zip") == 1
    entries = Manifest(layout.manifest_path).load()
    assert not [k for k in entries if "/daily/" in k]
    assert not list(layout.raw_dir.rglob("*-2025-02-??.zip*"))
    assert not list(layout.csv_dir.rglob("*-2025-02-??.csv"))
    feb = pl.read_parquet(layout.parquet_path(SPOT_1H, 2025, 2))
    monthly_csv = pl.read_csv(layout.csv_path(monthly_key(SPOT_1H, 2025, 2)), has_header=False)
    assert feb["close"].to_list() == monthly_csv["column_4"].to_list()


def test_republished_file_is_refetched_and_rebuilt(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    fetch(mirror, layout)
    hashes = parquet_hashes(layout)
    old = Manifest(layout.manifest_path).load()[monthly_key(SPOT_1H, 2024, 12)]
    make_vision_tree(published, SPOT_1H, months=[(2024, 12)], seed=3)  # silently regenerated
    mirror.faults.clear()
    summary = fetch(mirror, layout)
    assert summary.ok and summary.new == 1 and mirror.faults.count("*.zip") == 1
    new = Manifest(layout.manifest_path).load()[monthly_key(SPOT_1H, 2024, 12)]
    assert new.etag != old.etag and new.sha256 != old.sha256 and new.parquet_sha256
    changed = {k for k, v in parquet_hashes(layout).items() if hashes[k] != v}
    assert changed == {
        "parquet/market=spot/symbol=BTCUSDT/interval=1h/year=2024/month=12/data.parquet"
    }
    assert new.parquet_sha256 == parquet_hashes(layout)[next(iter(changed))]


def test_new_listing_metadata_with_same_bytes_is_not_downloaded(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    fetch(mirror, layout)
    key = monthly_key(SPOT_1H, 2024, 11)
    os.utime(published / key, (1_800_000_000, 1_800_000_000))  # Last-Modified changes only
    mirror.faults.clear()
    summary = fetch(mirror, layout)
    assert summary.ok and summary.new == 0 and summary.months == []
    assert mirror.faults.count("*.zip") == 0 and mirror.faults.count("*.CHECKSUM") == 1
    assert Manifest(layout.manifest_path).load()[key].last_modified.startswith("2027-01-15")


@pytest.mark.parametrize(
    ("kind", "times", "ok"),
    [
        ("status", 2, True),
        ("truncate", 2, True),
        ("reset", 2, True),
        ("slow", None, True),
        ("status", None, False),
        ("wrong_checksum", None, False),
        ("missing", None, False),
    ],
)
def test_every_fault_ends_verified_or_named(
    published: Path,
    mirror: FaultyMirror,
    layout: HistoryLayout,
    kind: str,
    times: int | None,
    ok: bool,
) -> None:
    victim = monthly_key(SPOT_1H, 2024, 12)
    target = victim + (".CHECKSUM" if kind in ("wrong_checksum", "missing") else "")
    mirror.faults.add(kind, target, times=times, delay=0.001)
    summary = fetch(mirror, layout)
    assert summary.ok is ok
    assert_no_unverified_files(layout, published)
    if ok:
        assert summary.new == 13 and len(summary.months) == 4
        return
    assert summary.failed == [victim] and victim in summary.errors
    assert not layout.raw_path(victim).exists()
    assert not layout.parquet_path(SPOT_1H, 2024, 12).exists()  # never converted
    assert len(summary.months) == 3
    mirror.faults.clear()  # the fault is gone: a re-run completes the month
    again = fetch(mirror, layout)
    assert again.ok and again.new == 1 and layout.parquet_path(SPOT_1H, 2024, 12).exists()


def test_stage_functions_for_dagster(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    kw = {"layout": layout, "vision_url": mirror.url, "listing_url": mirror.url, "today": TODAY}
    got = download_month(SPOT_1H, 2025, 2, fill_daily=True, **kw)  # type: ignore[arg-type]
    assert got.source == "daily" and [f.status for f in got.files] == ["new"] * 10
    assert got.files[0].sha256 == sha256_file(layout.raw_path(got.files[0].key))
    csvs = extract_month(SPOT_1H, 2025, 2, layout=layout)
    assert [p.name for p in csvs] == [f"BTCUSDT-1h-2025-02-{d:02d}.csv" for d in range(1, 11)]
    build = build_month_parquet(SPOT_1H, 2025, 2, layout=layout)
    assert build.rows == 240 and build.path == layout.parquet_path(SPOT_1H, 2025, 2)
    again = download_month(SPOT_1H, 2025, 2, fill_daily=True, **kw)  # type: ignore[arg-type]
    assert [f.status for f in again.files] == ["skipped"] * 10
    none = download_month(SPOT_1H, 2025, 3, **kw)  # type: ignore[arg-type]
    assert none.source == "none" and none.files == []
    monthly = download_month(SPOT_1H, 2024, 11, **kw)  # type: ignore[arg-type]
    assert monthly.source == "monthly" and monthly.files[0].status == "new"


def test_sigkill_mid_download_then_rerun_gives_identical_parquet(
    published: Path, mirror: FaultyMirror, tmp_path: Path
) -> None:
    clean = HistoryLayout(tmp_path / "clean")
    assert fetch(mirror, clean).ok
    killed = HistoryLayout(tmp_path / "killed" / "history")
    mirror.faults.clear()
    mirror.faults.add("slow", "*.zip", delay=0.02)
    args = [
        sys.executable, "-m", "trading_pipeline", "fetch", "--symbol", "BTCUSDT",
        "--interval", "1h", "--from", "2024-11-01", "--to", "2025-02-10", "--fill_daily",
        "--data-dir", str(killed.root.parent), "--base-url", mirror.url,
        "--listing-url", mirror.url, "--concurrency", "2",
    ]  # fmt: skip
    env = {**os.environ, "TP_HISTORY_DIR": ""}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            parts = [p for p in killed.raw_dir.rglob("*.part") if p.stat().st_size > 0]
            if parts:
                break
            time.sleep(0.02)
        assert parts, "the fetch never started a download"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    mirror.faults.clear()
    again = fetch(mirror, killed, end=date(2025, 2, 10))
    assert again.ok
    resumed = [r for _, p, r in mirror.faults.requests if r.startswith("bytes=")]
    assert resumed  # the .part was continued, not thrown away
    assert parquet_hashes(killed) == parquet_hashes(clean)
    assert_no_unverified_files(killed, published)


def test_unknown_interval_folder_means_no_files_not_an_error(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    summary = fetch(mirror, layout, series=Series("spot", "BTCUSDT", "4h"))
    assert summary.ok and summary.new == 0 and summary.months == []
    assert not layout.parquet_dir.exists()


def test_two_symbols_share_one_run(tree: Path, mirror: FaultyMirror, layout: HistoryLayout) -> None:
    for symbol in ("BTCUSDT", "ETHUSDT"):
        make_vision_tree(tree, Series("spot", symbol, "1d"), months=month_range((2024, 1), 2))
    request = FetchRequest(
        "spot", ("btcusdt", "ETHUSDT", "BTCUSDT"), "1d", date(2024, 1, 1), date(2024, 2, 29)
    )
    events: list[str] = []
    summary = run_fetch(
        request, layout=layout, vision_url=mirror.url, listing_url=mirror.url,
        progress=lambda e: events.append(e.stage),
    )  # fmt: skip
    assert summary.ok and summary.new == 4 and summary.rows == 31 + 29 + 31 + 29
    assert events.count("list") == 2 and events.count("download") == 4
    assert sorted(p.parent.parent.parent.parent.name for p in layout.parquet_dir.rglob("*.parquet")) == [
        "symbol=BTCUSDT", "symbol=BTCUSDT", "symbol=ETHUSDT", "symbol=ETHUSDT",
    ]  # fmt: skip


def test_mirror_of_other_markets_with_header(tree: Path, layout: HistoryLayout) -> None:
    um = Series("um", "BTCUSDT", "1h")
    make_vision_tree(tree, um, months=[(2022, 4)], header=False)
    make_vision_tree(tree, um, months=[(2022, 9)], header=True)
    with faulty_mirror(tree, page_size=2) as mirror:
        summary = fetch(
            mirror,
            layout,
            series=um,
            start=date(2022, 4, 1),
            end=date(2022, 9, 30),
            fill_daily=False,
        )
    assert summary.ok and [b.rows for b in summary.months] == [720, 720]
    assert "market=um" in layout.parquet_path(um, 2022, 9).parts


# ---------------------------------------------------------------- genuine Binance zips


def place(tree: Path, series: Series, kind: str, src: Path, checksum: bytes | None = None) -> str:
    """Copy a genuine zip into the mirror tree at its Binance key; write a .CHECKSUM if asked."""
    stem = src.name[: -len(".zip")]
    period = stem[len(f"{series.symbol}-{series.interval}-") :]
    if kind == "monthly":
        key = monthly_key(series, int(period[:4]), int(period[5:7]))
    else:
        key = daily_key(series, date.fromisoformat(period))
    dest = tree / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(src.read_bytes())
    official = src.with_name(src.name + ".CHECKSUM")
    if checksum is None and official.exists():
        checksum = official.read_bytes()
    if checksum is None:
        checksum = f"{sha256_file(src)}  {src.name}".encode()
    dest.with_name(dest.name + ".CHECKSUM").write_bytes(checksum)
    return key


def fetch_real(
    mirror: FaultyMirror,
    layout: HistoryLayout,
    series: Series,
    start: date,
    end: date,
    fill_daily: bool = True,
) -> FetchSummary:
    return fetch(
        mirror,
        layout,
        series=series,
        start=start,
        end=end,
        fill_daily=fill_daily,
        today=date(2026, 11, 24),
    )


def test_real_spot_ms_daily_with_official_checksum(
    real_data: Path, tree: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    series = Series("spot", "BTCUSDT", "1m")
    folder = real_data / "lostleaf-binance_datatool/spot_daily_klines_BTCUSDT_1m"
    for src in sorted(folder.glob("*.zip")):
        assert len(src.with_name(src.name + ".CHECKSUM").read_bytes()) == 91
        place(tree, series, "daily", src)
    summary = fetch_real(mirror, layout, series, date(2020, 1, 1), date(2020, 1, 3))
    assert summary.ok and summary.new == 3 and summary.rows == 3 * 1440 and summary.gaps == 0
    frame = pl.read_parquet(layout.parquet_path(series, 2020, 1))
    assert frame["open_time"][0] == datetime(2020, 1, 1, tzinfo=UTC)
    assert frame["open"][0] == 7195.24 and frame["trades"][0] == 493


def test_real_spot_microsecond_daily_with_newline_checksum(
    real_data: Path, tree: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    series = Series("spot", "BTCUSDT", "1h")
    folder = real_data / "tommy-ca-binance_datatool/spot_daily_klines_BTCUSDT_1h"
    for src in sorted(folder.glob("*.zip")):
        assert src.with_name(src.name + ".CHECKSUM").read_bytes().endswith(b"\n")
        place(tree, series, "daily", src)
    summary = fetch_real(mirror, layout, series, date(2026, 5, 8), date(2026, 5, 9))
    assert summary.ok and summary.rows == 48 and summary.gaps == 0
    frame = pl.read_parquet(layout.parquet_path(series, 2026, 5))
    assert frame["open_time"][0] == datetime(2026, 5, 8, tzinfo=UTC)
    assert frame["close_time"][-1] == datetime(2026, 5, 9, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("market", "symbol", "interval", "folder", "start", "rows"),
    [
        ("um", "BTCUSDT", "1m", "futures_um_daily_klines", date(2022, 9, 5), 2880),
        ("um", "ETHUSDT", "1h", "futures_um_daily_klines", date(2022, 8, 24), 48),
        ("cm", "BTCUSD_PERP", "1m", "futures_cm_daily_klines", date(2022, 10, 24), 2880),
        ("spot", "ETHUSDT", "1m", "spot_daily_klines", date(2022, 8, 14), 2880),
    ],
)
def test_real_hal9000cc_daily_files(
    real_data: Path,
    tree: Path,
    mirror: FaultyMirror,
    layout: HistoryLayout,
    market: str,
    symbol: str,
    interval: str,
    folder: str,
    start: date,
    rows: int,
) -> None:
    series = Series(market, symbol, interval)
    sources = sorted(
        (real_data / "hal9000cc-live_trading_indicators" / folder).glob(
            f"{symbol}-{interval}-*.zip"
        )
    )
    assert len(sources) == 2
    for src in sources:
        place(tree, series, "daily", src)  # no .CHECKSUM in that repo: we write one
    summary = fetch_real(mirror, layout, series, start, date.fromordinal(start.toordinal() + 1))
    assert summary.ok and summary.rows == rows and summary.gaps == 0
    frame = pl.read_parquet(layout.parquet_path(series, start.year, start.month))
    assert frame["open_time"][0] == datetime(start.year, start.month, start.day, tzinfo=UTC)
    assert frame["open"].min() > 0  # header rows were not parsed as data


def test_real_monthly_1d_across_the_microsecond_switch(
    real_data: Path, tree: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    series = Series("spot", "BTCUSDT", "1d")
    folder = real_data / "Banaqwer-j/spot_monthly_klines_BTCUSDT_1d"
    official = dict(
        reversed(line.split())
        for line in (real_data / "reference_checksums/BTCUSDT-1d-monthly-2021-2024.sha256")
        .read_text()
        .splitlines()
        if line.strip()
    )
    for name in (
        "BTCUSDT-1d-2024-11.zip",
        "BTCUSDT-1d-2024-12.zip",
        "BTCUSDT-1d-2025-01.zip",
        "BTCUSDT-1d-2025-02.zip",
    ):
        digest = official.get(name)
        place(
            tree, series, "monthly", folder / name, f"{digest}  {name}".encode() if digest else None
        )
    summary = fetch_real(
        mirror, layout, series, date(2024, 11, 1), date(2025, 2, 28), fill_daily=False
    )
    assert summary.ok and summary.rows == 30 + 31 + 31 + 28 and summary.gaps == 0
    both = (
        pl.scan_parquet(layout.series_dir(series), hive_partitioning=True)
        .sort("open_time")
        .collect()
    )
    steps = both["open_time"].diff().drop_nulls().unique().to_list()
    assert len(steps) == 1 and steps[0].total_seconds() == 86_400  # ms Dec and µs Jan line up
    assert both.filter(pl.col("month") == 1)["open_time"][0] == datetime(2025, 1, 1, tzinfo=UTC)


def test_real_tampered_zip_is_rejected_both_ways(
    real_data: Path, tree: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    series = Series("spot", "BTCUSDT", "1d")
    tampered = real_data / "Banaqwer-j/tampered_not_official/BTCUSDT-1d-2021-01.zip"
    official = "6ff53d94f600e2a208882bfd5c00e2133cff8f07e57b7f373af29f85f86e0284"
    assert (
        official
        in (real_data / "reference_checksums/BTCUSDT-1d-monthly-2021-2024.sha256").read_text()
    )
    key = place(tree, series, "monthly", tampered, f"{official}  {tampered.name}".encode())
    summary = fetch_real(
        mirror, layout, series, date(2021, 1, 1), date(2021, 1, 31), fill_daily=False
    )
    assert summary.failed == [key] and "does not match" in summary.errors[key]
    assert not layout.raw_path(key).exists() and not layout.parquet_dir.exists()
    place(tree, series, "monthly", tampered)  # now served with its own (matching) checksum
    mirror.faults.clear()
    summary = fetch_real(
        mirror, layout, series, date(2021, 1, 1), date(2021, 1, 31), fill_daily=False
    )
    assert summary.failed == [key] and "expected exactly one member" in summary.errors[key]
    assert not layout.raw_path(key).exists() and not layout.csv_path(key).exists()
    assert not layout.parquet_dir.exists() and key not in Manifest(layout.manifest_path).load()


def test_two_fetches_at_once_share_files_and_manifest(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    mirror.faults.add("slow", "*.zip", delay=0.001)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: fetch(mirror, layout), range(2)))
    assert all(r.ok for r in results)
    assert sum(r.new for r in results) >= 13  # each file downloaded once or, at worst, twice
    assert_no_unverified_files(layout, published)
    entries = Manifest(layout.manifest_path).load()
    assert len(entries) == 13 and all(e.parquet_sha256 for e in entries.values())
    assert len(parquet_hashes(layout)) == 4


def test_rerun_repairs_lost_checksums_and_removes_killed_runs_litter(
    published: Path, mirror: FaultyMirror, layout: HistoryLayout
) -> None:
    fetch(mirror, layout)
    before = files_under(layout.root)
    zips = sorted(layout.raw_dir.rglob("*.zip"))
    for z in zips[:3]:  # three verified zips lose their sidecar
        z.with_name(z.name + ".CHECKSUM").unlink()
    litter = [
        layout.parquet_dir / ".data.parquet.k1ll3d.part",
        layout.root / ".manifest.json.x9.part",
    ]
    for path in litter:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written")
        os.utime(path, (time.time() - 3600, time.time() - 3600))  # older than this process
    mirror.faults.clear()
    again = fetch(mirror, layout)
    assert again.ok and again.litter_removed == 2 and again.months == []
    assert mirror.faults.count("*.CHECKSUM") == 3 and mirror.faults.count("*.zip") == 0
    assert not any(p.exists() for p in litter)
    assert files_under(layout.root) == before
