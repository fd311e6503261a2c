"""`RetryPolicy.delay`: exponential backoff, capped at 6 h, with a jitter of 50-100 %. Pure."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from worker.delivery import RetryPolicy

POLICY = RetryPolicy()
attempts = st.integers(min_value=1, max_value=60)
seeds = st.integers(min_value=0, max_value=10**9)


def base(attempt: int) -> float:
    """The delay before jitter, as the rule states it: base·2^(n-1), at most the cap."""
    return min(POLICY.base_seconds * 2 ** (attempt - 1), POLICY.max_delay_seconds)


@given(attempts, seeds)
def test_the_delay_is_never_over_six_hours(attempt: int, seed: int) -> None:
    assert POLICY.delay(attempt, seed) <= dt.timedelta(hours=6)


@given(attempts, seeds)
def test_the_jitter_keeps_the_delay_within_half_and_all_of_the_base(
    attempt: int, seed: int
) -> None:
    seconds = POLICY.delay(attempt, seed).total_seconds()
    assert 0.5 * base(attempt) <= seconds <= base(attempt)


@given(attempts, seeds)
def test_the_same_attempt_of_the_same_row_waits_the_same_time(attempt: int, seed: int) -> None:
    assert POLICY.delay(attempt, seed) == POLICY.delay(attempt, seed)


@given(st.integers(min_value=1, max_value=8), seeds, seeds)
def test_below_the_cap_a_later_attempt_never_waits_less(attempt: int, a: int, b: int) -> None:
    # The base doubles and the jitter at most halves it, so until the cap the delays never
    # shrink from one attempt to the next, whatever the seeds.
    assert POLICY.delay(attempt + 1, a) >= POLICY.delay(attempt, b)


def test_the_first_attempts_double_from_one_minute() -> None:
    # Jitter at most halves: a delay over the previous base shows it doubled.
    assert dt.timedelta(seconds=30) <= POLICY.delay(1, 1) <= dt.timedelta(seconds=60)
    assert dt.timedelta(seconds=60) <= POLICY.delay(2, 1) <= dt.timedelta(seconds=120)
    assert dt.timedelta(seconds=120) <= POLICY.delay(3, 1) <= dt.timedelta(seconds=240)


def test_the_cap_is_reached_and_held() -> None:
    capped = [POLICY.delay(n, 3) for n in range(10, 20)]
    assert all(dt.timedelta(hours=3) <= d <= dt.timedelta(hours=6) for d in capped)
