"""Helpers for tests that start a real server process: a free port, whether it was released,
and which processes are still alive (found by an environment entry they all inherit)."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """Nothing listens on the port (SO_REUSEADDR: closed connections in TIME_WAIT don't count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def processes_with(needle: bytes) -> list[int]:
    """PIDs whose environment holds the entry ``needle`` (e.g. ``b"DAGSTER_HOME=/tmp/x"``)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found
