"""Binance Vision zips → CSV → one month of canonical klines as Parquet.

``extract_zip`` checks that a zip holds exactly one ``<stem>.csv`` (tampered third-party zips
carry extra members) and streams it out atomically. ``read_kline_csv`` sniffs the header per file
(futures files gained one in 2022), normalises ms and µs timestamps by magnitude (spot switched to
µs on 2025-01-01) and returns the canonical schema. ``build_month`` concatenates one monthly CSV or
several daily CSVs, drops exact duplicate ``open_time`` rows (keeping the first), sorts, and writes
Parquet whose bytes depend only on the input, so a killed-and-rerun fetch produces the same file.
Truncated or misaligned bars are kept as they are; ``trading_pipeline.market.quality`` reports them.
"""

from __future__ import annotations

import shutil
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import polars as pl

from trading_pipeline.fsutil import atomic_path
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.market.quality import count_gaps
from trading_pipeline.market.schema import KLINE_COLUMNS, KLINE_SCHEMA, UTC_US
from trading_pipeline.market.validation import CandleError, validate_candles

# The 12 CSV columns as read; ``ignore`` is never parsed (``columns=`` projects it away).
_RAW_SCHEMA: dict[str, pl.DataType] = {
    "open_time": pl.Int64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "close_time": pl.Int64(),
    "quote_volume": pl.Float64(),
    "trades": pl.Int64(),
    "taker_buy_base_volume": pl.Float64(),
    "taker_buy_quote_volume": pl.Float64(),
    "ignore": pl.String(),
}
_KEEP = list(range(11))
# Epoch values below this are milliseconds (13 digits today), at or above it microseconds (16).
_US_THRESHOLD = 10**14
PARQUET_COMPRESSION: Final = "zstd"
PARQUET_COMPRESSION_LEVEL = 3
_ROW_GROUP_SIZE = 1 << 20
_COPY_CHUNK = 1 << 20


class ZipRejected(ValueError):
    """The file is not a zip, or does not hold exactly one member named ``<zip stem>.csv``."""


@dataclass(frozen=True)
class MonthBuild:
    """What ``build_month`` wrote: the Parquet path, its row span, and its SHA-256."""

    path: Path
    rows: int
    first_open_time: datetime | None
    last_open_time: datetime | None
    gaps: int
    duplicates_dropped: int
    sha256: str
    missing_bars: int = 0


def extract_zip(zip_path: Path, csv_path: Path) -> Path:
    """Validate ``zip_path`` and stream its single ``<stem>.csv`` member to ``csv_path`` atomically."""
    zip_path, csv_path = Path(zip_path), Path(csv_path)
    expected = f"{zip_path.stem}.csv"
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if len(infos) != 1 or names[0] != expected:
                raise ZipRejected(
                    f"{zip_path.name}: expected exactly one member {expected!r}, found {names}"
                )
            with zf.open(infos[0]) as src, atomic_path(csv_path) as tmp, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, _COPY_CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ZipRejected(f"{zip_path.name}: not a valid zip ({exc})") from exc
    return csv_path


def has_header(csv_path: Path) -> bool:
    """True when the first field of the first line is not an integer (futures files since 2022)."""
    with open(csv_path, "rb") as fh:
        first = fh.readline(4096)
    field = first.split(b",", 1)[0].strip().lstrip(b"\xef\xbb\xbf")
    if not field:
        return False
    return not field.lstrip(b"-").isdigit()


def _epoch_to_utc(name: str) -> pl.Expr:
    raw = pl.col(name)
    us = pl.when(raw < _US_THRESHOLD).then(raw * 1000).otherwise(raw)
    return us.cast(UTC_US).alias(name)


def read_kline_csv(csv_path: Path) -> pl.DataFrame:
    """Read one Binance kline CSV into the canonical schema, sorted by ``open_time``."""
    csv_path = Path(csv_path)
    if csv_path.stat().st_size == 0:
        return pl.DataFrame(schema=KLINE_SCHEMA)
    try:
        df = pl.read_csv(
            csv_path,
            has_header=False,
            skip_rows=1 if has_header(csv_path) else 0,
            schema=_RAW_SCHEMA,
            columns=_KEEP,
        )
    except pl.exceptions.PolarsError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CandleError(f"{csv_path.name}: unparsable CSV ({reason})") from exc
    df = df.with_columns(_epoch_to_utc("open_time"), _epoch_to_utc("close_time"))
    df = df.select(KLINE_COLUMNS)
    if not df["open_time"].is_sorted():
        df = df.sort("open_time", maintain_order=True)
    return df


def _dedupe_sorted(df: pl.DataFrame) -> pl.DataFrame:
    """Drop rows whose ``open_time`` equals the previous row's (input already stably sorted)."""
    if df.height < 2:
        return df
    if df["open_time"].n_unique() == df.height:
        return df
    keep = pl.col("open_time") != pl.col("open_time").shift(1)
    return df.filter(keep.fill_null(True))


def concat_klines(csv_paths: Sequence[Path]) -> tuple[pl.DataFrame, int]:
    """Read, concatenate, stably sort and de-duplicate CSVs; returns (frame, duplicates dropped)."""
    frames = [read_kline_csv(Path(p)) for p in csv_paths]
    if not frames:
        return pl.DataFrame(schema=KLINE_SCHEMA), 0
    df = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical", rechunk=True)
    if len(frames) > 1 and not df["open_time"].is_sorted():
        df = df.sort("open_time", maintain_order=True)
    before = df.height
    df = _dedupe_sorted(df)
    return df, before - df.height


def write_parquet(df: pl.DataFrame, parquet_path: Path) -> str:
    """Write ``df`` to ``parquet_path`` atomically with fixed settings; return the SHA-256."""
    with atomic_path(parquet_path) as tmp:
        df.write_parquet(
            tmp,
            compression=PARQUET_COMPRESSION,
            compression_level=PARQUET_COMPRESSION_LEVEL,
            statistics=True,
            row_group_size=_ROW_GROUP_SIZE,
        )
        digest = sha256_file(tmp)
    return digest


def build_month(
    csv_paths: Sequence[Path],
    parquet_path: Path,
    *,
    interval: str,
    period: tuple[int, int] | None = None,
) -> MonthBuild:
    """Concatenate a month's CSVs, drop duplicate open_times (keep first), sort, write Parquet.

    The bars are validated first (``market.validation``; every bar inside ``period`` when it is
    given): a bad month raises :class:`CandleError` naming the bar and writes nothing."""
    df, dropped = concat_klines(csv_paths)
    names = [Path(p).name for p in csv_paths]
    source = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}" if names else "month"
    validate_candles(df, source=source, interval=interval, grid="median", month=period)
    digest = write_parquet(df, Path(parquet_path))
    gaps, missing = count_gaps(df, interval)
    first = df["open_time"][0] if df.height else None
    last = df["open_time"][-1] if df.height else None
    return MonthBuild(
        path=Path(parquet_path),
        rows=df.height,
        first_open_time=first,
        last_open_time=last,
        gaps=gaps,
        duplicates_dropped=dropped,
        sha256=digest,
        missing_bars=missing,
    )
