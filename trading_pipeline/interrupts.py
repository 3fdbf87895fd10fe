"""Ctrl-C and SIGTERM for long commands that run other code's loops (Dagster in-process runs).

Dagster's in-process execution replaces the SIGINT handler while a run executes, maps SIGTERM
onto it, and turns a signal into a failed step: the caller sees a failed run, not an interrupt,
and after the run SIGTERM stays mapped. :class:`StopSignals` notices every SIGINT/SIGTERM
whatever handler is installed at the time (through ``signal.set_wakeup_fd``, which the
interpreter feeds for any Python-level handler), and :meth:`StopSignals.restore` puts this
process's own handlers back after each run: SIGINT and SIGTERM raise :class:`Stopped` outside
runs, and a child process started afterwards inherits the default dispositions.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType, TracebackType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """The user (Ctrl-C) or a supervisor (SIGTERM) asked the process to stop."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """Within ``with StopSignals() as stop:`` SIGINT/SIGTERM raise :class:`Stopped` (between
    runs) or are recorded (during a run that installed its own handlers): ``stop.pending()``
    then names it. On exit the handlers and wakeup fd in force before are restored."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._seen: int | None = None
        self._old_fd = -1
        self._old: dict[int, object] = {}

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self._seen = signum
        raise Stopped(signum)

    def restore(self) -> None:
        """Install this process's handlers again (after a Dagster run replaced them)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handler)

    def pending(self) -> int | None:
        """The stop signal received since the last call, if any (read from the wakeup fd)."""
        try:
            data = self._reader.recv(4096)
        except (BlockingIOError, InterruptedError):
            data = b""
        for byte in data:
            if byte in (int(s) for s in STOP_SIGNALS):
                self._seen = byte
        return self._seen

    def check(self) -> None:
        """Raise :class:`Stopped` when a stop signal arrived (e.g. while a run held them)."""
        signum = self.pending()
        if signum is not None:
            raise Stopped(signum)

    def __enter__(self) -> StopSignals:
        self._old = {int(sig): signal.getsignal(sig) for sig in STOP_SIGNALS}
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self.restore()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        signal.set_wakeup_fd(self._old_fd)
        for sig, handler in self._old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._reader.close()
        self._writer.close()


def default_handlers() -> None:
    """SIGINT → KeyboardInterrupt, SIGTERM → terminate: what a fresh interpreter has."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


__all__ = ["STOP_SIGNALS", "StopSignals", "Stopped", "default_handlers"]
