"""A local news server for tests: RSS 2.0 and Atom feeds, social exports (JSON lines, CSV), a
document that is not a feed, and faults (5xx answers before the real one, for the retries).

``serve_news(fake)`` binds 127.0.0.1 on an ephemeral port; ``fake.url(path)`` is a route's URL,
``fake.requests`` every path asked for. :func:`sample_day` builds the standard mix of one UTC day
with its problems planted at known places (what each one should count as is in its docstring).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from trading_pipeline.news.coins import coin_of_series


@dataclass(frozen=True)
class FeedItem:
    title: str
    published: datetime | None
    guid: str = ""
    link: str = ""
    summary: str = ""
    author: str = "desk"


@dataclass(frozen=True)
class Post:
    """One exported social post (``published`` None: the row has no timestamp)."""

    text: str
    published: datetime | None
    author: str = "someone"
    id: str = ""


def rss(items: Sequence[FeedItem], title: str = "Fake crypto news") -> bytes:
    parts = [f"<rss version='2.0'><channel><title>{escape(title)}</title>"]
    for it in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(it.title)}</title>")
        if it.guid:
            parts.append(f"<guid isPermaLink='false'>{escape(it.guid)}</guid>")
        if it.link:
            parts.append(f"<link>{escape(it.link)}</link>")
        if it.summary:
            parts.append(f"<description>{escape(it.summary)}</description>")
        if it.published is not None:
            parts.append(f"<pubDate>{format_datetime(it.published)}</pubDate>")
        parts.append(f"<author>{escape(it.author)}</author></item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def atom(items: Sequence[FeedItem], title: str = "Fake crypto wire") -> bytes:
    parts = [
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>",
        f"<title>{escape(title)}</title><id>urn:fake:wire</id><updated>2024-01-01T00:00:00Z</updated>",
    ]
    for it in items:
        parts.append("<entry>")
        parts.append(f"<title>{escape(it.title)}</title>")
        parts.append(f"<id>{escape(it.guid or it.link or it.title)}</id>")
        if it.link:
            parts.append(f"<link href='{escape(it.link)}'/>")
        if it.published is not None:
            stamp = it.published.strftime("%Y-%m-%dT%H:%M:%SZ")
            parts.append(f"<published>{stamp}</published><updated>{stamp}</updated>")
        if it.summary:
            parts.append(f"<summary>{escape(it.summary)}</summary>")
        parts.append(f"<author><name>{escape(it.author)}</name></author></entry>")
    parts.append("</feed>")
    return "".join(parts).encode()


def jsonl(posts: Sequence[Post], *, garbage: Sequence[str] = ()) -> bytes:
    lines = [
        json.dumps(
            {
                "timestamp": p.published.isoformat() if p.published else None,
                "author": p.author,
                "text": p.text,
                **({"id": p.id} if p.id else {}),
            }
        )
        for p in posts
    ]
    return "\n".join([*lines, *garbage]).encode() + b"\n"


def csv_export(posts: Sequence[Post]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["timestamp", "author", "text"])
    for p in posts:
        w.writerow([int(p.published.timestamp()) if p.published else "", p.author, p.text])
    return buf.getvalue().encode()


NOT_A_FEED = b"<html><body>502 upstream {not a feed"


@dataclass
class FakeNews:
    """Routes (path → content type, body) and faults (path → statuses answered first)."""

    routes: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    faults: dict[str, list[int]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    base: str = ""

    def route(self, path: str, body: bytes, content_type: str = "application/xml") -> str:
        self.routes[path] = (content_type, body)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        fake = self.server.fake
        path = self.path.split("?")[0]
        fake.requests.append(path)
        pending = fake.faults.get(path)
        if pending:
            self._send(pending.pop(0), "text/plain", b"try again")
        elif path in fake.routes:
            self._send(200, *fake.routes[path])
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if status in (429, 503):
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    fake: FakeNews
    daemon_threads = True


@contextlib.contextmanager
def serve_news(fake: FakeNews | None = None) -> Iterator[FakeNews]:
    fake = fake or FakeNews()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-news", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class SampleDay:
    """The standard mix of one day (what each planted problem must count as):

    * ``rss``: 6 entries — 3 good English, 1 without a date (``missing_timestamp``), 1 that
      repeats the first guid (``duplicates``), 1 in French (``non_english``, kept, not scored);
    * ``atom``: 4 entries — 3 good, 1 whose link repeats an RSS item's (``duplicates``);
    * ``broken``: not a feed (``sources_failed``);
    * ``flaky``: an RSS feed of 2 good entries answering 503 twice first (retried);
    * ``jsonl``: 3 good posts, 1 without a timestamp, 2 garbage lines (``malformed_rows``);
    * ``csv``: 4 posts, one of them the same text as a JSONL post (``duplicates``).
    """

    rss: bytes
    atom: bytes
    flaky: bytes
    jsonl: bytes
    csv: bytes
    day: datetime
    read: int  # entries and rows found (malformed rows included)
    kept: int  # dated, first-seen (the French one included)
    scored: int
    non_english: int
    duplicates: int
    missing_timestamp: int
    malformed_rows: int
    sources_failed: int


def sample_day(day: datetime) -> SampleDay:
    h = timedelta(hours=1)
    rss_items = [
        FeedItem("Bitcoin rallies as ETF demand grows, a great week", day + 1 * h, "r1",
                 "https://n.test/a1", "<p>BTC <b>gains</b> strongly</p>"),
        FeedItem("Ethereum upgrade delayed after bug, investors worried", day + 3 * h, "r2",
                 "https://n.test/a2"),
        FeedItem("Solana network outage causes panic and losses", day + 5 * h, "r3",
                 "https://n.test/a3"),
        FeedItem("Undated rumour about BNB", None, "r4", "https://n.test/a4"),
        FeedItem("Bitcoin rallies (copy with the same guid)", day + 6 * h, "r1", "https://n.test/a5"),
        FeedItem("Le bitcoin est en baisse et les investisseurs sont inquiets pour la suite",
                 day + 7 * h, "r6", "https://n.test/a6"),
    ]  # fmt: skip
    atom_items = [
        FeedItem("XRP wins court case, holders celebrate", day + 2 * h, "w1", "https://w.test/1"),
        FeedItem("Market calm: bitcoin and ether flat", day + 9 * h, "w2", "https://w.test/2"),
        FeedItem("Dogecoin crash wipes out gains, traders fear more pain", day + 11 * h, "w3",
                 "https://w.test/3"),
        FeedItem("Solana outage (same story, other wire)", day + 12 * h, "w4", "https://n.test/a3"),
    ]  # fmt: skip
    flaky_items = [
        FeedItem("Bitcoin hits new high, bulls happy", day + 13 * h, "f1", "https://f.test/1"),
        FeedItem("Ethereum fees fall, good news for users", day + 14 * h, "f2", "https://f.test/2"),
    ]
    posts = [
        Post("$BTC to the moon, love this rally", day + 15 * h, "alice", "p1"),
        Post("ETH looks weak, I am selling, terrible chart", day + 16 * h, "bob", "p2"),
        Post("no date on this one about SOL", None, "carol", "p3"),
        Post("BNB steady, nothing to see", day + 17 * h, "dave", "p4"),
    ]
    csv_posts = [
        Post("Bitcoin dip is scary, bad day", day + 18 * h, "erin"),
        Post("ETH looks weak, I am selling, terrible chart", day + 19 * h, "bob"),  # same text
        Post("Cardano and polkadot holders are happy today", day + 20 * h, "frank"),
        Post("Solana recovers nicely, great job devs", day + 21 * h, "gina"),
    ]
    return SampleDay(
        rss=rss(rss_items),
        atom=atom(atom_items),
        flaky=rss(flaky_items, title="Flaky wire"),
        jsonl=jsonl(posts, garbage=["{not json", "[1, 2]"]),
        csv=csv_export(csv_posts),
        day=day,
        read=6 + 4 + 2 + (4 + 2) + 4,
        kept=(3 + 1) + 3 + 2 + 3 + 3,
        scored=3 + 3 + 2 + 3 + 3,
        non_english=1,
        duplicates=3,
        missing_timestamp=2,
        malformed_rows=2,
        sources_failed=1,
    )


def serve_sample(fake: FakeNews, sample: SampleDay) -> tuple[list[str], list[str]]:
    """Route the sample on ``fake``; the feed URLs (broken one included) and the social URLs."""
    feeds = [
        fake.route("/news/rss.xml", sample.rss, "application/rss+xml"),
        fake.route("/news/atom.xml", sample.atom, "application/atom+xml"),
        fake.route("/news/broken.xml", NOT_A_FEED, "text/html"),
        fake.route("/news/flaky.xml", sample.flaky, "application/rss+xml"),
    ]
    fake.faults["/news/flaky.xml"] = [503, 503]
    social = [
        fake.route("/social/posts.jsonl", sample.jsonl, "application/x-ndjson"),
        fake.route("/social/posts.csv", sample.csv, "text/csv"),
    ]
    return feeds, social


POSITIVE_HEADLINES = (
    "{name} rallies, traders happy with strong gains",
    "{name} surges as buyers return, a great week",
    "Bullish mood: {ticker} climbs and investors cheer",
)
NEGATIVE_HEADLINES = (
    "{name} slumps, traders fear further losses",
    "{name} crash wipes out gains, a bad week",
    "Bearish mood: {ticker} falls and investors panic",
)
NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "BNB": "BNB", "SOL": "Solana"}


def reporter_posts(
    bars: dict[str, Any], *, per_day: int = 4, noise: float = 0.3, seed: int = 0
) -> list[Post]:
    """A SYNTHETIC social feed (author ``SYNTHETIC``): at ``per_day`` UTC hours a day, five
    minutes past the hour, one post per series describing its coin's return over the 24 bars
    that had closed by then (positive words after a rise, negative after a fall; a random tone
    with probability ``noise``). Causal by construction (it reports the past, never the
    future); it carries no information the bars do not already hold."""
    rng = random.Random(seed)
    step = 24 // per_day
    posts = []
    for key in sorted(bars):
        coin = coin_of_series(key)
        if coin is None:
            continue
        df = bars[key]
        times = df.get_column("open_time").to_list()
        close = df.get_column("close").to_list()
        for i in range(25, len(times)):
            t = times[i]  # the bar opening now: bars up to i-1 have closed
            if t.minute or t.hour % step:
                continue
            up = close[i - 1] > close[i - 25]
            if rng.random() < noise:
                up = rng.random() < 0.5
            pool = POSITIVE_HEADLINES if up else NEGATIVE_HEADLINES
            headline = rng.choice(pool).format(name=NAMES.get(coin, coin), ticker=coin)
            text = f"{headline} ({t:%Y-%m-%d %H}:05 UTC)"  # distinct texts: no duplicates
            posts.append(Post(text, t + timedelta(minutes=5), "SYNTHETIC", f"syn-{key}-{i}"))
    return posts
