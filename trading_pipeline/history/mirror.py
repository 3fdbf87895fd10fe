"""A Binance Vision mirror: serves a folder laid out like data.binance.vision, and its S3 listing.

* ``GET /data/...`` serves files (HEAD, ``Range``, ``ETag`` = md5 of the bytes as S3 does,
  ``Last-Modified``).
* ``GET /?delimiter=/&prefix=...&marker=...`` (any path outside ``/data/``) answers with a
  ListObjects v1 ``ListBucketResult``, ``page_size`` entries a page. So the mirror's base URL
  is both the vision URL and the listing URL.
* ``Faults`` injects failures for tests: truncated bodies, connection resets, HTTP errors for
  the first N requests of a path, a missing or wrong ``.CHECKSUM``, slow responses.

Binds 127.0.0.1 by default.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

FAULT_KINDS = ("truncate", "reset", "status", "missing", "wrong_checksum", "slow")


@dataclass
class Fault:
    """One injected failure for requests whose path (no leading ``/``) matches ``match``.

    ``times`` is how many matching requests it affects (``None``: all of them); ``status`` is
    the HTTP code of a ``status`` fault; ``delay`` the pause between 1 KiB chunks of ``slow``.
    """

    kind: str
    match: str = "*"
    times: int | None = None
    status: int = 503
    delay: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}: use one of {', '.join(FAULT_KINDS)}")

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``KIND[:GLOB[:TIMES[:ARG]]]``; ARG is the status code or the slow delay."""
        kind, glob, times, arg = ([*spec.split(":"), "", "", ""])[:4]
        fault = cls(kind, glob or "*", int(times) if times else None)
        if arg and kind == "status":
            fault.status = int(arg)
        elif arg and kind == "slow":
            fault.delay = float(arg)
        return fault


@dataclass
class Faults:
    """The faults in force, and a log of the requests served (thread-safe)."""

    active: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, range)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, match: str = "*", times: int | None = None, **kw: float) -> Fault:
        fault = Fault(kind, match, times, **kw)  # type: ignore[arg-type]
        with self._lock:
            self.active.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.active.clear()
            self.requests.clear()

    def take(self, method: str, path: str, range_header: str) -> list[Fault]:
        """Log a request and return (consuming one use of) each fault that applies to it."""
        with self._lock:
            self.requests.append((method, path, range_header))
            hits = []
            for fault in self.active:
                if fault.times == 0 or not fnmatch.fnmatchcase(path, fault.match):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                hits.append(fault)
            return hits

    def count(self, pattern: str = "*.zip", method: str = "GET") -> int:
        """How many requests for paths matching ``pattern`` were served."""
        with self._lock:
            return sum(
                1 for m, p, _ in self.requests if m == method and fnmatch.fnmatchcase(p, pattern)
            )


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

    def __init__(self, root: Path, host: str, port: int, page_size: int, faults: Faults) -> None:
        self.root = Path(root).resolve()
        self.page_size = page_size
        self.faults = faults
        self.cache = _Cache()
        super().__init__((host, port), _Handler)

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


class _Handler(BaseHTTPRequestHandler):
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
        hits = self.server.faults.take(self.command, path, self.headers.get("Range", ""))
        kinds = {f.kind: f for f in hits}
        if "status" in kinds:
            return self._error(kinds["status"].status)
        if "reset" in kinds:
            return self._reset()
        if path.startswith("data/"):
            return self._file(path, kinds, head=head)
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

    def _reset(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    def _file(self, path: str, kinds: dict[str, Fault], *, head: bool) -> None:
        target = (self.server.root / path).resolve()
        if not target.is_relative_to(self.server.root) or not target.is_file():
            return self._error(404)
        if path.endswith(".CHECKSUM") and "missing" in kinds:
            return self._error(404)
        data = target.read_bytes()
        if path.endswith(".CHECKSUM") and "wrong_checksum" in kinds:
            data = hashlib.sha256(b"not the file").hexdigest().encode() + data[64:]
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
        if head:
            return
        if "truncate" in kinds:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            return self._reset()
        delay = kinds["slow"].delay if "slow" in kinds else 0.0
        step = 1024 if delay else len(body) or 1
        for i in range(0, len(body), step):
            self.wfile.write(body[i : i + step])
            if delay:
                self.wfile.flush()
                time.sleep(delay)

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
def running_mirror(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    page_size: int = 1000,
    faults: Faults | None = None,
) -> Iterator[MirrorServer]:
    """Serve ``root`` in a background thread for the duration of the ``with`` block."""
    server = MirrorServer(root, host, port, page_size, faults or Faults())
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    page_size: int = 1000,
    faults: Faults | None = None,
    ready: threading.Event | None = None,
) -> None:
    """Serve ``root`` in the foreground until interrupted."""
    server = MirrorServer(root, host, port, page_size, faults or Faults())
    print(f"serving {server.root} at {server.url} (listing at {server.url}/?prefix=…)", flush=True)
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
