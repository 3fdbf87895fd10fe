"""Clocks for the runners: the wall clock for a live process, a replay clock for history.

The runner never calls ``time`` itself; it asks its clock what time it is and to wait for the
next bar. The replay clock jumps straight to the requested time, so a replay over a month of
hourly bars runs the same runner code as a live bot without waiting a month.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


def to_ms(t: datetime) -> int:
    """Milliseconds since the epoch of an aware (or UTC-naive) datetime."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return round(t.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Clock(Protocol):
    """What time it is (ms since the epoch, UTC) and a way to wait until a later time."""

    def now_ms(self) -> int: ...

    def sleep_until(self, ms: int) -> bool:
        """Wait until ``ms``; False when the clock has run out (a replay reached its end)."""
        ...


class WallClock:
    """The real time; ``sleep_until`` sleeps in short slices and gives up (False) as soon as
    ``stop()`` says so, so SIGTERM ends a bot within seconds, between steps."""

    def __init__(self, *, max_sleep_s: float = 1.0, stop: Callable[[], bool] | None = None) -> None:
        self.max_sleep_s = max_sleep_s
        self.stop = stop or (lambda: False)

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def sleep_until(self, ms: int) -> bool:
        while (left := ms - self.now_ms()) > 0:
            if self.stop():
                return False
            time.sleep(min(left / 1000, self.max_sleep_s))
        return not self.stop()


class ReplayClock:
    """Time that moves only when asked to, from ``start_ms`` up to ``end_ms`` inclusive."""

    def __init__(self, start_ms: int, end_ms: int) -> None:
        if end_ms < start_ms:
            raise ValueError("replay clock ends before it starts")
        self._now = start_ms
        self.end_ms = end_ms

    def now_ms(self) -> int:
        return self._now

    def sleep_until(self, ms: int) -> bool:
        if ms > self.end_ms:
            self._now = self.end_ms
            return False
        self._now = max(self._now, ms)
        return True
