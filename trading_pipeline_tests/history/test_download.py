"""Downloading one zip: resume, retries with backoff, checksum verified before the rename."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer

from trading_pipeline.history.download import (
    ChecksumMismatch,
    DownloadError,
    RetryPolicy,
    download_verified,
    part_path,
)
from trading_pipeline.history.vision import monthly_key
from trading_pipeline_tests.fakes.faults import FaultyMirror
from trading_pipeline_tests.fakes.vision import make_vision_tree

from .conftest import SPOT_1H

pytestmark = pytest.mark.slow  # a local HTTP server (the Vision mirror)


@pytest.fixture
def zip_key(tree: Path) -> str:
    make_vision_tree(tree, SPOT_1H, months=[(2024, 3)])
    return monthly_key(SPOT_1H, 2024, 3)


def _fetch(mirror: FaultyMirror, key: str, dest: Path, retry: RetryPolicy) -> str:
    with httpx.Client(timeout=5) as client:
        return download_verified(client, f"{mirror.url}/{key}", dest, retry=retry)


def test_happy_path_keeps_zip_and_checksum(
    tree: Path, mirror: FaultyMirror, zip_key: str, tmp_path: Path, no_sleep: RetryPolicy
) -> None:
    dest = tmp_path / "out" / "x" / "BTCUSDT-1h-2024-03.zip"
    digest = _fetch(mirror, zip_key, dest, no_sleep)
    assert dest.read_bytes() == (tree / zip_key).read_bytes()
    assert digest == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert (
        dest.with_name(dest.name + ".CHECKSUM").read_bytes()
        == (tree / (zip_key + ".CHECKSUM")).read_bytes()
    )
    assert not part_path(dest).exists()


def test_resumes_a_partial_download_with_range(
    tree: Path, mirror: FaultyMirror, zip_key: str, tmp_path: Path, no_sleep: RetryPolicy
) -> None:
    data = (tree / zip_key).read_bytes()
    dest = tmp_path / "BTCUSDT-1h-2024-03.zip"
    part_path(dest).write_bytes(data[:1000])
    _fetch(mirror, zip_key, dest, no_sleep)
    assert dest.read_bytes() == data
    ranges = [r for m, p, r in mirror.faults.requests if p == zip_key]
    assert ranges == ["bytes=1000-"]


def test_corrupt_partial_is_refetched_whole(
    tree: Path, mirror: FaultyMirror, zip_key: str, tmp_path: Path, no_sleep: RetryPolicy
) -> None:
    """A .part with wrong bytes fails the checksum after resuming; one clean re-fetch fixes it."""
    data = (tree / zip_key).read_bytes()
    dest = tmp_path / "BTCUSDT-1h-2024-03.zip"
    part_path(dest).write_bytes(b"\0" * 1000)
    _fetch(mirror, zip_key, dest, no_sleep)
    assert dest.read_bytes() == data
    assert [r for _, p, r in mirror.faults.requests if p == zip_key] == ["bytes=1000-", ""]


def test_server_ignoring_range_restarts_from_zero(
    httpserver: HTTPServer, tmp_path: Path, no_sleep: RetryPolicy
) -> None:
    payload = b"PK" + bytes(range(256)) * 10
    name = "BTCUSDT-1h-2024-03.zip"
    digest = hashlib.sha256(payload).hexdigest()
    httpserver.expect_request(f"/{name}.CHECKSUM").respond_with_data(f"{digest}  {name}")
    httpserver.expect_request(f"/{name}").respond_with_data(payload)  # 200, whatever the Range
    dest = tmp_path / name
    part_path(dest).write_bytes(payload[:500])
    with httpx.Client() as client:
        download_verified(client, httpserver.url_for(f"/{name}"), dest, retry=no_sleep)
    assert dest.read_bytes() == payload
    assert httpserver.log[-1][0].headers.get("Range") == "bytes=500-"


def test_a_429_with_retry_after_is_waited_out_as_the_server_asks(
    httpserver: HTTPServer, tmp_path: Path, no_sleep: RetryPolicy
) -> None:
    payload = b"PK" + bytes(range(256)) * 4
    name = "BTCUSDT-1h-2024-03.zip"
    digest = hashlib.sha256(payload).hexdigest()
    httpserver.expect_ordered_request(f"/{name}.CHECKSUM").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"}
    )
    httpserver.expect_ordered_request(f"/{name}.CHECKSUM").respond_with_data(f"{digest}  {name}")
    httpserver.expect_ordered_request(f"/{name}").respond_with_data(payload)
    dest = tmp_path / name
    with httpx.Client() as client:
        download_verified(client, httpserver.url_for(f"/{name}"), dest, retry=no_sleep)
    assert dest.read_bytes() == payload
    assert no_sleep.sleep.calls == [7.0]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "kw"),
    [("status", {"status": 503}), ("status", {"status": 500}), ("truncate", {}), ("reset", {})],
)
def test_transient_faults_are_retried_with_backoff(
    tree: Path,
    mirror: FaultyMirror,
    zip_key: str,
    tmp_path: Path,
    no_sleep: RetryPolicy,
    kind: str,
    kw: dict[str, int],
) -> None:
    mirror.faults.add(kind, "*.zip", times=2, **kw)
    dest = tmp_path / "BTCUSDT-1h-2024-03.zip"
    _fetch(mirror, zip_key, dest, no_sleep)
    assert dest.read_bytes() == (tree / zip_key).read_bytes()
    waits = no_sleep.sleep.calls  # type: ignore[attr-defined]
    # exponential backoff (0.25 s, 0.5 s) plus up to jitter_s of random jitter
    assert len(waits) == 2
    for wait, base in zip(waits, (0.25, 0.5), strict=True):
        assert base <= wait <= base + no_sleep.jitter_s
    if kind == "truncate":  # the second and third attempts resume where the cut left off
        assert [r for _, p, r in mirror.faults.requests if p == zip_key][1].startswith("bytes=")


def test_gives_up_after_bounded_attempts(
    tree: Path, mirror: FaultyMirror, zip_key: str, tmp_path: Path, no_sleep: RetryPolicy
) -> None:
    mirror.faults.add("status", "*.zip", status=503)
    dest = tmp_path / "BTCUSDT-1h-2024-03.zip"
    with pytest.raises(DownloadError, match="gave up after 4 attempts"):
        _fetch(mirror, zip_key, dest, no_sleep)
    assert mirror.faults.count("*.zip") == 4
    assert not dest.exists() and not part_path(dest).exists()


def test_wrong_checksum_leaves_nothing(
    tree: Path, mirror: FaultyMirror, zip_key: str, tmp_path: Path, no_sleep: RetryPolicy
) -> None:
    mirror.faults.add("wrong_checksum", "*.CHECKSUM")
    dest = tmp_path / "BTCUSDT-1h-2024-03.zip"
    with pytest.raises(ChecksumMismatch, match=r"BTCUSDT-1h-2024-03\.zip"):
        _fetch(mirror, zip_key, dest, no_sleep)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vision"]


def test_missing_checksum_is_a_clear_failure(
    tree: Path, mirror: FaultyMirror, zip_key: str, tmp_path: Path, no_sleep: RetryPolicy
) -> None:
    mirror.faults.add("missing", "*.CHECKSUM")
    dest = tmp_path / "BTCUSDT-1h-2024-03.zip"
    with pytest.raises(DownloadError, match=r"no \.CHECKSUM"):
        _fetch(mirror, zip_key, dest, no_sleep)
    assert mirror.faults.count("*.zip") == 0  # never fetched what cannot be verified
    assert not dest.exists()


def test_a_failed_refetch_keeps_the_previous_verified_file(
    tree: Path, mirror: FaultyMirror, zip_key: str, tmp_path: Path, no_sleep: RetryPolicy
) -> None:
    dest = tmp_path / "BTCUSDT-1h-2024-03.zip"
    _fetch(mirror, zip_key, dest, no_sleep)
    before = dest.read_bytes()
    make_vision_tree(tree, SPOT_1H, months=[(2024, 3)], seed=9)  # re-published upstream
    mirror.faults.add("wrong_checksum", "*.CHECKSUM")
    with pytest.raises(ChecksumMismatch):
        _fetch(mirror, zip_key, dest, no_sleep)
    assert dest.read_bytes() == before and not part_path(dest).exists()
