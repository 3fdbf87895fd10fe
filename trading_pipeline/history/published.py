"""What the Binance Vision listing publishes for a series, and what did not arrive in the store.

Used by the main job before and after its history stage: one cheap request first tells whether
the listing is reachable at all (one plain line naming the settings that point at a mirror,
instead of a retry storm and tracebacks); after the runs, every requested month the listing
publishes (a monthly zip, or daily zips for a month without one) must be in the Parquet store,
and a series the listing does not publish at all is missing too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import httpx

from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.listing import ListingError, list_all
from trading_pipeline.history.vision import month_daily_prefix, parse_key, series_prefix

MIRROR_HINT = (
    "point TP_VISION_URL and TP_VISION_LISTING_URL at a mirror "
    "(trading-pipeline mirror build DIR, then mirror serve DIR; see the README)"
)


class VisionUnreachable(RuntimeError):
    """The listing endpoint did not answer (DNS, refused, timeout, HTTP error)."""


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    for marker in ("Name or service not known", "Connection refused", "timed out"):
        if marker in text:
            return marker
    return text.splitlines()[0][:160]


def check_reachable(listing_url: str, *, timeout: float = 10.0) -> None:
    """One listing request with a short timeout; ``VisionUnreachable`` with a one-line reason."""
    url = listing_url.rstrip("/")
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=timeout)) as client:
            response = client.get(url, params={"delimiter": "/", "prefix": "data/", "max-keys": 1})
    except httpx.HTTPError as exc:
        raise VisionUnreachable(
            f"Binance Vision listing {url} is unreachable ({_reason(exc)})"
        ) from None
    if response.status_code >= 400:
        raise VisionUnreachable(
            f"Binance Vision listing {url} answered HTTP {response.status_code}"
        )


def month_list(first: date, last: date) -> list[date]:
    """The 1st of every month from ``first``'s to ``last``'s, both included."""
    out, d = [], first.replace(day=1)
    while d <= last:
        out.append(d)
        d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return out


def published_months(
    client: httpx.Client, listing_url: str, series: Series, months: Sequence[date]
) -> set[date]:
    """The months of ``months`` the listing has a monthly zip or at least one daily zip for."""
    found: set[date] = set()
    wanted = set(months)
    for kind in ("monthly", "daily"):
        marker = None
        if kind == "daily":  # only the dailies of months without a monthly zip
            first = min(wanted - found)
            marker = month_daily_prefix(series, first.year, first.month)[:-1]
        page = list_all(
            client, listing_url.rstrip("/"), series_prefix(series, kind), marker=marker, attempts=2
        )
        for obj in page.objects:
            if not obj.key.endswith(".zip"):
                continue
            try:
                period = parse_key(obj.key).period
            except ValueError:
                continue
            month = period.replace(day=1)
            if month in wanted:
                found.add(month)
        if wanted <= found:
            break
    return found


@dataclass
class Missing:
    """What the history stage should have brought and did not, per series."""

    absent_series: list[str] = field(default_factory=list)  # the listing publishes nothing
    months: dict[str, list[str]] = field(default_factory=dict)  # published but not in the store

    def __bool__(self) -> bool:
        return bool(self.absent_series or self.months)

    def describe(self) -> str:
        parts = [f"{s} (no month published)" for s in self.absent_series]
        for key, months in sorted(self.months.items()):
            shown = ", ".join(months[:6]) + (
                f" … ({len(months)} months)" if len(months) > 6 else ""
            )
            parts.append(f"{key} {shown}")
        return "; ".join(parts)


def find_missing(
    layout: HistoryLayout,
    series: Iterable[Series],
    months: Sequence[date],
    *,
    listing_url: str,
    client: httpx.Client | None = None,
) -> Missing:
    """Compare what the listing publishes with the Parquet store (``ListingError`` propagates)."""
    out = Missing()
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
    try:
        for s in series:
            listed = published_months(http, listing_url, s, months)
            if not listed:
                out.absent_series.append(s.key)
                continue
            lacking = [
                f"{m:%Y-%m}"
                for m in sorted(listed)
                if not layout.parquet_path(s, m.year, m.month).is_file()
            ]
            if lacking:
                out.months[s.key] = lacking
    finally:
        if own:
            http.close()
    return out


__all__ = [
    "MIRROR_HINT",
    "ListingError",
    "Missing",
    "VisionUnreachable",
    "check_reachable",
    "find_missing",
    "month_list",
    "published_months",
]
