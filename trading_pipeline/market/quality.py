"""Data-quality findings on kline frames: gaps, duplicates, off-grid bars, OHLC violations.

Pure polars on the canonical schema (``trading_pipeline.market.schema``); the Dagster asset checks
call these and decide what blocks. Nothing here changes data: the converter keeps every bar
Binance published, and these functions say what is odd about them.

Grid rules: ``open_time`` must be a multiple of the interval since the epoch (``1w`` bars open on
Mondays, ``1mo`` bars on the 1st at 00:00; ``3d`` has no checked grid), and ``close_time`` must be
``open_time + interval - 1`` in either ms (files before 2025) or µs (spot since 2025-01-01).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from trading_pipeline.market.schema import INTERVAL_MS

_MONDAY_OFFSET_US = 4 * 86_400_000_000  # 1970-01-01 was a Thursday; 1970-01-05 a Monday
SAMPLE_ROWS = 5


def interval_us(interval: str) -> int:
    """Nominal length of ``interval`` in microseconds (``1mo`` is calendar-based, see callers)."""
    if interval not in INTERVAL_MS:
        raise ValueError(f"unknown interval {interval!r}")
    return INTERVAL_MS[interval] * 1000


def _epoch_us(col: str) -> pl.Expr:
    return pl.col(col).dt.epoch("us")


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df if df["open_time"].is_sorted() else df.sort("open_time", maintain_order=True)


def _month_index(expr: pl.Expr) -> pl.Expr:
    return expr.dt.year().cast(pl.Int64) * 12 + expr.dt.month().cast(pl.Int64)


def find_gaps(df: pl.DataFrame, interval: str) -> pl.DataFrame:
    """Runs of missing bars between consecutive bars.

    Columns: ``start`` (the first missing open_time), ``end`` (the open_time of the next bar
    present, exclusive) and ``missing_bars``. Duplicate open_times are not gaps; a misaligned bar
    counts the whole grid slots skipped before it.
    """
    step = interval_us(interval)
    d = _sorted(df).select("open_time").with_columns(prev=pl.col("open_time").shift(1))
    if interval == "1mo":
        missing = _month_index(pl.col("open_time")) - _month_index(pl.col("prev")) - 1
        start = pl.col("prev").dt.offset_by("1mo")
    else:
        delta = _epoch_us("open_time") - _epoch_us("prev")
        # whole grid slots strictly between the two bars: ceil(delta / step) - 1
        missing = (delta + step - 1) // step - 1
        start = pl.col("prev") + pl.duration(microseconds=step)
    out = d.select(
        start.alias("start"),
        pl.col("open_time").alias("end"),
        missing.cast(pl.Int64).alias("missing_bars"),
    )
    return out.filter(pl.col("missing_bars") > 0)


def count_gaps(df: pl.DataFrame, interval: str) -> tuple[int, int]:
    """(number of gaps, number of missing bars) of ``df``; (0, 0) for fewer than two bars."""
    if df.height < 2:
        return 0, 0
    gaps = find_gaps(df, interval)
    return gaps.height, int(gaps["missing_bars"].sum())


def find_duplicates(df: pl.DataFrame) -> pl.DataFrame:
    """Every row whose ``open_time`` occurs more than once (all copies), sorted by open_time."""
    return _sorted(df).filter(pl.col("open_time").is_duplicated())


def find_off_grid(df: pl.DataFrame, interval: str) -> pl.DataFrame:
    """Bars off the interval grid, with flag columns saying why.

    ``off_grid``: open_time not on the grid; ``bad_close``: close_time is not
    ``open_time + interval - 1`` (ms or µs); ``close_before_open``: close_time < open_time. A null
    close_time (imported freqtrade candles) is unknown, not flagged.
    """
    step = interval_us(interval)
    ot, ct = pl.col("open_time"), pl.col("close_time")
    if interval == "1mo":
        on_grid = (ot.dt.day() == 1) & (ot.dt.truncate("1d") == ot)
        span = ot.dt.offset_by("1mo").dt.epoch("us") - ot.dt.epoch("us")
    else:
        if interval == "1w":
            on_grid = (_epoch_us("open_time") - _MONDAY_OFFSET_US) % step == 0
        elif interval == "3d":
            on_grid = pl.lit(True)
        else:
            on_grid = _epoch_us("open_time") % step == 0
        span = pl.lit(step, dtype=pl.Int64)
    length = _epoch_us("close_time") - _epoch_us("open_time")
    good_close = (length == span - 1) | (length == span - 1000)
    flagged = _sorted(df).with_columns(
        off_grid=~on_grid,
        bad_close=(~good_close).fill_null(False),
        close_before_open=(ct < ot).fill_null(False),
    )
    return flagged.filter(pl.col("off_grid") | pl.col("bad_close") | pl.col("close_before_open"))


def find_ohlc_violations(df: pl.DataFrame) -> pl.DataFrame:
    """Bars whose prices contradict each other or whose volume is negative, with flag columns.

    ``high_below_body``: high < max(open, close); ``low_above_body``: low > min(open, close);
    ``low_above_high``; ``negative_volume`` (volume or quote_volume < 0); ``bad_price``: a
    null or NaN price.
    """
    o, h, low, c = (pl.col(x) for x in ("open", "high", "low", "close"))
    prices = [o, h, low, c]
    flagged = _sorted(df).with_columns(
        high_below_body=(h < pl.max_horizontal(o, c)).fill_null(False),
        low_above_body=(low > pl.min_horizontal(o, c)).fill_null(False),
        low_above_high=(low > h).fill_null(False),
        negative_volume=((pl.col("volume") < 0) | (pl.col("quote_volume") < 0)).fill_null(False),
        bad_price=pl.any_horizontal([p.is_null() | p.is_nan() for p in prices]),
    )
    flags = [
        "high_below_body",
        "low_above_body",
        "low_above_high",
        "negative_volume",
        "bad_price",
    ]
    return flagged.filter(pl.any_horizontal([pl.col(f) for f in flags]))


@dataclass(frozen=True)
class QualityReport:
    """Counts of every finding plus a few sample rows of each (JSON-friendly via ``to_dict``)."""

    interval: str
    rows: int
    first_open_time: datetime | None
    last_open_time: datetime | None
    gaps: int
    missing_bars: int
    duplicates: int
    off_grid: int
    bad_close: int
    close_before_open: int
    ohlc_violations: int
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def misaligned(self) -> int:
        """Bars off the grid or with an inconsistent close_time."""
        return self.off_grid + self.bad_close + self.close_before_open

    @property
    def clean(self) -> bool:
        """No finding of any kind (gaps included)."""
        return not (self.gaps or self.duplicates or self.misaligned or self.ohlc_violations)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (times as ISO strings)."""
        out = asdict(self)
        for k in ("first_open_time", "last_open_time"):
            out[k] = out[k].isoformat() if out[k] is not None else None
        out["samples"] = {k: [_jsonable(r) for r in v] for k, v in self.samples.items()}
        return out


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def _sample(df: pl.DataFrame, n: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    return df.head(n).to_dicts()


def quality_report(
    df: pl.DataFrame, interval: str, *, sample_rows: int = SAMPLE_ROWS
) -> QualityReport:
    """Run every check on ``df`` (canonical schema) and summarise them."""
    df = _sorted(df)
    gaps = find_gaps(df, interval) if df.height >= 2 else find_gaps(df.head(0), interval)
    dups = find_duplicates(df)
    grid = find_off_grid(df, interval)
    ohlc = find_ohlc_violations(df)
    return QualityReport(
        interval=interval,
        rows=df.height,
        first_open_time=df["open_time"][0] if df.height else None,
        last_open_time=df["open_time"][-1] if df.height else None,
        gaps=gaps.height,
        missing_bars=int(gaps["missing_bars"].sum()) if gaps.height else 0,
        # extra copies, i.e. the rows build_month would drop
        duplicates=dups.height - dups["open_time"].n_unique() if dups.height else 0,
        off_grid=int(grid["off_grid"].sum()),
        bad_close=int(grid["bad_close"].sum()),
        close_before_open=int(grid["close_before_open"].sum()),
        ohlc_violations=ohlc.height,
        samples={
            "gaps": _sample(gaps, sample_rows),
            "duplicates": _sample(dups, sample_rows),
            "off_grid": _sample(grid, sample_rows),
            "ohlc_violations": _sample(ohlc, sample_rows),
        },
    )
