"""The one store writer of the tests: frames into the history store, through the package's
:class:`~trading_pipeline.history.layout.HistoryLayout` and Parquet writer (and, on request,
recorded in ``manifest.json`` as an import is)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from trading_pipeline.history.convert import write_parquet
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.manifest import Manifest, ManifestEntry
from trading_pipeline.market.quality import count_gaps


def write_store(
    history_dir: Path, series: Series | str, frame: pl.DataFrame, *, record: bool = False
) -> list[Path]:
    """Write ``frame`` (canonical klines of ``series``, a Series or its key ``spot-BTCUSDT-1h``)
    as one Parquet file per calendar month; with ``record``, add a manifest entry per month.
    Return the files written."""
    layout = HistoryLayout(history_dir)
    series = Series.parse(series) if isinstance(series, str) else series
    keyed = frame.with_columns(
        pl.col("open_time").dt.year().alias("_y"), pl.col("open_time").dt.month().alias("_m")
    )
    written, entries = [], []
    for (year, month), part in keyed.group_by(["_y", "_m"], maintain_order=True):
        bars = part.drop("_y", "_m").sort("open_time")
        path = layout.parquet_path(series, int(year), int(month))  # type: ignore[call-overload]
        digest = write_parquet(bars, path)
        written.append(path)
        period = f"{int(year):04d}-{int(month):02d}"  # type: ignore[call-overload]
        gaps, missing = count_gaps(bars, series.interval)
        entries.append(
            ManifestEntry(
                key=f"import/tests/{series.key}/{period}",
                market=series.market,
                symbol=series.symbol,
                interval=series.interval,
                period=period,
                kind="import",
                rows=bars.height,
                gaps=gaps,
                missing_bars=missing,
                first_open_time=bars["open_time"][0],
                last_open_time=bars["open_time"][-1],
                parquet_path=path.relative_to(layout.root).as_posix(),
                parquet_sha256=digest,
                written_at=datetime.now(UTC),
                source="trading_pipeline_tests.fakes.store",
            )
        )
    if record and entries:
        Manifest(layout.manifest_path).update(entries)
    return written


def write_frames(
    history_dir: Path,
    frames: Mapping[str, pl.DataFrame],
    *,
    market: str = "spot",
    interval: str = "1h",
) -> Path:
    """Write one series per ``symbol → frame`` (of ``market`` and ``interval``); return
    ``history_dir``."""
    for symbol, frame in frames.items():
        write_store(history_dir, Series(market, symbol, interval), frame)
    return history_dir
