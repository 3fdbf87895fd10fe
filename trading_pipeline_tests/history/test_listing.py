"""The S3 ListObjects v1 client: pagination, NextMarker fallback, prefixes, retries."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer

from trading_pipeline.history.layout import Series
from trading_pipeline.history.listing import (
    ListingError,
    list_all,
    list_objects,
    list_prefixes,
    parse_page,
)
from trading_pipeline.history.vision import series_prefix
from trading_pipeline_tests.fakes.faults import FaultyMirror
from trading_pipeline_tests.fakes.vision import make_vision_tree, month_days, month_range

from .conftest import SPOT_1H

pytestmark = pytest.mark.slow  # a local HTTP server (the Vision mirror)


def test_paginates_over_tiny_pages(tree: Path, mirror: FaultyMirror) -> None:
    make_vision_tree(tree, SPOT_1H, months=month_range((2023, 1), 7))
    with httpx.Client() as client:
        objects = list_objects(client, mirror.url, series_prefix(SPOT_1H, "monthly"))
    keys = [o.key for o in objects]
    assert len(keys) == 14  # 7 zips + 7 checksums over 5 pages of 3
    assert keys == sorted(keys) and len(set(keys)) == 14
    assert mirror.faults.count("", method="GET") == 5
    zips = {o.key: o for o in objects if o.key.endswith(".zip")}
    local = tree / next(iter(zips))
    assert zips[next(iter(zips))].size == local.stat().st_size
    assert all(len(o.etag) == 32 and o.last_modified.endswith("Z") for o in objects)


def test_marker_starts_after_a_key(tree: Path, mirror: FaultyMirror) -> None:
    make_vision_tree(tree, SPOT_1H, days=month_days(2024, 1, until=date(2024, 1, 4)))
    prefix = series_prefix(SPOT_1H, "daily")
    with httpx.Client() as client:
        objects = list_objects(client, mirror.url, prefix, marker=prefix + "BTCUSDT-1h-2024-01-03")
    assert [o.key.rsplit("/", 1)[1] for o in objects] == [
        "BTCUSDT-1h-2024-01-03.zip",
        "BTCUSDT-1h-2024-01-03.zip.CHECKSUM",
        "BTCUSDT-1h-2024-01-04.zip",
        "BTCUSDT-1h-2024-01-04.zip.CHECKSUM",
    ]


def test_common_prefixes_enumerate_symbols(tree: Path, mirror: FaultyMirror) -> None:
    for symbol in ("BTCUSDT", "BTCUSDC", "ETHUSDT", "XNOUSDT"):
        make_vision_tree(tree, Series("spot", symbol, "1d"), months=[(2024, 1)])
    with httpx.Client() as client:
        everything = list_prefixes(client, mirror.url, "data/spot/monthly/klines/")
        btc = list_prefixes(client, mirror.url, "data/spot/monthly/klines/BTC")
    assert everything == [
        f"data/spot/monthly/klines/{s}/" for s in ("BTCUSDC", "BTCUSDT", "ETHUSDT", "XNOUSDT")
    ]
    assert btc == everything[:2]


PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Name>data.binance.vision</Name><Prefix>p/</Prefix><Marker>{marker}</Marker>
<MaxKeys>2</MaxKeys><IsTruncated>{truncated}</IsTruncated>{contents}</ListBucketResult>"""


def _contents(*keys: str) -> str:
    return "".join(
        f"<Contents><Key>{k}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
        f'<ETag>"abc"</ETag><Size>7</Size></Contents>'
        for k in keys
    )


def test_without_next_marker_the_last_key_is_the_marker(httpserver: HTTPServer) -> None:
    """Real S3 omits NextMarker when no delimiter applies: continue from the last key."""
    httpserver.expect_request(
        "/bucket", query_string={"delimiter": "/", "prefix": "p/"}
    ).respond_with_data(PAGE.format(marker="", truncated="true", contents=_contents("p/a", "p/b")))
    httpserver.expect_request(
        "/bucket", query_string={"delimiter": "/", "prefix": "p/", "marker": "p/b"}
    ).respond_with_data(PAGE.format(marker="p/b", truncated="false", contents=_contents("p/c")))
    with httpx.Client() as client:
        objects = list_objects(client, httpserver.url_for("/bucket"), "p/")
    assert [o.key for o in objects] == ["p/a", "p/b", "p/c"]
    assert objects[0].etag == "abc" and objects[0].size == 7


def test_a_marker_that_does_not_advance_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/bucket").respond_with_data(
        PAGE.format(marker="", truncated="true", contents="")
    )
    with httpx.Client() as client, pytest.raises(ListingError, match="does not advance"):
        list_objects(client, httpserver.url_for("/bucket"), "p/")


def test_retries_5xx_then_fails_clearly(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/bucket").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/bucket").respond_with_data(
        PAGE.format(marker="", truncated="false", contents=_contents("p/a"))
    )
    slept: list[float] = []
    with httpx.Client() as client:
        page = list_all(client, httpserver.url_for("/bucket"), "p/", sleep=slept.append)
    assert [o.key for o in page.objects] == ["p/a"] and len(slept) == 1
    httpserver.clear()
    httpserver.expect_request("/bucket").respond_with_data("denied", status=403)
    with httpx.Client() as client, pytest.raises(ListingError, match="HTTP 403"):
        list_all(client, httpserver.url_for("/bucket"), "p/", sleep=slept.append)


def test_html_instead_of_xml_is_rejected() -> None:
    with pytest.raises(ListingError):
        parse_page(b"<html><body>data.binance.vision</body></html>")
    with pytest.raises(ListingError):
        parse_page(b"not xml at all")
