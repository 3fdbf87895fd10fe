"""Download one zip safely: ``.part`` beside the final name, HTTP Range resume, the one retry
policy (:mod:`trading_pipeline.retrying`: backoff with jitter, ``Retry-After`` honoured), and sha256 verified against the ``.CHECKSUM`` before the atomic rename.

A file that fails verification is deleted; nothing unverified ever appears under a final name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx

from trading_pipeline.fsutil import atomic_write_bytes
from trading_pipeline.history.checksum import ChecksumFormatError, parse_checksum, sha256_file
from trading_pipeline.retrying import GaveUp, RetryPolicy, retry_after_from

__all__ = ["ChecksumMismatch", "DownloadError", "RetryPolicy", "fetch_checksum", "make_client"]

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(RuntimeError):
    """A file could not be fetched and verified; the message names it."""


class ChecksumMismatch(DownloadError):
    """The zip's sha256 differs from its ``.CHECKSUM``: the file is not kept."""


class _Retryable(Exception):
    """A transient failure worth another attempt; ``retry_after`` is the server's wait hint."""

    def __init__(self, message: str, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after_from(response.headers) if response is not None else None


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable | httpx.TimeoutException | httpx.TransportError)


def _hint(exc: BaseException) -> float | None:
    return getattr(exc, "retry_after", None)


def make_client(timeout: float = 30.0) -> httpx.Client:
    """The one HTTP client a fetch shares across its threads."""
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), limits=limits)


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _with_retries(
    what: str, retry: RetryPolicy, action: Callable[[], bytes | None]
) -> bytes | None:
    try:
        return retry.call(what, action, on=_transient, hint=_hint)
    except GaveUp as exc:
        raise DownloadError(str(exc)) from None


def fetch_checksum(client: httpx.Client, url: str, retry: RetryPolicy) -> str:
    """The sha256 published in ``<url>.CHECKSUM``."""
    checksum_url = url + ".CHECKSUM"

    def get() -> bytes:
        response = client.get(checksum_url)
        if response.status_code in RETRY_STATUS:
            raise _Retryable(f"HTTP {response.status_code}", response)
        if response.status_code == 404:
            raise DownloadError(f"{checksum_url}: no .CHECKSUM published (HTTP 404)")
        if response.status_code != 200:
            raise DownloadError(f"{checksum_url}: HTTP {response.status_code}")
        return response.content

    body = _with_retries(checksum_url, retry, get) or b""
    try:
        return parse_checksum(body, expected_name=url.rsplit("/", 1)[-1])
    except ChecksumFormatError as exc:
        raise DownloadError(f"{checksum_url}: {exc}") from exc


def _fetch_into(client: httpx.Client, url: str, part: Path, expected_size: int | None) -> None:
    """One attempt: append to ``part`` from its current size (Range) or restart on a 200."""
    have = part.stat().st_size if part.exists() else 0
    if expected_size is not None and have > expected_size:
        part.unlink()
        have = 0
    if expected_size is not None and have == expected_size:
        return
    headers = {"Range": f"bytes={have}-"} if have else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and have:
            part.unlink()  # the server has less than we hold: start again
            raise _Retryable("HTTP 416 on resume")
        if response.status_code in RETRY_STATUS:
            raise _Retryable(f"HTTP {response.status_code}", response)
        if response.status_code not in (200, 206):
            raise DownloadError(f"{url}: HTTP {response.status_code}")
        mode = "ab" if response.status_code == 206 else "wb"
        declared = response.headers.get("content-length")
        received = 0
        with open(part, mode) as fh:
            for chunk in response.iter_raw():
                fh.write(chunk)
                received += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
    if declared is not None and received < int(declared):
        raise _Retryable(f"truncated body: {received} of {declared} bytes")
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        raise _Retryable(f"size {size} differs from the listed {expected_size}")


def download_verified(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    retry: RetryPolicy | None = None,
    expected_sha256: str | None = None,
) -> str:
    """Fetch ``url`` to ``dest`` (and ``dest.CHECKSUM``) verified; return the sha256.

    Resumes a ``.part`` left by an interrupted run. On a checksum mismatch after a resume the
    whole file is fetched once more from scratch; a second mismatch raises ``ChecksumMismatch``
    and leaves neither ``dest`` nor its ``.part`` behind. ``expected_sha256`` skips fetching
    the ``.CHECKSUM`` when the caller already has it.
    """
    retry = retry or RetryPolicy()
    expected = expected_sha256 or fetch_checksum(client, url, retry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    for fresh in (False, True):
        if fresh:
            part.unlink(missing_ok=True)
        resumed = part.exists()

        def attempt() -> None:
            _fetch_into(client, url, part, expected_size)

        _with_retries(url, retry, attempt)  # type: ignore[arg-type]
        actual = sha256_file(part)
        if actual == expected:
            os.replace(part, dest)
            name = dest.name
            atomic_write_bytes(dest.with_name(name + ".CHECKSUM"), f"{expected}  {name}".encode())
            return actual
        part.unlink(missing_ok=True)
        if not resumed:
            break
    raise ChecksumMismatch(f"{url}: sha256 {actual} does not match its .CHECKSUM {expected}")
