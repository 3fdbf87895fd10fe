"""Import freqtrade candle files into the history store (users migrating from freqtrade).

freqtrade keeps candles in ``user_data/data/<exchange>/`` as ``BTC_USDT-1h.feather`` or
``BTC_USDT-1h.json`` (spot) and ``futures/BTC_USDT_USDT-1h-futures.feather`` (futures, pair
``BASE/QUOTE:SETTLE``). Each file is split per UTC month into the same hive Parquet layout the
Binance fetcher writes (symbol = base + quote, ``BTCUSDT``; COIN-M ``BTCUSD_PERP``); the columns
freqtrade lacks (close_time, quote volume, trades, taker volumes) stay null. Every month gets a
manifest entry ``import/freqtrade/<exchange>/<file name>/<YYYY-MM>`` with
``source="freqtrade:<file>"``.

Everything is read and checked before anything is written: a bad directory, no candle files, an
unparsable name or an unreadable file is a ``UserInputError`` and leaves the store untouched.
Re-importing the same file changes nothing. A month that already holds bars is never replaced by
a less complete one: the import keeps the union. Over a month the Binance fetcher wrote, its
checksum-verified bars stay and the import only fills the bars Binance lacks; over an earlier
import, the newer file wins per bar. What was merged is reported per file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.history.convert import write_parquet
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.manifest import Manifest, ManifestEntry
from trading_pipeline.market.candles import CandleError, read_candle_file
from trading_pipeline.market.quality import count_gaps
from trading_pipeline.market.schema import INTERVAL_MS, MARKETS, conform

CANDLE_SUFFIXES = (".feather", ".json")
# freqtrade's other data formats (``--data-format-ohlcv jsongz|parquet``): named, not imported.
OTHER_FORMATS = (".json.gz", ".parquet")
# freqtrade data files that are not candles (trades, funding, mark/index prices): skipped.
_NON_KLINE_TYPES = {"mark", "index", "premiumIndex", "funding_rate"}
_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,2})-(?P<tf>\d+[smhdwM]|\d+mo)"
    r"(?:-(?P<ctype>[A-Za-z_]+))?$"
)


@dataclass(frozen=True)
class CandleFile:
    """A freqtrade candle file and what its name says."""

    path: Path
    base: str
    quote: str
    settle: str | None
    interval: str
    candle_type: str  # "spot" or "futures"

    @property
    def market(self) -> str:
        if self.candle_type == "spot":
            return "spot"
        return "cm" if self.settle == self.base else "um"

    @property
    def symbol(self) -> str:
        return (
            f"{self.base}{self.quote}_PERP" if self.market == "cm" else f"{self.base}{self.quote}"
        )


@dataclass
class FileImport:
    """The outcome for one source file."""

    path: Path
    series: str
    rows: int
    months_written: list[str] = field(default_factory=list)
    months_unchanged: list[str] = field(default_factory=list)
    months_kept_vision: list[str] = field(default_factory=list)
    months_merged: list[tuple[str, int, int]] = field(default_factory=list)  # (month, kept, added)

    def describe(self) -> str:
        """One line for the command line."""
        merged = "".join(
            f"; {month} merged: {kept} existing bars kept, {added} added"
            for month, kept, added in self.months_merged
        )
        return (
            f"{self.path.name}: {self.series}, {self.rows} rows, "
            f"{len(self.months_written)} month(s) written, {len(self.months_unchanged)} unchanged, "
            f"{len(self.months_kept_vision)} kept (Binance data already complete there){merged}"
        )


@dataclass
class ImportSummary:
    """What ``import_freqtrade`` did: per-file results and the files it passed over (with why)."""

    files: list[FileImport] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def months_written(self) -> int:
        return sum(len(f.months_written) for f in self.files)

    @property
    def months_unchanged(self) -> int:
        return sum(len(f.months_unchanged) for f in self.files)

    @property
    def months_kept_vision(self) -> int:
        return sum(len(f.months_kept_vision) for f in self.files)


def parse_candle_name(path: Path) -> CandleFile | None:
    """Parse a freqtrade file name; None when the name is not a candle file name."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    m = _NAME.match(stem)
    if m is None:
        return None
    parts = m["pair"].upper().split("_")
    ctype = m["ctype"] or "spot"
    tf = m["tf"]
    interval = "1mo" if tf in ("1M", "1mo") else tf
    if ctype not in ("spot", "futures") or interval not in INTERVAL_MS:
        return None
    if ctype == "spot" and len(parts) != 2:
        return None
    if ctype == "futures" and len(parts) != 3:
        return None
    settle = parts[2] if len(parts) == 3 else None
    return CandleFile(path, parts[0], parts[1], settle, interval, ctype)


def resolve_dir(directory: Path, exchange: str) -> Path:
    """``DIR/<exchange>`` when it exists (``user_data/data`` given), else ``DIR`` itself."""
    if not directory.is_dir():
        raise UserInputError(f"no such directory: {directory}")
    sub = directory / exchange
    return sub if sub.is_dir() else directory


def discover(directory: Path, market: str) -> tuple[list[CandleFile], list[tuple[str, str]]]:
    """Candle files for ``market`` in ``directory`` (and its ``futures/``), plus skipped names."""
    candidates = sorted(
        p
        for folder in (directory, directory / "futures")
        if folder.is_dir()
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in CANDLE_SUFFIXES
    )
    chosen: list[CandleFile] = []
    skipped: list[tuple[str, str]] = [
        (p.name, "freqtrade jsongz/parquet data format: convert to feather first")
        for folder in (directory, directory / "futures")
        if folder.is_dir()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name.lower().endswith(OTHER_FORMATS)
    ]
    unparsable: list[str] = []
    for p in candidates:
        stem = p.name[: -len(p.suffix)]
        if stem.endswith("-trades") or stem.split("-")[-1] in _NON_KLINE_TYPES:
            skipped.append((p.name, "not OHLCV candles"))
            continue
        cf = parse_candle_name(p)
        if cf is None:
            unparsable.append(p.name)
        elif cf.market != market:
            skipped.append((p.name, f"{cf.market} candles (use --market {cf.market})"))
        else:
            chosen.append(cf)
    if unparsable:
        shown = ", ".join(unparsable[:5]) + (" …" if len(unparsable) > 5 else "")
        raise UserInputError(
            f"cannot parse freqtrade candle file name(s) in {directory}: {shown} "
            "(expected PAIR-TIMEFRAME.feather|json, e.g. BTC_USDT-1h.feather)"
        )
    seen: dict[str, Path] = {}
    for cf in chosen:
        key = Series(market, cf.symbol, cf.interval).key
        if key in seen:
            raise UserInputError(
                f"two files for {key} in {directory}: {seen[key].name} and {cf.path.name}"
            )
        seen[key] = cf.path
    return chosen, skipped


def _months(df: pl.DataFrame) -> list[tuple[int, int, pl.DataFrame]]:
    keyed = df.with_columns(
        _y=pl.col("open_time").dt.year(), _m=pl.col("open_time").dt.month()
    ).partition_by(["_y", "_m"], maintain_order=True, as_dict=True)
    out = []
    for key in sorted(keyed):
        y, m = key
        out.append((int(y), int(m), keyed[key].drop("_y", "_m")))  # type: ignore[call-overload]
    return out


def _relative(path: str | Path, root: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return p.as_posix()
    return p.as_posix()


def _vision_owned(entries: dict[str, ManifestEntry], root: Path) -> set[str]:
    """Parquet paths (relative to ``root``) the Binance fetcher wrote; an import never overwrites them."""
    return {
        _relative(e.parquet_path, root)
        for e in entries.values()
        if e.kind != "import" and e.parquet_path
    }


def _union(
    stored: pl.DataFrame, incoming: pl.DataFrame, *, binance: bool
) -> tuple[pl.DataFrame, tuple[int, int] | None]:
    """The union of a stored month and an incoming one, and (bars kept, bars added).

    Over Binance's own (checksum-verified) bars, the import only adds bars Binance lacks; ``None``
    when it adds nothing. Over an earlier import, the incoming file wins per bar."""
    stored = conform(stored)
    if binance:
        extra = incoming.filter(~pl.col("open_time").is_in(stored["open_time"].implode()))
        if extra.height == 0:
            return stored, None
        union = pl.concat([stored, extra], how="vertical").sort("open_time")
        return union, (stored.height, extra.height)
    rest = stored.filter(~pl.col("open_time").is_in(incoming["open_time"].implode()))
    union = pl.concat([incoming, rest], how="vertical").sort("open_time")
    return union, (rest.height, incoming.height) if rest.height else (0, 0)


def import_freqtrade(
    directory: str | Path,
    *,
    layout: HistoryLayout,
    exchange: str = "binance",
    market: str = "spot",
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImportSummary:
    """Import every candle file of ``market`` under ``directory`` into ``layout``'s store.

    Binance candles go under their Binance market (``market=spot``, ``um``, ``cm``) beside the
    Vision files; another exchange's candles are its own store market (``market=coinbase``), as
    the venue history writes them, so two venues' BTC never share a folder."""
    if market not in MARKETS:
        raise UserInputError(f"unknown market {market!r}: use one of {', '.join(MARKETS)}")
    exchange = exchange.strip().lower()
    if not exchange.isalnum():
        raise UserInputError(f"exchange must be a plain name like binance, got {exchange!r}")
    if exchange != "binance" and market != "spot":
        raise UserInputError(f"--market {market} is a Binance market; {exchange} imports spot only")
    store_market = market if exchange == "binance" else exchange
    folder = resolve_dir(Path(directory), exchange)
    files, skipped = discover(folder, market)
    if not files:
        extra = (
            "; skipped: " + ", ".join(f"{n} ({why})" for n, why in skipped[:3]) if skipped else ""
        )
        raise UserInputError(
            f"no freqtrade {market} candle files (.feather/.json) in {folder}{extra}"
        )
    loaded = []
    for cf in files:  # read and validate everything before writing anything
        try:
            df = read_candle_file(cf.path, interval=cf.interval)
        except CandleError as exc:
            raise UserInputError(f"{exc} (file named {cf.interval})") from exc
        loaded.append((cf, df, sha256_file(cf.path), cf.path.stat().st_size))

    manifest = Manifest(layout.manifest_path)
    existing = manifest.load()
    vision = _vision_owned(existing, layout.root)
    imported = {
        _relative(e.parquet_path, layout.root)
        for e in existing.values()
        if e.kind == "import" and e.parquet_path
    }
    summary = ImportSummary(skipped=skipped)
    entries: list[ManifestEntry] = []
    for cf, df, digest, size in loaded:
        series = Series(store_market, cf.symbol, cf.interval)
        result = FileImport(cf.path, series.key, df.height)
        for y, m, month in _months(df):
            period = f"{y:04d}-{m:02d}"
            key = f"import/freqtrade/{exchange}/{cf.path.name}/{period}"
            target = layout.parquet_path(series, y, m)
            rel = target.relative_to(layout.root).as_posix()
            old = existing.get(key)
            if (
                old is not None
                and old.sha256 == digest
                and target.exists()
                and old.parquet_sha256 == sha256_file(target)
            ):
                result.months_unchanged.append(period)
                continue
            if target.exists():
                month, merged = _union(
                    pl.read_parquet(target), month, binance=rel in vision or rel not in imported
                )
                if merged is None:
                    result.months_kept_vision.append(period)
                    continue
                if merged[1]:
                    result.months_merged.append((period, *merged))
            parquet_sha = write_parquet(month, target)
            gaps, missing = count_gaps(month, cf.interval)
            entries.append(
                ManifestEntry(
                    key=key,
                    market=store_market,
                    symbol=cf.symbol,
                    interval=cf.interval,
                    period=period,
                    kind="import",
                    sha256=digest,
                    size=size,
                    rows=month.height,
                    first_open_time=month["open_time"][0],
                    last_open_time=month["open_time"][-1],
                    gaps=gaps,
                    missing_bars=missing,
                    parquet_path=rel,
                    parquet_sha256=parquet_sha,
                    written_at=now(),
                    source=f"freqtrade:{cf.path.resolve()}",
                )
            )
            result.months_written.append(period)
        summary.files.append(result)
    if entries:
        manifest.update(entries)
    return summary
