"""One runner per bot and mode: an OS lock (``flock``) on ``<bots>/<bot>/<mode>/runner.lock``.

The lock is held for the runner's whole life and checked before every order is submitted, so two
processes can never send orders for the same bot and mode (two ``bot run --live`` for one bot
would otherwise both look a client id up before either created it and fill every order twice).
The kernel releases a ``flock`` when its process dies, so a SIGKILLed runner never leaves a stale
lock behind; the pid written inside is only for the error message.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from trading_pipeline.errors import UserInputError

LOCK_NAME = "runner.lock"


class RunnerBusy(UserInputError):
    """Another process already runs this bot in this mode."""


class RunnerLock:
    """An exclusive, non-blocking ``flock`` held until :meth:`release` or process exit."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @classmethod
    def acquire(cls, folder: str | Path, *, what: str) -> RunnerLock:
        """Lock ``folder/runner.lock`` or raise :class:`RunnerBusy` naming the holder's pid."""
        lock = cls(Path(folder) / LOCK_NAME)
        lock.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = lock.path.read_text().strip() or "?"
            raise RunnerBusy(
                f"{what} is already running (pid {holder}, lock {lock.path}); "
                "stop it first: one runner per bot and mode"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        lock._fd = fd
        return lock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:  # a dropped runner gives its bot back
        self.release()
