"""A Binance Vision mirror: serves a folder laid out like data.binance.vision, and its S3 listing.

* ``GET /data/...`` serves files (HEAD, ``Range``, ``ETag`` = md5 of the bytes as S3 does,
  ``Last-Modified``).
* ``GET /?delimiter=/&prefix=...&marker=...`` (any path outside ``/data/``) answers with a
  ListObjects v1 ``ListBucketResult``, ``page_size`` entries a page. So the mirror's base URL
  is both the vision URL and the listing URL.

The handler's ``_intercept``/``_body``/``_write`` are the seams a test double overrides to
inject failures (the test kit's ``trading_pipeline_tests.fakes.faults``). Binds 127.0.0.1 by
default.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

S = TypeVar("S", bound="MirrorServer")


class _Cache:
    """md5 ETags keyed by (path, mtime_ns, size) so a listing does not re-hash unchanged files."""

    def __init__(self) -> None:
        self._etags: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def etag(self, path: Path, stat: os.stat_result) -> str:
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._etags:
                return self._etags[key]
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        with self._lock:
            self._etags[key] = digest
        return digest


class MirrorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        root: Path,
        host: str,
        port: int,
        page_size: int,
        handler: type[MirrorHandler] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.page_size = page_size
        self.cache = _Cache()
        super().__init__((host, port), handler or MirrorHandler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-response (a killed fetch, a reset) is normal, not an error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class MirrorHandler(BaseHTTPRequestHandler):
    """Files under ``/data/`` and the S3 listing elsewhere."""

    server: MirrorServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # quiet by default
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path).lstrip("/")
        if self._intercept(path):
            return None
        if path.startswith("data/"):
            return self._file(path, head=head)
        query = parse_qs(parts.query, keep_blank_values=True)
        if "prefix" in query or not path or path == "data.binance.vision":
            return self._listing(query)
        return self._error(404)

    def _error(self, status: int) -> None:
        body = f"<Error><Code>{status}</Code></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _intercept(self, path: str) -> bool:
        """Answer the request some other way (and return True); the mirror itself never does."""
        return False

    def _body(self, path: str, target: Path) -> bytes | None:
        """The bytes served for ``target`` (``None``: answer 404)."""
        return target.read_bytes()

    def _write(self, body: bytes) -> None:
        """Send the (possibly ranged) body after the headers."""
        self.wfile.write(body)

    def _file(self, path: str, *, head: bool) -> None:
        target = (self.server.root / path).resolve()
        if not target.is_relative_to(self.server.root) or not target.is_file():
            return self._error(404)
        data = self._body(path, target)
        if data is None:
            return self._error(404)
        stat = target.stat()
        start, end, status = 0, len(data), 200
        spec = self.headers.get("Range", "")
        if spec.startswith("bytes=") and "-" in spec:
            first, _, last = spec[6:].partition("-")
            start = int(first or 0)
            end = min(int(last) + 1, len(data)) if last else len(data)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:end]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{self.server.cache.etag(target, stat)}"')
        self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if not head:
            self._write(body)
        return None

    def _entries(self, prefix: str, delimiter: str) -> Iterator[tuple[str, Path | None]]:
        """(key, file) for objects and (common prefix, None) for folders, under ``prefix``."""
        folder, _, start = prefix.rpartition("/")
        base = self.server.root / folder if folder else self.server.root
        if not base.is_dir() or not base.resolve().is_relative_to(self.server.root):
            return
        rel = f"{folder}/" if folder else ""
        if delimiter == "/":
            for entry in os.scandir(base):
                if entry.name.startswith(start) and not entry.name.endswith(".part"):
                    if entry.is_dir():
                        yield f"{rel}{entry.name}/", None
                    else:
                        yield f"{rel}{entry.name}", Path(entry.path)
            return
        for dirpath, _, names in os.walk(base):
            for name in names:
                full = Path(dirpath) / name
                key = full.relative_to(self.server.root).as_posix()
                if key.startswith(prefix):
                    yield key, full

    def _listing(self, query: dict[str, list[str]]) -> None:
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        marker = query.get("marker", [""])[0]
        page_size = min(self.server.page_size, int(query.get("max-keys", ["1000"])[0] or 1000))
        entries = sorted(e for e in self._entries(prefix, delimiter) if e[0] > marker)
        page, truncated = entries[:page_size], len(entries) > page_size
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
            f"<Name>data.binance.vision</Name><Prefix>{escape(prefix)}</Prefix>",
            f"<Marker>{escape(marker)}</Marker><MaxKeys>{page_size}</MaxKeys>",
        ]
        if delimiter:
            out.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
        out.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if truncated and delimiter:
            out.append(f"<NextMarker>{escape(page[-1][0])}</NextMarker>")
        for key, file in page:
            if file is None:
                out.append(f"<CommonPrefixes><Prefix>{escape(key)}</Prefix></CommonPrefixes>")
                continue
            stat = file.stat()
            out.append(
                f"<Contents><Key>{escape(key)}</Key><LastModified>{_iso(stat.st_mtime)}"
                f"</LastModified><ETag>&quot;{self.server.cache.etag(file, stat)}&quot;</ETag>"
                f"<Size>{stat.st_size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        out.append("</ListBucketResult>")
        body = "".join(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@contextlib.contextmanager
def serving(server: S) -> Iterator[S]:
    """Run ``server`` in a background thread for the duration of the ``with`` block."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def running_mirror(
    root: Path, *, host: str = "127.0.0.1", port: int = 0, page_size: int = 1000
) -> Iterator[MirrorServer]:
    """Serve ``root`` in a background thread for the duration of the ``with`` block."""
    with serving(MirrorServer(root, host, port, page_size)) as server:
        yield server


def serve(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    page_size: int = 1000,
    ready: threading.Event | None = None,
) -> None:
    """Serve ``root`` in the foreground until interrupted."""
    server = MirrorServer(root, host, port, page_size)
    print(f"serving {server.root} at {server.url} (listing at {server.url}/?prefix=…)", flush=True)
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
