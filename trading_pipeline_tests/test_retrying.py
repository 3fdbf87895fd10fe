"""The one retry policy: bounded attempts, backoff with jitter, Retry-After honoured."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from trading_pipeline.retrying import GaveUp, RetryPolicy, parse_retry_after, retry_after_from


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


def policy(waits: list[float], **kw: float) -> RetryPolicy:
    return RetryPolicy(sleep=waits.append, rng=random.Random(7), **kw)  # type: ignore[arg-type]


def failing(times: int, exc: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "done"

    return calls, fn


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    waits: list[float] = []
    calls, fn = failing(4, Flaky())
    p = policy(waits, attempts=5, base_s=0.5, max_s=2.0, jitter_s=0.3)
    assert p.call("x", fn, on=lambda e: isinstance(e, Flaky)) == "done"  # type: ignore[arg-type]
    assert len(calls) == 5 and len(waits) == 4
    for wait, base in zip(waits, (0.5, 1.0, 2.0, 2.0), strict=True):
        assert base <= wait <= base + 0.3
    assert len(set(waits)) == 4  # jittered: no two retries wait exactly alike


def test_retry_after_overrides_the_backoff_and_is_capped() -> None:
    waits: list[float] = []
    _, fn = failing(2, Flaky(retry_after=30.0))
    p = policy(waits, attempts=3, retry_after_cap_s=20.0)
    hint = lambda e: getattr(e, "retry_after", None)  # noqa: E731
    assert p.call("x", fn, on=lambda e: isinstance(e, Flaky), hint=hint) == "done"  # type: ignore[arg-type]
    assert waits == [20.0, 20.0]


def test_other_errors_pass_straight_through_without_a_retry() -> None:
    waits: list[float] = []
    calls, fn = failing(1, KeyError("final"))
    with pytest.raises(KeyError):
        policy(waits).call("x", fn, on=lambda e: isinstance(e, Flaky))  # type: ignore[arg-type]
    assert len(calls) == 1 and waits == []


def test_gives_up_after_the_attempts_naming_the_last_error() -> None:
    waits: list[float] = []
    seen: list[tuple[int, float]] = []
    calls, fn = failing(99, Flaky())
    with pytest.raises(GaveUp, match=r"^fetch x: gave up after 3 attempts \(flaky\)$") as info:
        policy(waits, attempts=3).call(
            "fetch x",
            fn,  # type: ignore[arg-type]
            on=lambda e: isinstance(e, Flaky),
            before_retry=lambda e, n, w: seen.append((n, w)),
        )
    assert len(calls) == 3 and isinstance(info.value.last, Flaky)
    assert [n for n, _ in seen] == [1, 2] and [w for _, w in seen] == waits


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), (" 0 ", 0.0), ("-3", 0.0), ("Wed, 02 Dec 2026 12:00:30 GMT", 30.0),
     ("soon", None), ("", None), (None, None)],
)  # fmt: skip
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


def test_retry_after_header_in_any_case() -> None:
    assert retry_after_from({"retry-after": "2"}) == 2.0
    assert retry_after_from({"Retry-After": "5"}) == 5.0
    assert retry_after_from({"Content-Type": "x"}) is None and retry_after_from(None) is None


def test_a_policy_with_no_attempts_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)
