"""Text sources: RSS/Atom feeds (``feedparser``) and exported social posts (JSON lines, a JSON
array, or CSV with ``timestamp, author, text`` and optionally ``id``), from URLs or files.

Nothing here raises on bad content: an unreachable or unreadable source, a document that is
not a feed, a row without text, an item without a publication time, a duplicate (same guid,
same link, or same text) and a non-English text are each *counted* in :class:`NewsCounts`
(the counts go into the asset's metadata and ``news fetch``'s output); only well-formed,
dated, first-seen items are kept, scored when English. URLs are fetched with the one retry
policy (:mod:`trading_pipeline.retrying`: transport errors, 429 and 5xx are retried).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from calendar import timegm
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import unescape
from pathlib import Path
from typing import Any

import feedparser
import httpx
import polars as pl

from trading_pipeline.market.schema import UTC_US
from trading_pipeline.news.coins import match_coins
from trading_pipeline.news.score import is_english, polarity
from trading_pipeline.retrying import GaveUp, RetryPolicy, retry_after_from

ITEM_SCHEMA: dict[str, pl.DataType] = {
    "published_at": UTC_US,
    "uid": pl.String(),
    "link": pl.String(),
    "source": pl.String(),
    "kind": pl.String(),  # feed | social
    "author": pl.String(),
    "text": pl.String(),
    "coins": pl.List(pl.String()),
    "english": pl.Boolean(),
    "compound": pl.Float64(),  # null when not scored (not English)
    "pos": pl.Float64(),
    "neg": pl.Float64(),
    "neu": pl.Float64(),
}
TIME_KEYS = ("timestamp", "published_at", "published", "created_at", "time", "date")
AUTHOR_KEYS = ("author", "user", "username", "screen_name")
TEXT_KEYS = ("text", "content", "body", "message", "title")
ID_KEYS = ("id", "guid", "uid", "post_id")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@dataclass
class NewsCounts:
    """What a fetch saw; every problem is a number here, never an exception."""

    sources: int = 0
    sources_failed: int = 0  # unreachable, unreadable, or not a feed / not posts
    entries_read: int = 0  # feed entries and social rows, as found
    malformed_rows: int = 0  # social rows that are not JSON objects or have no text
    missing_timestamp: int = 0  # dropped: no usable publication time
    duplicates: int = 0  # dropped: same guid, link or text as an earlier item
    kept: int = 0
    non_english: int = 0  # kept, not scored
    scored: int = 0
    errors: list[str] = field(default_factory=list)  # one line per failed source

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RawItem:
    published_at: datetime | None
    uid: str
    link: str
    source: str
    kind: str
    author: str
    text: str


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


def _hint(exc: BaseException) -> float | None:
    if isinstance(exc, httpx.HTTPStatusError):
        return retry_after_from(exc.response.headers)
    return None


def read_bytes(location: str, client: httpx.Client, policy: RetryPolicy) -> bytes:
    """The bytes at a URL (retried by ``policy``) or a file path (``file://`` allowed)."""
    if is_url(location):

        def get() -> bytes:
            resp = client.get(location)
            resp.raise_for_status()
            return resp.content

        return policy.call(f"GET {location}", get, on=_retryable, hint=_hint)
    path = Path(location.removeprefix("file://")).expanduser()
    return path.read_bytes()


def _clean(text: str) -> str:
    return _SPACE.sub(" ", unescape(_TAG.sub(" ", text or ""))).strip()


def parse_time(value: Any) -> datetime | None:
    """A publication time from unix seconds (or milliseconds), ISO 8601 or RFC 2822 text, or
    a ``time.struct_time`` (feedparser's, UTC); naive times are UTC; None when unreadable."""
    if value is None or value == "":
        return None
    if hasattr(value, "tm_year"):
        return datetime.fromtimestamp(timegm(value), UTC)
    if isinstance(value, bool):
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is None:
            try:
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                try:
                    when = parsedate_to_datetime(text)
                except (TypeError, ValueError, IndexError):
                    return None
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    if number != number or number <= 0:  # NaN or not a time
        return None
    seconds = number / 1000.0 if number > 1e11 else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_feed(data: bytes, source: str) -> list[RawItem] | None:
    """The entries of an RSS/Atom document, or None when it is not a feed at all."""
    parsed = feedparser.parse(data)
    entries = list(parsed.get("entries") or [])
    if not entries and (parsed.get("bozo") or not parsed.get("version")):
        return None
    out = []
    for e in entries:
        when = parse_time(e.get("published_parsed") or e.get("updated_parsed"))
        if when is None:
            when = parse_time(e.get("published") or e.get("updated"))
        title, summary = _clean(e.get("title", "")), _clean(e.get("summary", ""))
        text = f"{title}. {summary}" if title and summary and summary != title else title or summary
        link = str(e.get("link") or "")
        uid = str(e.get("id") or e.get("guid") or link or "")
        author = str(e.get("author") or parsed.get("feed", {}).get("title") or "")
        out.append(RawItem(when, uid, link, source, "feed", author, text))
    return out


def _field(row: Mapping[str, Any], keys: Sequence[str]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for k in keys:
        if lowered.get(k) not in (None, ""):
            return lowered[k]
    return None


def _rows(data: bytes) -> Iterator[Mapping[str, Any] | None]:
    """Rows of a JSON-lines, JSON-array or CSV export (None for a row that is not an object)."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    head = text.lstrip()[:1]
    if head == "[":
        try:
            rows = json.loads(text)
        except ValueError:
            rows = None
        if isinstance(rows, list):
            yield from (r if isinstance(r, dict) else None for r in rows)
            return
    if head in ("{", "["):
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            yield row if isinstance(row, dict) else None
        return
    yield from csv.DictReader(io.StringIO(text))


def parse_social(data: bytes, source: str) -> tuple[list[RawItem], int]:
    """Posts of a social export and how many rows were malformed (not an object, no text)."""
    out, bad = [], 0
    for row in _rows(data):
        text = _clean(str(_field(row, TEXT_KEYS) or "")) if row is not None else ""
        if row is None or not text:
            bad += 1
            continue
        when = parse_time(_field(row, TIME_KEYS))
        author = str(_field(row, AUTHOR_KEYS) or "")
        uid = str(_field(row, ID_KEYS) or "")
        link = str(_field(row, ("url", "link")) or "")
        out.append(RawItem(when, uid, link, source, "social", author, text))
    return out, bad


def _text_key(text: str) -> str:
    return hashlib.sha1(_SPACE.sub(" ", text.lower()).strip().encode()).hexdigest()


def dedupe(items: Iterable[RawItem], counts: NewsCounts) -> list[RawItem]:
    """First-seen items with a publication time; a later item with the same guid, link or
    text is a duplicate. Both kinds of drop are counted."""
    seen: set[str] = set()
    out = []
    for it in items:
        keys = {f"t:{_text_key(it.text)}"}
        if it.uid:
            keys.add(f"u:{it.uid}")
        if it.link:
            keys.add(f"l:{it.link}")
        if keys & seen:
            counts.duplicates += 1
            continue
        seen |= keys
        if it.published_at is None:
            counts.missing_timestamp += 1
            continue
        out.append(it)
    return out


def score_items(items: Sequence[RawItem], counts: NewsCounts) -> pl.DataFrame:
    """The kept items as a frame (:data:`ITEM_SCHEMA`), English ones scored by VADER."""
    records = []
    for it in items:
        english = is_english(it.text)
        scores: dict[str, float | None] = (
            dict(polarity(it.text))
            if english
            else {"compound": None, "pos": None, "neg": None, "neu": None}
        )
        counts.non_english += 0 if english else 1
        counts.scored += 1 if english else 0
        uid = it.uid or f"sha1:{_text_key(it.author + '|' + it.text)}"
        records.append(
            {
                "published_at": it.published_at,
                "uid": uid,
                "link": it.link,
                "source": it.source,
                "kind": it.kind,
                "author": it.author,
                "text": it.text,
                "coins": match_coins(it.text),
                "english": english,
                **scores,
            }
        )
    counts.kept += len(records)
    return pl.DataFrame(records, schema=ITEM_SCHEMA).sort("published_at", "uid")


def collect(
    feeds: Sequence[str],
    social: Sequence[str],
    *,
    client: httpx.Client,
    policy: RetryPolicy | None = None,
) -> tuple[pl.DataFrame, NewsCounts]:
    """Read every source, drop what cannot be used (counted), score the rest."""
    policy = policy or RetryPolicy(attempts=3, base_s=0.2, max_s=2.0)
    counts = NewsCounts()
    raw: list[RawItem] = []
    for kind, locations in (("feed", feeds), ("social", social)):
        for loc in locations:
            counts.sources += 1
            try:
                data = read_bytes(loc, client, policy)
            except (GaveUp, httpx.HTTPError, OSError) as exc:
                counts.sources_failed += 1
                counts.errors.append(f"{loc}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
                continue
            if kind == "feed":
                entries = parse_feed(data, loc)
                if entries is None:
                    counts.sources_failed += 1
                    counts.errors.append(f"{loc}: not an RSS or Atom feed")
                    continue
                counts.entries_read += len(entries)
            else:
                entries, bad = parse_social(data, loc)
                counts.entries_read += len(entries) + bad
                counts.malformed_rows += bad
            raw.extend(entries)
    return score_items(dedupe(raw, counts), counts), counts


def empty_items() -> pl.DataFrame:
    return pl.DataFrame(schema=ITEM_SCHEMA)
