"""Write Binance-Vision-shaped files (a kline CSV zipped, with its ``.CHECKSUM``) from candles.

The CSVs are real Binance kline format: 12 columns, no header for spot (a header on request for
futures), millisecond times, and microseconds for spot files dated 2025-01-01 or later. Equal
candles give equal bytes (fixed zip timestamps), so a re-written tree keeps its ETags.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from trading_pipeline.history.checksum import format_checksum
from trading_pipeline.history.layout import Series
from trading_pipeline.history.vision import VisionFile
from trading_pipeline.market.schema import conform

HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
MICROS_FROM = date(2025, 1, 1)
# open ms, open, high, low, close, volume, close ms, quote volume, trades, taker base, taker quote
Row = tuple[int, float, float, float, float, float, int, float, int, float, float]


def kline_csv(series: Series, period: date, rows: Iterable[Row], *, header: bool = False) -> bytes:
    """Render rows as Binance prints them (µs for spot from 2025-01-01, 8 or 2 decimals)."""
    scale = 1000 if series.market == "spot" and period >= MICROS_FROM else 1
    places = 8 if series.market == "spot" else 2
    out = io.StringIO()
    if header:
        out.write(HEADER + "\n")
    for o, op, hi, lo, cl, vol, c, qv, n, tb, tq in rows:
        prices = ",".join(f"{x:.{places}f}" for x in (op, hi, lo, cl))
        out.write(
            f"{o * scale},{prices},{vol:.8f},{c * scale + (scale - 1)},"
            f"{qv:.8f},{n},{tb:.8f},{tq:.8f},0\n"
        )
    return out.getvalue().encode("ascii")


def zip_bytes(member: str, payload: bytes, stamp: date) -> bytes:
    """A zip holding one member with a fixed timestamp, so equal input gives equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(member, date_time=(stamp.year, stamp.month, stamp.day, 0, 30, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, payload)
    return buffer.getvalue()


def write_vision_file(
    root: Path,
    file: VisionFile,
    payload: bytes,
    *,
    checksum: bool = True,
    checksum_newline: bool = False,
) -> Path:
    """Put one zip (its CSV ``payload`` inside) and its ``.CHECKSUM`` under ``root``."""
    path = root / file.key
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.name[: -len(".zip")]
    data = zip_bytes(f"{stem}.csv", payload, file.period + timedelta(days=1))
    path.write_bytes(data)
    if checksum:
        digest = hashlib.sha256(data).hexdigest()
        path.with_name(path.name + ".CHECKSUM").write_bytes(
            format_checksum(digest, path.name, newline=checksum_newline)
        )
    return path


def frame_rows(frame: pl.DataFrame) -> Iterator[Row]:
    """The rows of a canonical kline frame (missing volumes and counts as 0), times in ms."""
    df = conform(frame).with_columns(
        pl.col("open_time").dt.epoch("ms"),
        pl.col("close_time").dt.epoch("ms"),
        pl.col(
            "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume", "volume"
        ).fill_null(0.0),
        pl.col("trades").fill_null(0),
    )
    yield from df.iter_rows()  # type: ignore[misc]


def write_vision_months(root: Path, series: Series, frame: pl.DataFrame) -> list[Path]:
    """Write ``frame`` (canonical klines of ``series``) as one monthly zip per calendar month it
    touches, each with its ``.CHECKSUM``, under ``root/data/…``; return the zips written."""
    keyed = frame.sort("open_time").with_columns(
        pl.col("open_time").dt.year().alias("_y"), pl.col("open_time").dt.month().alias("_m")
    )
    written = []
    for (year, month), part in keyed.group_by(["_y", "_m"], maintain_order=True):
        period = date(int(year), int(month), 1)  # type: ignore[call-overload]
        file = VisionFile(series.market, series.symbol, series.interval, "monthly", period)
        payload = kline_csv(series, period, frame_rows(part.drop("_y", "_m")))
        written.append(write_vision_file(root, file, payload))
    return written
