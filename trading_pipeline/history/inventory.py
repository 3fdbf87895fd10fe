"""What the store holds, per series (freqtrade's ``list-data``): from the manifest alone.

One row per market × symbol × interval: first and last bar, months held, months missing
between them (a hole in the history), rows, gaps inside the months (runs of absent bars) and
missing bars, and where the months came from (Binance monthly/daily files, imports, venues).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from trading_pipeline.history.manifest import ManifestEntry


@dataclass(frozen=True)
class SeriesInventory:
    market: str
    symbol: str
    interval: str
    first_bar: str | None
    last_bar: str | None
    months: list[str]
    missing_months: list[str]
    rows: int
    gaps: int
    missing_bars: int
    sources: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.market}-{self.symbol}-{self.interval}"

    def to_json(self) -> dict[str, object]:
        return {
            "series": self.key,
            "market": self.market,
            "symbol": self.symbol,
            "interval": self.interval,
            "first_bar": self.first_bar,
            "last_bar": self.last_bar,
            "months": len(self.months),
            "first_month": self.months[0] if self.months else None,
            "last_month": self.months[-1] if self.months else None,
            "missing_months": self.missing_months,
            "rows": self.rows,
            "gaps": self.gaps,
            "missing_bars": self.missing_bars,
            "sources": self.sources,
        }


def months_from_to(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last`` inclusive."""
    y, m = int(first[:4]), int(first[5:7])
    end = (int(last[:4]), int(last[5:7]))
    out = []
    while (y, m) <= end:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def inventory(
    entries: Mapping[str, ManifestEntry] | Iterable[ManifestEntry],
) -> list[SeriesInventory]:
    """The store's series, sorted by market, symbol and interval."""
    items = entries.values() if isinstance(entries, Mapping) else entries
    groups: dict[tuple[str, str, str], list[ManifestEntry]] = {}
    for e in items:
        if not (e.market and e.symbol and e.interval and e.period):
            continue
        groups.setdefault((e.market, e.symbol, e.interval), []).append(e)
    out = []
    for (market, symbol, interval), group in sorted(groups.items()):
        months = sorted({str(e.period)[:7] for e in group})
        firsts = [str(e.first_open_time) for e in group if e.first_open_time]
        lasts = [str(e.last_open_time) for e in group if e.last_open_time]
        held = set(months)
        out.append(
            SeriesInventory(
                market=market,
                symbol=symbol,
                interval=interval,
                first_bar=min(firsts) if firsts else None,
                last_bar=max(lasts) if lasts else None,
                months=months,
                missing_months=[m for m in months_from_to(months[0], months[-1]) if m not in held],
                rows=sum(e.rows or 0 for e in group),
                gaps=sum(e.gaps or 0 for e in group),
                missing_bars=sum(e.missing_bars or 0 for e in group),
                sources=sorted({e.kind or "?" for e in group}),
            )
        )
    return out
