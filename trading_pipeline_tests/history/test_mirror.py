"""The local Binance Vision mirror: files, Range, ETag, listing, fault injection, CLI."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from trading_pipeline.history.checksum import parse_checksum
from trading_pipeline.history.vision import monthly_key
from trading_pipeline_tests.fakes.faults import Fault, FaultyMirror
from trading_pipeline_tests.fakes.vision import make_vision_tree, month_days

from .conftest import SPOT_1H

pytestmark = pytest.mark.slow  # a local HTTP server (the Vision mirror)


@pytest.fixture
def one_month(tree: Path) -> str:
    make_vision_tree(tree, SPOT_1H, months=[(2024, 1)])
    return monthly_key(SPOT_1H, 2024, 1)


def test_serves_files_with_range_etag_and_last_modified(
    tree: Path, mirror: FaultyMirror, one_month: str
) -> None:
    data = (tree / one_month).read_bytes()
    with httpx.Client(base_url=mirror.url) as client:
        full = client.get("/" + one_month)
        part = client.get("/" + one_month, headers={"Range": "bytes=100-"})
        past = client.get("/" + one_month, headers={"Range": f"bytes={len(data)}-"})
        head = client.head("/" + one_month)
        missing = client.get("/data/spot/monthly/klines/NOPE.zip")
        escape = client.get("/data/../../etc/passwd")
    assert full.status_code == 200 and full.content == data
    assert full.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert "GMT" in full.headers["last-modified"]
    assert part.status_code == 206 and part.content == data[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    assert past.status_code == 416
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    assert missing.status_code == 404 and escape.status_code == 404


def test_generated_checksum_is_the_official_form(tree: Path, one_month: str) -> None:
    body = (tree / (one_month + ".CHECKSUM")).read_bytes()
    assert not body.endswith(b"\n") and len(body) == 64 + 2 + len("BTCUSDT-1h-2024-01.zip")
    digest = hashlib.sha256((tree / one_month).read_bytes()).hexdigest()
    assert parse_checksum(body, "BTCUSDT-1h-2024-01.zip") == digest


def test_fixture_bytes_are_deterministic(tmp_path: Path) -> None:
    a = make_vision_tree(tmp_path / "a", SPOT_1H, days=[date(2025, 1, 2)])
    b = make_vision_tree(tmp_path / "b", SPOT_1H, days=[date(2025, 1, 2)])
    c = make_vision_tree(tmp_path / "c", SPOT_1H, days=[date(2025, 1, 2)], seed=1)
    assert a[0].read_bytes() == b[0].read_bytes() != c[0].read_bytes()


def test_status_and_missing_checksum_faults(
    tree: Path, mirror: FaultyMirror, one_month: str
) -> None:
    mirror.faults.add("status", "*.zip", times=2, status=500)
    mirror.faults.add("missing", "*.CHECKSUM")
    with httpx.Client(base_url=mirror.url) as client:
        codes = [client.get("/" + one_month).status_code for _ in range(3)]
        checksum = client.get("/" + one_month + ".CHECKSUM")
    assert codes == [500, 500, 200]
    assert checksum.status_code == 404
    assert mirror.faults.count("*.zip") == 3


def test_wrong_checksum_truncate_and_reset_faults(
    tree: Path, mirror: FaultyMirror, one_month: str
) -> None:
    mirror.faults.add("wrong_checksum", "*.CHECKSUM", times=1)
    mirror.faults.add("truncate", "*.zip", times=1)
    data = (tree / one_month).read_bytes()
    with httpx.Client(base_url=mirror.url) as client:
        wrong = parse_checksum(client.get("/" + one_month + ".CHECKSUM").content)
        right = parse_checksum(client.get("/" + one_month + ".CHECKSUM").content)
        with pytest.raises(httpx.TransportError):
            client.get("/" + one_month)  # truncated: the peer closes early
        mirror.faults.add("reset", "*.zip", times=1)
        with pytest.raises(httpx.TransportError):
            client.get("/" + one_month)  # reset
        assert client.get("/" + one_month).content == data
    assert wrong != right == hashlib.sha256(data).hexdigest()


def test_fault_specs_parse() -> None:
    fault = Fault.parse("status:*.zip:2:500")
    assert (fault.kind, fault.match, fault.times, fault.status) == ("status", "*.zip", 2, 500)
    assert Fault.parse("slow::: 0.5").delay == 0.5
    assert Fault.parse("reset").times is None
    with pytest.raises(ValueError, match="unknown fault"):
        Fault.parse("explode")


def test_listing_pages_and_prefixes(tree: Path, mirror: FaultyMirror) -> None:
    make_vision_tree(tree, SPOT_1H, days=month_days(2024, 2, until=date(2024, 2, 2)))
    with httpx.Client(base_url=mirror.url) as client:
        first = client.get(
            "/", params={"delimiter": "/", "prefix": "data/spot/daily/klines/BTCUSDT/1h/"}
        )
        folders = client.get("/", params={"delimiter": "/", "prefix": "data/spot/"})
    assert "<IsTruncated>true</IsTruncated>" in first.text
    assert (
        "<NextMarker>data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02-02.zip</NextMarker>"
        in first.text
    )
    assert "<Prefix>data/spot/daily/</Prefix>" in folders.text


def test_cli_serves_a_folder(tree: Path, one_month: str, unused_tcp_port: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trading_pipeline.cli", "mirror", "serve", str(tree),
         "--port", str(unused_tcp_port), "--page-size", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{unused_tcp_port}"
        for _ in range(100):
            try:
                httpx.get(url + "/", params={"prefix": ""}, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        first = httpx.get(f"{url}/{one_month}")
        second = httpx.get(f"{url}/{one_month}")
        listing = httpx.get(
            url, params={"delimiter": "/", "prefix": "data/spot/monthly/klines/BTCUSDT/1h/"}
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert first.status_code == 200 and second.content == (tree / one_month).read_bytes()
    assert listing.text.count("<Contents>") == 1 and "<IsTruncated>true" in listing.text


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
