"""Serve a small HTTP server in the foreground until Ctrl-C or SIGTERM, then close it."""

from __future__ import annotations

import signal
from typing import Any, Protocol


class Server(Protocol):
    def serve_forever(self) -> None: ...

    def server_close(self) -> None: ...


def serve_in_foreground(server: Server, banner: str) -> None:
    """Print ``banner``, serve until interrupted (SIGTERM counts as Ctrl-C), close the socket,
    and put the previous SIGTERM handler back."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    print(banner, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        signal.signal(signal.SIGTERM, previous)
