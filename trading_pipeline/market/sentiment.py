"""The Crypto Fear & Greed index (alternative.me ``/fng/``): fetch, parse, align to bars.

``GET {base_url}/fng/?limit=0&format=json`` answers
``{"name": "Fear and Greed Index", "data": [{"value": "40", "value_classification": "Fear",
"timestamp": "1551157200", ...}, ...], "metadata": {"error": null}}``, newest first, one entry
per UTC day; ``timestamp`` (unix seconds) is 00:00 UTC of the day the value belongs to.

**Availability rule (no lookahead).** A day's value is treated as published at its
``timestamp`` and usable only by bars that *open strictly after* it: the bar opening at
00:00 UTC of day D still sees day D-1's value; the 01:00 hourly bar (or day D+1's daily bar)
is the first to see D's. A value stays valid for one day after publication (bars opening in
``(published, published + 1 day]``); when the next day is missing, later bars get null — the
value is never carried further than one day.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from trading_pipeline.market.schema import UTC_US

DEFAULT_BASE_URL = "https://api.alternative.me"
VALID_FOR = timedelta(days=1)

FNG_SCHEMA: dict[str, pl.DataType] = {
    "published_at": UTC_US,
    "value": pl.Int64(),
    "classification": pl.String(),
}


class SentimentError(RuntimeError):
    """The Fear & Greed source answered with an error or a payload it cannot parse."""


def parse_fng(payload: Any) -> pl.DataFrame:
    """The ``/fng/`` JSON as ``published_at, value, classification``, sorted, one row per day."""
    if not isinstance(payload, dict):
        raise SentimentError("fear & greed payload is not a JSON object")
    error = (payload.get("metadata") or {}).get("error")
    if error:
        raise SentimentError(f"fear & greed source error: {error}")
    rows = payload.get("data")
    if not isinstance(rows, list):
        raise SentimentError("fear & greed payload has no data list")
    try:
        records = [
            {
                "published_at": int(r["timestamp"]) * 1_000_000,
                "value": int(r["value"]),
                "classification": str(r.get("value_classification", "")),
            }
            for r in rows
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise SentimentError(f"malformed fear & greed entry: {exc}") from exc
    df = pl.DataFrame(
        records,
        schema={"published_at": pl.Int64(), "value": pl.Int64(), "classification": pl.String()},
    )
    df = df.with_columns(pl.col("published_at").cast(UTC_US))
    bad = df.filter((pl.col("value") < 0) | (pl.col("value") > 100))
    if bad.height:
        raise SentimentError(f"fear & greed value out of 0..100 at {bad['published_at'][0]}")
    return df.unique("published_at", keep="first").sort("published_at")


def fetch_fear_greed(
    client: httpx.Client, base_url: str = DEFAULT_BASE_URL, *, limit: int = 0
) -> pl.DataFrame:
    """Download the whole index (``limit=0``) or its last ``limit`` days and parse it."""
    url = f"{base_url.rstrip('/')}/fng/"
    try:
        resp = client.get(url, params={"limit": limit, "format": "json"})
        resp.raise_for_status()
        payload = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SentimentError(f"cannot fetch fear & greed from {url}: {exc}") from exc
    return parse_fng(payload)


def align_to_bars(fng: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """``open_time, fear_greed`` for every bar, by the availability rule of the module docstring."""
    times = bars.select(pl.col("open_time").cast(UTC_US)).sort("open_time")
    src = fng.select("published_at", pl.col("value").cast(pl.Float64).alias("fear_greed")).sort(
        "published_at"
    )
    joined = times.join_asof(
        src,
        left_on="open_time",
        right_on="published_at",
        strategy="backward",
        allow_exact_matches=False,
        tolerance=VALID_FOR,
    )
    return joined.select("open_time", "fear_greed")


def read_fear_greed(path: Path) -> pl.DataFrame | None:
    """The index as the ``fear_greed`` step stored it (``published_at, value, classification``),
    or None when it was never stored."""
    return pl.read_parquet(path) if Path(path).is_file() else None
