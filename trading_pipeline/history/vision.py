"""Binance Vision names: intervals and markets, object keys, and request validation.

Keys look like ``data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip`` (futures under
``data/futures/um`` or ``data/futures/cm``; daily files end ``-YYYY-MM-DD.zip``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.market.schema import DAILY_INTERVALS, INTERVAL_MS, MARKETS

INTERVALS: tuple[str, ...] = tuple(INTERVAL_MS)
MARKET_ROOTS: dict[str, str] = {
    "spot": "data/spot",
    "um": "data/futures/um",
    "cm": "data/futures/cm",
}
KINDS = ("monthly", "daily")
# Binance opened in July 2017: Binance Vision has nothing before it.
VISION_FIRST_DAY = date(2017, 1, 1)
_SYMBOL = re.compile(r"^[A-Z0-9_]{2,40}$")
_KEY = re.compile(
    r"^data/(?:spot|futures/(?:um|cm))/(?P<kind>monthly|daily)/klines/(?P<symbol>[A-Z0-9_]+)/"
    r"(?P<interval>[0-9]+[a-z]+)/(?P=symbol)-(?P=interval)-"
    r"(?P<y>\d{4})-(?P<m>\d{2})(?:-(?P<d>\d{2}))?\.zip$"
)


@dataclass(frozen=True)
class VisionFile:
    """One kline zip on Binance Vision; ``period`` is the day (daily) or the 1st (monthly)."""

    market: str
    symbol: str
    interval: str
    kind: str
    period: date

    @property
    def series(self) -> Series:
        return Series(self.market, self.symbol, self.interval)

    @property
    def key(self) -> str:
        if self.kind == "monthly":
            return monthly_key(self.series, self.period.year, self.period.month)
        return daily_key(self.series, self.period)

    @property
    def period_label(self) -> str:
        """``2024-01`` for a monthly file, ``2024-01-05`` for a daily one."""
        return self.period.strftime("%Y-%m" if self.kind == "monthly" else "%Y-%m-%d")


def series_prefix(series: Series, kind: str) -> str:
    """The listing prefix of one series' files, ending in ``/``."""
    return f"{MARKET_ROOTS[series.market]}/{kind}/klines/{series.symbol}/{series.interval}/"


def symbols_prefix(market: str, kind: str = "monthly") -> str:
    """The listing prefix whose CommonPrefixes are the market's symbols."""
    return f"{MARKET_ROOTS[market]}/{kind}/klines/"


def monthly_key(series: Series, year: int, month: int) -> str:
    name = f"{series.symbol}-{series.interval}-{year:04d}-{month:02d}.zip"
    return series_prefix(series, "monthly") + name


def daily_key(series: Series, day: date) -> str:
    name = f"{series.symbol}-{series.interval}-{day:%Y-%m-%d}.zip"
    return series_prefix(series, "daily") + name


def month_daily_prefix(series: Series, year: int, month: int) -> str:
    """The prefix shared by every daily zip of one month (``…/BTCUSDT-1h-2024-01-``)."""
    return (
        series_prefix(series, "daily")
        + f"{series.symbol}-{series.interval}-{year:04d}-{month:02d}-"
    )


def parse_key(key: str) -> VisionFile:
    """Parse a kline zip key back into its parts; ``ValueError`` when it is not one."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"not a Binance Vision kline zip key: {key!r}")
    market = "spot" if key.startswith("data/spot/") else key.split("/")[2]
    day = int(match["d"]) if match["d"] else 1
    if (match["kind"] == "daily") != bool(match["d"]):
        raise ValueError(f"kind and file name disagree in {key!r}")
    return VisionFile(
        market=market,
        symbol=match["symbol"],
        interval=match["interval"],
        kind=match["kind"],
        period=date(int(match["y"]), int(match["m"]), day),
    )


def validate_market(market: str) -> str:
    if market not in MARKETS:
        raise UserInputError(f"unknown market {market!r}: use one of {', '.join(MARKETS)}")
    return market


def validate_interval(interval: str, market: str = "spot", *, fill_daily: bool = False) -> str:
    """Check an interval as Binance spells it, for this market and mode."""
    if interval not in INTERVAL_MS:
        hint = " (the monthly interval is spelled 1mo)" if interval == "1M" else ""
        raise UserInputError(
            f"unknown interval {interval!r}{hint}: use one of {', '.join(INTERVALS)}"
        )
    if interval == "1s" and market != "spot":
        raise UserInputError(f"interval 1s exists for spot only, not for market {market}")
    if fill_daily and interval not in DAILY_INTERVALS:
        raise UserInputError(
            f"there are no daily files for interval {interval}: drop --fill_daily "
            "(daily files exist only for 1s…1d)"
        )
    return interval


def validate_symbol(symbol: str) -> str:
    symbol = symbol.strip().upper()
    if not _SYMBOL.match(symbol):
        raise UserInputError(f"bad symbol {symbol!r}: letters, digits and _ only")
    return symbol


def validate_range(start: date, end: date) -> None:
    if start > end:
        raise UserInputError(f"--from {start} is after --to {end}")


def parse_date(text: str, flag: str) -> date:
    """``YYYY-MM-DD`` → date, or a one-line ``UserInputError`` naming the flag."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise UserInputError(f"{flag} must be a date YYYY-MM-DD, got {text!r}") from None
    if not VISION_FIRST_DAY <= day <= date(2099, 12, 31):
        raise UserInputError(f"{flag} {day} is outside {VISION_FIRST_DAY} … 2099-12-31")
    return day
