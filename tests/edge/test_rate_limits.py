"""Token buckets per callback (edge/rate_limits.py), on a fake clock."""

from __future__ import annotations

import pytest

from edge.rate_limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("per_minute", "steps", "expected"),
    [
        # unlimited: always passes
        (0, [0, 0, 0], [0.0, 0.0, 0.0]),
        # 60/min: a burst of 1, then one a second
        (60, [0, 0, 0.5, 0.5, 1.0], [0.0, 1.0, 0.5, 0.0, 0.0]),
        # 600/min: a burst of 10 passes at once, the 11th waits a tenth of a second
        (600, [0] * 11, [0.0] * 10 + [0.1]),
        # 6/min: one every 10 s
        (6, [0, 5, 5], [0.0, 5.0, 0.0]),
    ],
)
def test_take(per_minute, steps, expected):
    clock = Clock()
    limiter = RateLimiter(clock)
    waits = []
    for step in steps:
        clock.now += step
        waits.append(round(limiter.take("cb", per_minute), 6))
    assert waits == expected


def test_buckets_are_per_callback():
    clock = Clock()
    limiter = RateLimiter(clock)
    assert limiter.take("a", 60) == 0.0
    assert limiter.take("a", 60) > 0
    assert limiter.take("b", 60) == 0.0


def test_max_keys_forgets_every_bucket_instead_of_growing() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, max_keys=3)
    assert [limiter.take(k, 60) for k in ("a", "a", "b", "c")] == [0.0, 1.0, 0.0, 0.0]
    assert limiter.take("d", 60) == 0.0  # a fourth key: the three are forgotten
    assert len(limiter._buckets) == 1
    assert limiter.take("a", 60) == 0.0  # a fresh bucket
