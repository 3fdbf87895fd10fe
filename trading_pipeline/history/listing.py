"""The S3 ListObjects (v1) XML listing of data.binance.vision, paginated on ``NextMarker``.

``GET <listing_url>?delimiter=/&prefix=<prefix>[&marker=<m>]`` returns ``<Contents>`` (keys with
size, ETag and Last-Modified) and ``<CommonPrefixes>`` (sub-"folders"). A page holds at most
``MaxKeys`` entries; while ``IsTruncated`` is true, ask again from ``NextMarker`` (or from the
last key or prefix when the server sends none).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from trading_pipeline.retrying import GaveUp, RetryPolicy, retry_after_from

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class ListingError(RuntimeError):
    """The listing could not be read (HTTP error, bad XML, or a marker that does not advance)."""


class _Transient(Exception):
    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.retry_after = retry_after_from(response.headers)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, _Transient | httpx.TransportError)


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    etag: str
    last_modified: str


@dataclass
class ListingPage:
    objects: list[ListedObject] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_marker: str | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(node: ET.Element, name: str) -> str:
    for child in node:
        if _local(child.tag) == name:
            return child.text or ""
    return ""


def parse_page(xml: bytes) -> ListingPage:
    """Parse one ListBucketResult page (namespace or not)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ListingError(f"listing is not XML ({exc}): {xml[:120]!r}") from exc
    if _local(root.tag) != "ListBucketResult":
        raise ListingError(f"unexpected listing root <{_local(root.tag)}>: {xml[:200]!r}")
    page = ListingPage()
    for node in root:
        tag = _local(node.tag)
        if tag == "Contents":
            page.objects.append(
                ListedObject(
                    key=_text(node, "Key"),
                    size=int(_text(node, "Size") or 0),
                    etag=_text(node, "ETag").strip('"'),
                    last_modified=_text(node, "LastModified"),
                )
            )
        elif tag == "CommonPrefixes":
            page.prefixes.append(_text(node, "Prefix"))
    page.truncated = _text(root, "IsTruncated").strip().lower() == "true"
    page.next_marker = _text(root, "NextMarker") or None
    return page


def _get_page(
    client: httpx.Client,
    listing_url: str,
    params: dict[str, str],
    retry: RetryPolicy,
) -> ListingPage:
    where = f"listing {listing_url} prefix={params['prefix']!r}"

    def get() -> ListingPage:
        response = client.get(listing_url, params=params)
        if response.status_code in RETRY_STATUS:
            raise _Transient(f"HTTP {response.status_code}", response)
        if response.status_code != 200:
            raise ListingError(f"{where}: HTTP {response.status_code}")
        return parse_page(response.content)

    try:
        return retry.call(where, get, on=_transient, hint=lambda e: getattr(e, "retry_after", None))
    except GaveUp as exc:
        raise ListingError(f"{where} failed after {exc.attempts} attempts: {exc.last}") from None


def list_all(
    client: httpx.Client,
    listing_url: str,
    prefix: str,
    *,
    marker: str | None = None,
    attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
    retry: RetryPolicy | None = None,
) -> ListingPage:
    """Every object and common prefix under ``prefix`` (after ``marker``), across all pages."""
    policy = retry or RetryPolicy(attempts=attempts, base_s=0.4, max_s=5.0, sleep=sleep)
    result = ListingPage()
    while True:
        params = {"delimiter": "/", "prefix": prefix}
        if marker:
            params["marker"] = marker
        page = _get_page(client, listing_url, params, policy)
        result.objects.extend(page.objects)
        result.prefixes.extend(page.prefixes)
        if not page.truncated:
            return result
        last_seen = [o.key for o in page.objects[-1:]] + page.prefixes[-1:]
        following = page.next_marker or (max(last_seen) if last_seen else None)
        if not following or (marker is not None and following <= marker):
            raise ListingError(
                f"listing of {prefix!r} is truncated but its marker does not advance"
            )
        marker = following


def list_objects(
    client: httpx.Client, listing_url: str, prefix: str, *, marker: str | None = None
) -> list[ListedObject]:
    """Every object (``*.zip`` and ``*.CHECKSUM`` alike) directly under ``prefix``."""
    return list_all(client, listing_url, prefix, marker=marker).objects


def list_prefixes(client: httpx.Client, listing_url: str, prefix: str) -> list[str]:
    """The CommonPrefixes ("sub-folders") under ``prefix``, e.g. symbols under ``…/klines/``."""
    return list_all(client, listing_url, prefix).prefixes
