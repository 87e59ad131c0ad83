"""Wrong API keys are throttled per client address (issue 12): a key cannot be guessed at
fifty tries a second."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from lodestone.gateway.auth import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _blocked(throttle: Throttle, address: str) -> HTTPException | None:
    try:
        throttle.refuse_if_blocked(address)
    except HTTPException as refused:
        return refused
    return None


def test_an_address_past_its_limit_is_refused_with_429_and_retry_after() -> None:
    clock = Clock()
    throttle = Throttle(3, window=60, clock=clock)
    for _ in range(3):
        throttle.failed("10.0.0.1")

    refused = _blocked(throttle, "10.0.0.1")

    assert refused is not None and refused.status_code == 429
    assert refused.headers == {"Retry-After": "60"}


def test_an_address_under_its_limit_is_let_through() -> None:
    throttle = Throttle(3, clock=Clock())
    throttle.failed("10.0.0.1")
    throttle.failed("10.0.0.1")

    assert _blocked(throttle, "10.0.0.1") is None


def test_failures_leave_the_window_and_the_address_is_let_through_again() -> None:
    clock = Clock()
    throttle = Throttle(2, window=60, clock=clock)
    throttle.failed("10.0.0.1")
    clock.now += 30
    throttle.failed("10.0.0.1")
    assert _blocked(throttle, "10.0.0.1") is not None

    clock.now += 31  # the first failure is now older than the window

    assert _blocked(throttle, "10.0.0.1") is None


def test_one_address_blocked_leaves_another_alone() -> None:
    throttle = Throttle(1, clock=Clock())
    throttle.failed("10.0.0.1")

    assert _blocked(throttle, "10.0.0.2") is None


def test_tracked_addresses_are_bounded_forgetting_the_least_recent() -> None:
    throttle = Throttle(1, addresses=2, clock=Clock())
    for address in ("a", "b", "c"):
        throttle.failed(address)

    assert [_blocked(throttle, a) is None for a in ("a", "b", "c")] == [True, False, False]


@pytest.mark.parametrize("limit", [1, 5])
def test_retry_after_counts_from_the_oldest_failure(limit: int) -> None:
    clock = Clock()
    throttle = Throttle(limit, window=60, clock=clock)
    throttle.failed("x")
    clock.now += 10
    for _ in range(limit - 1):
        throttle.failed("x")

    refused = _blocked(throttle, "x")

    assert refused is not None and refused.headers == {"Retry-After": "50"}
