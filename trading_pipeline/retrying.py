"""The one retry policy: bounded attempts, exponential backoff with jitter, and a server's
``Retry-After`` honoured, on tenacity (a maintained library) instead of hand-written loops.

Every network path uses it: the Binance Vision download and its ``.CHECKSUM``, the S3 listing,
venue history through ccxt and the live broker. The caller says what is worth another attempt
(``on``) and, optionally, where a server's own wait hint is (``hint``: seconds, from a
``Retry-After`` header); when the attempts are spent, :class:`GaveUp` carries the last error so
each caller can word its own one-line failure.

``sleep`` is injectable so tests record the waits instead of sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import tenacity

T = TypeVar("T")


class GaveUp(Exception):
    """Every attempt failed; ``last`` is the final error, ``attempts`` how many were made."""

    def __init__(self, what: str, attempts: int, last: BaseException) -> None:
        super().__init__(f"{what}: gave up after {attempts} attempts ({last})")
        self.what = what
        self.attempts = attempts
        self.last = last


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date; ``None``
    when absent or unreadable (the policy's own backoff then applies)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after_from(headers: Mapping[str, Any] | None) -> float | None:
    """``Retry-After`` from a header mapping, any capitalisation."""
    if not headers:
        return None
    for key, value in headers.items():
        if str(key).lower() == "retry-after":
            return parse_retry_after(str(value))
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; before retry ``n`` (0-based) wait
    ``min(max_s, base_s * 2**n)`` plus up to ``jitter_s`` of random jitter, unless the server
    asked for a wait (``Retry-After``), which is honoured up to ``retry_after_cap_s``."""

    attempts: int = 5
    base_s: float = 0.25
    max_s: float = 8.0
    jitter_s: float = 0.25
    retry_after_cap_s: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry attempts must be at least 1, got {self.attempts}")
        if min(self.base_s, self.max_s, self.jitter_s, self.retry_after_cap_s) < 0:
            raise ValueError("retry waits must not be negative")

    def delay(self, retry: int) -> float:
        """The backoff before retry number ``retry`` (0 for the first), without jitter."""
        return float(min(self.max_s, self.base_s * 2**retry))

    def wait_for(self, retry: int, hinted: float | None = None) -> float:
        """The wait before retry ``retry``: the server's hint (capped) or backoff + jitter."""
        if hinted is not None:
            return float(min(hinted, self.retry_after_cap_s))
        jitter = self.rng.uniform(0.0, self.jitter_s) if self.jitter_s else 0.0
        return self.delay(retry) + jitter

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        on: Callable[[BaseException], bool],
        hint: Callable[[BaseException], float | None] | None = None,
        before_retry: Callable[[BaseException, int, float], None] | None = None,
    ) -> T:
        """``fn()`` until it returns, retrying the errors ``on`` accepts; any other error passes
        straight through. ``before_retry(error, retry_number, wait)`` runs before each wait
        (to log it, or to look up whether a request already landed). Raises :class:`GaveUp`
        when every attempt failed."""

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hinted = hint(exc) if (hint is not None and exc is not None) else None
            return self.wait_for(state.attempt_number - 1, hinted)

        def announce(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if before_retry is not None and exc is not None:
                slept = state.next_action.sleep if state.next_action else 0.0
                before_retry(exc, state.attempt_number, slept)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(on),
            sleep=self.sleep,
            before_sleep=announce,
            reraise=True,
        )
        try:
            return retrying(fn)
        except BaseException as exc:
            if on(exc) and retrying.statistics.get("attempt_number", 0) >= self.attempts:
                raise GaveUp(what, self.attempts, exc) from exc
            raise
