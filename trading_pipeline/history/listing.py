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

RETRY_STATUS = frozenset({500, 502, 503, 504})


class ListingError(RuntimeError):
    """The listing could not be read (HTTP error, bad XML, or a marker that does not advance)."""


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
    attempts: int,
    sleep: Callable[[float], None],
) -> ListingPage:
    last: Exception | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(min(0.2 * 2**attempt, 5.0))
        try:
            response = client.get(listing_url, params=params)
        except httpx.TransportError as exc:
            last = exc
            continue
        if response.status_code in RETRY_STATUS:
            last = ListingError(f"HTTP {response.status_code}")
            continue
        if response.status_code != 200:
            raise ListingError(
                f"listing {listing_url} prefix={params['prefix']!r}: HTTP {response.status_code}"
            )
        return parse_page(response.content)
    raise ListingError(f"listing {listing_url} prefix={params['prefix']!r} failed: {last}")


def list_all(
    client: httpx.Client,
    listing_url: str,
    prefix: str,
    *,
    marker: str | None = None,
    attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> ListingPage:
    """Every object and common prefix under ``prefix`` (after ``marker``), across all pages."""
    result = ListingPage()
    while True:
        params = {"delimiter": "/", "prefix": prefix}
        if marker:
            params["marker"] = marker
        page = _get_page(client, listing_url, params, attempts, sleep)
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
