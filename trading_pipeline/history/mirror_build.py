"""Build a Binance-Vision-shaped mirror folder (monthly zips, daily zips for the current month,
each with its ``.CHECKSUM``) from generated candles or from an existing Parquet store.

``mirror serve`` then serves the folder with its S3-style listing, so ``make main`` runs offline
against it (``TP_VISION_URL`` / ``TP_VISION_LISTING_URL``). Generated candles are seeded per
symbol (the same arguments give the same bytes) and switch between bull and bear trends of
days to weeks and sideways spells of weeks to months, at normal or high volatility, so
strategies and the selector have something to find.

Everything is written into a temporary folder beside ``DIR`` first; each file is then moved
under its final name with an atomic rename, so a killed build leaves no half-written zip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.history.vision import (
    VisionFile,
    validate_interval,
    validate_market,
    validate_symbol,
)
from trading_pipeline.history.vision_writer import frame_rows, kline_csv, write_vision_file
from trading_pipeline.market.candles import CandleError, load_store
from trading_pipeline.market.schema import INTERVAL_MS
from trading_pipeline.regimes.synthetic import synthetic_bars

GENERATED = "generated"
PRICES = {"BTCUSDT": 30_000.0, "ETHUSDT": 2_000.0, "BNBUSDT": 300.0}
REGIMES = ("bull", "bear", "sideways", "bull_highvol", "bear_highvol", "sideways_highvol")
REGIME_WEIGHTS = (0.2, 0.2, 0.4, 0.07, 0.07, 0.06)
MAX_BARS = 5_000_000  # per symbol: a bound on what one build may generate


@dataclass(frozen=True)
class MirrorPlan:
    """What one build writes: symbols × [first month … last day] of one interval."""

    symbols: tuple[str, ...]
    interval: str
    first: date  # the 1st of the first month
    last: date  # the last day, inclusive (its month gets daily zips unless it is complete)
    market: str = "spot"

    @property
    def months(self) -> list[date]:
        out, d = [], self.first
        while d <= self.last:
            out.append(d)
            d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        return out


def parse_month(text: str, flag: str) -> date:
    """``YYYY-MM`` (or ``YYYY-MM-DD``, its month) → the 1st of that month."""
    value = text.strip()
    try:
        d = date.fromisoformat(value + "-01" if len(value) == 7 else value)
    except ValueError:
        raise UserInputError(f"{flag} must be a month YYYY-MM, got {text!r}") from None
    if not date(2017, 1, 1) <= d <= date(2099, 12, 31):
        raise UserInputError(f"{flag} {value} is outside 2017-01 … 2099-12")
    return d.replace(day=1)


def parse_last_day(text: str | None, *, today: date) -> date:
    """``--to``: a day ``YYYY-MM-DD`` or a month ``YYYY-MM`` (its last day); default yesterday."""
    yesterday = today - timedelta(days=1)
    if text is None:
        return yesterday
    value = text.strip()
    if len(value) == 7:
        first = parse_month(value, "--to")
        last = date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)
    else:
        try:
            last = date.fromisoformat(value)
        except ValueError:
            raise UserInputError(f"--to must be YYYY-MM or YYYY-MM-DD, got {text!r}") from None
    return min(last, yesterday)


def make_plan(
    symbols: Sequence[str],
    *,
    interval: str,
    start: str,
    end: str | None,
    market: str = "spot",
    today: date | None = None,
) -> MirrorPlan:
    """Check every input (``UserInputError`` names the bad one) before anything is written."""
    today = today or datetime.now(UTC).date()
    validate_market(market)
    validate_interval(interval, market, fill_daily=True)
    names = tuple(dict.fromkeys(validate_symbol(s) for s in symbols if s.strip()))
    if not names:
        raise UserInputError("--symbols names no symbol, e.g. BTCUSDT,ETHUSDT")
    first = parse_month(start, "--from")
    last = parse_last_day(end, today=today)
    if last < first:
        raise UserInputError(
            f"--from {first:%Y-%m} is after --to {last} (the last day is yesterday)"
        )
    bars = (last + timedelta(days=1) - first).days * 86_400_000 // INTERVAL_MS[interval]
    if bars > MAX_BARS:
        raise UserInputError(
            f"{bars:,} {interval} bars per symbol is more than {MAX_BARS:,}: shorten the range"
        )
    return MirrorPlan(names, interval, first, last, market)


def _seed(symbol: str) -> int:
    return zlib.crc32(symbol.encode())


def generated_frame(symbol: str, plan: MirrorPlan) -> pl.DataFrame:
    """Seeded candles of ``symbol`` over the plan's range, regimes switching every few weeks."""
    start = datetime(plan.first.year, plan.first.month, plan.first.day, tzinfo=UTC)
    end = datetime(plan.last.year, plan.last.month, plan.last.day, tzinfo=UTC) + timedelta(days=1)
    step = INTERVAL_MS[plan.interval]
    n = int((end - start).total_seconds() * 1000) // step
    per_day = max(1, 86_400_000 // step)
    rng = np.random.default_rng(_seed(symbol))
    script: list[tuple[str, int]] = []
    left = n
    while left > 0:  # trends last days to weeks, quiet spells weeks to months
        regime = str(rng.choice(REGIMES, p=REGIME_WEIGHTS))
        days = rng.integers(15, 60) if regime.startswith("sideways") else rng.integers(4, 21)
        size = min(left, int(days) * per_day)
        script.append((regime, size))
        left -= size
    price = PRICES.get(symbol, 100.0 + _seed(symbol) % 900)
    return synthetic_bars(
        script, seed=_seed(symbol), interval=plan.interval, start=start, price=price
    )


def store_frame(history_dir: Path, symbol: str, plan: MirrorPlan) -> pl.DataFrame:
    """The store's candles of ``symbol`` over the plan's range (``UserInputError`` when none).
    ``history_dir`` may also be a data dir holding ``history/``."""
    if not (history_dir / "parquet").is_dir() and (history_dir / "history" / "parquet").is_dir():
        history_dir = history_dir / "history"
    try:
        frame = load_store(
            history_dir,
            market=plan.market,
            symbol=symbol,
            interval=plan.interval,
            start=plan.first,
            end=plan.last,
        )
    except CandleError as exc:
        raise UserInputError(f"--source {history_dir}: {str(exc).splitlines()[0]}") from None
    if frame.height == 0:
        raise UserInputError(
            f"--source {history_dir} has no {symbol} {plan.interval} bars in {plan.first:%Y-%m} … {plan.last}"
        )
    return frame


def _write_series(root: Path, series: Series, frame: pl.DataFrame, plan: MirrorPlan) -> int:
    """Monthly zips for complete months, daily zips for the last month when it is partial."""
    keyed = frame.with_columns(pl.col("open_time").dt.date().alias("_day"))
    written = 0
    for month in plan.months:
        nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        part = keyed.filter((pl.col("_day") >= month) & (pl.col("_day") < nxt))
        if part.height == 0:
            continue
        if nxt - timedelta(days=1) <= plan.last:
            file = VisionFile(series.market, series.symbol, series.interval, "monthly", month)
            write_vision_file(root, file, kline_csv(series, month, frame_rows(part.drop("_day"))))
            written += 1
            continue
        for (day,), rows in part.group_by(["_day"], maintain_order=True):
            assert isinstance(day, date)
            file = VisionFile(series.market, series.symbol, series.interval, "daily", day)
            write_vision_file(root, file, kline_csv(series, day, frame_rows(rows.drop("_day"))))
            written += 1
    return written


def _publish(staging: Path, root: Path) -> int:
    """Move every file of ``staging`` to the same place under ``root`` (atomic renames)."""
    moved = 0
    for path in sorted(staging.rglob("*")):
        if path.is_file():
            final = root / path.relative_to(staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, final)
            moved += 1
    return moved


def build_mirror(
    root: Path,
    plan: MirrorPlan,
    *,
    source: str | Path = GENERATED,
    echo: Callable[[str], None] = lambda _line: None,
) -> dict[str, int]:
    """Write the plan's zips under ``root``; returns files written per symbol."""
    frames: dict[str, pl.DataFrame] = {}
    for symbol in plan.symbols:  # read or generate everything first: bad input writes nothing
        if str(source) == GENERATED:
            frames[symbol] = generated_frame(symbol, plan)
        else:
            frames[symbol] = store_frame(Path(source), symbol, plan)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".part", dir=root.parent))
    counts: dict[str, int] = {}
    try:
        for symbol, frame in frames.items():
            series = Series(plan.market, symbol, plan.interval)
            counts[symbol] = _write_series(staging, series, frame, plan)
            echo(f"{symbol}: {frame.height:,} bars → {counts[symbol]} zips")
        root.mkdir(parents=True, exist_ok=True)
        _publish(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts
