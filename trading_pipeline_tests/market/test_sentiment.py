"""The Fear & Greed source against a local fake of alternative.me's ``/fng/`` API, and the
no-lookahead alignment to bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import polars as pl
import pytest
from pytest_httpserver import HTTPServer

from trading_pipeline.market.sentiment import (
    SentimentError,
    align_to_bars,
    fetch_fear_greed,
    parse_fng,
)
from trading_pipeline.regimes.synthetic import synthetic_bars

DAY0 = datetime(2024, 3, 1, tzinfo=UTC)
MISSING = DAY0 + timedelta(days=3)  # the fake source skips this day


def _classify(v: int) -> str:
    return "Extreme Fear" if v < 25 else "Fear" if v < 47 else "Neutral" if v < 55 else "Greed"


def _payload(days: int = 10) -> dict[str, Any]:
    rows = []
    for i in range(days):
        day = DAY0 + timedelta(days=i)
        if day == MISSING:
            continue
        value = 20 + 7 * i
        rows.append(
            {
                "value": str(value),
                "value_classification": _classify(value),
                "timestamp": str(int(day.timestamp())),
            }
        )
    rows.reverse()  # the API answers newest first
    rows[0]["time_until_update"] = "3600"
    return {"name": "Fear and Greed Index", "data": rows, "metadata": {"error": None}}


@pytest.fixture
def client() -> httpx.Client:
    with httpx.Client(timeout=5) as c:
        yield c


@pytest.mark.slow  # a local HTTP server (pytest-httpserver)
def test_fetch_from_fake_server(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request(
        "/fng/", query_string={"limit": "0", "format": "json"}
    ).respond_with_json(_payload())
    fng = fetch_fear_greed(client, httpserver.url_for("/").rstrip("/"))
    assert fng.height == 9  # ten days, one missing
    assert fng["published_at"].is_sorted()
    assert fng["published_at"][0] == DAY0
    assert MISSING not in fng["published_at"].to_list()
    assert fng["value"].to_list()[:3] == [20, 27, 34]
    assert fng["classification"][0] == "Extreme Fear"


@pytest.mark.slow  # a local HTTP server (pytest-httpserver)
def test_error_payload_and_http_error(httpserver: HTTPServer, client: httpx.Client) -> None:
    base = httpserver.url_for("/").rstrip("/")
    httpserver.expect_oneshot_request("/fng/").respond_with_json(
        {"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Limit exceeded"}}
    )
    with pytest.raises(SentimentError, match="Limit exceeded"):
        fetch_fear_greed(client, base)
    httpserver.expect_oneshot_request("/fng/").respond_with_data("oops", status=503)
    with pytest.raises(SentimentError, match="cannot fetch"):
        fetch_fear_greed(client, base)
    httpserver.expect_oneshot_request("/fng/").respond_with_data("not json")
    with pytest.raises(SentimentError):
        fetch_fear_greed(client, base)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"data": "x", "metadata": {"error": None}},
        {"data": [{"value": "x", "timestamp": "1"}], "metadata": {}},
        {"data": [{"value": "140", "timestamp": "1"}], "metadata": {}},
    ],
)
def test_malformed_payloads(payload: Any) -> None:
    with pytest.raises(SentimentError):
        parse_fng(payload)


def _hourly(days: int = 10) -> pl.DataFrame:
    return pl.DataFrame(
        {"open_time": [DAY0 + timedelta(hours=h) for h in range(24 * days + 24)]}
    ).with_columns(pl.col("open_time").dt.cast_time_unit("us"))


def test_alignment_rule_and_missing_day() -> None:
    fng = parse_fng(_payload())
    aligned = align_to_bars(fng, _hourly())
    at = dict(aligned.iter_rows())
    day = timedelta(days=1)
    hour = timedelta(hours=1)
    # The 00:00 bar of a day does not yet see that day's value; the next bar does.
    assert at[DAY0] is None
    assert at[DAY0 + hour] == 20
    assert at[DAY0 + day] == 20
    assert at[DAY0 + day + hour] == 27
    # Day 2's value covers day 3 (the missing day) through its 00:00 bar, then nulls follow:
    assert at[MISSING] == 34
    assert at[MISSING + hour] is None
    assert at[MISSING + day - hour] is None
    assert at[MISSING + day] is None  # never forward-filled past one day
    assert at[MISSING + day + hour] == 20 + 7 * 4


def test_alignment_daily_bars() -> None:
    fng = parse_fng(_payload())
    bars = pl.DataFrame({"open_time": [DAY0 + timedelta(days=i) for i in range(6)]})
    got = align_to_bars(fng, bars.with_columns(pl.col("open_time").dt.cast_time_unit("us")))
    # A daily bar opening at D 00:00 gets D-1's value (published exactly at its open).
    assert got["fear_greed"].to_list() == [None, 20, 27, 34, None, 48]


def test_alignment_no_lookahead() -> None:
    fng = parse_fng(_payload())
    bars = _hourly()
    full = align_to_bars(fng, bars)
    for cut in range(0, 24 * 10, 7):
        t = bars["open_time"][cut]
        # Whatever is published at or after a bar's open cannot change that bar's value.
        known = fng.filter(pl.col("published_at") < t)
        part = align_to_bars(known, bars.filter(pl.col("open_time") <= t))
        assert part.equals(full.head(cut + 1)), t


def test_alignment_on_klines_schema() -> None:
    bars = synthetic_bars((("bull", 100),), start=DAY0)
    aligned = align_to_bars(parse_fng(_payload()), bars)
    assert aligned["open_time"].to_list() == bars["open_time"].to_list()
    # the first bar (00:00 of day 0) and the 24 bars the missing day leaves uncovered
    assert aligned["fear_greed"].null_count() == 1 + 24
