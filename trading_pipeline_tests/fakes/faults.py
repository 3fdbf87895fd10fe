"""Fault injection for the Binance Vision mirror: truncated bodies, connection resets, HTTP errors
for the first N requests of a path, a missing or wrong ``.CHECKSUM``, slow responses.

:class:`FaultyMirror` is the package's :class:`~trading_pipeline.history.mirror.MirrorServer`
with a :class:`Faults` register (which also logs every request served); :func:`faulty_mirror`
runs one in a background thread.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trading_pipeline.history.mirror import MirrorHandler, MirrorServer, serving

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


class _FaultyHandler(MirrorHandler):
    server: FaultyMirror
    kinds: dict[str, Fault]

    def _intercept(self, path: str) -> bool:
        hits = self.server.faults.take(self.command, path, self.headers.get("Range", ""))
        self.kinds = {f.kind: f for f in hits}
        if "status" in self.kinds:
            self._error(self.kinds["status"].status)
            return True
        if "reset" in self.kinds:
            self._reset()
            return True
        return False

    def _body(self, path: str, target: Path) -> bytes | None:
        if path.endswith(".CHECKSUM") and "missing" in self.kinds:
            return None
        data = target.read_bytes()
        if path.endswith(".CHECKSUM") and "wrong_checksum" in self.kinds:
            data = hashlib.sha256(b"not the file").hexdigest().encode() + data[64:]
        return data

    def _write(self, body: bytes) -> None:
        if "truncate" in self.kinds:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            return self._reset()
        delay = self.kinds["slow"].delay if "slow" in self.kinds else 0.0
        step = 1024 if delay else len(body) or 1
        for i in range(0, len(body), step):
            self.wfile.write(body[i : i + step])
            if delay:
                self.wfile.flush()
                time.sleep(delay)
        return None

    def _reset(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()


class FaultyMirror(MirrorServer):
    """The mirror, answering abnormally where ``faults`` says so."""

    def __init__(
        self, root: Path, host: str, port: int, page_size: int, faults: Faults | None = None
    ) -> None:
        self.faults = faults or Faults()
        super().__init__(root, host, port, page_size, handler=_FaultyHandler)


@contextlib.contextmanager
def faulty_mirror(
    root: Path, *, page_size: int = 1000, faults: Faults | None = None
) -> Iterator[FaultyMirror]:
    """Serve ``root`` on 127.0.0.1 (an ephemeral port) for the duration of the ``with`` block."""
    with serving(FaultyMirror(root, "127.0.0.1", 0, page_size, faults)) as server:
        yield server
