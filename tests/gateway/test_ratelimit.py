"""Send limit, identify buckets and backoff with a fake clock (no real time passes)."""
from __future__ import annotations

import pytest

from gateway import Backoff, IdentifyLimiter, SendLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.now += dt


async def test_send_limit_120_per_60s_keeps_room_for_heartbeats():
    clock = FakeClock()
    lim = SendLimiter(120, 60.0, reserved=10, clock=clock, sleep=clock.sleep)
    for _ in range(110):
        await lim.acquire()
    assert clock.now == 0.0 and lim.used == 110
    # heartbeats (priority) still fit without waiting: 10 reserved
    for _ in range(10):
        lim.acquire_priority()
    assert lim.used == 120 and clock.now == 0.0
    # the next ordinary payload must wait for the window: never more than 120 in 60 s
    await lim.acquire()
    assert clock.now == pytest.approx(60.0)
    assert lim.used <= 120


async def test_send_limit_sliding_window_never_exceeded():
    clock = FakeClock()
    lim = SendLimiter(120, 60.0, reserved=10, clock=clock, sleep=clock.sleep)
    times = []
    for i in range(400):
        await lim.acquire()
        times.append(clock.now)
        if i % 7 == 0:
            clock.now += 0.5
    # any 60 s window holds at most 110 ordinary payloads
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - 60.0:
            j += 1
        assert i - j + 1 <= 110


async def test_send_limit_reset_per_connection():
    clock = FakeClock()
    lim = SendLimiter(5, 60.0, reserved=1, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        await lim.acquire()
    lim.reset()
    await lim.acquire()
    assert clock.now == 0.0


def test_send_limit_validates_reserved():
    with pytest.raises(ValueError):
        SendLimiter(10, 60.0, reserved=10)


async def test_identify_buckets_by_shard_id_mod_max_concurrency():
    clock = FakeClock()
    lim = IdentifyLimiter(max_concurrency=2, period=5.0, clock=clock, sleep=clock.sleep)
    for shard_id in range(6):
        await lim.acquire(shard_id)
    grants = [(t, bucket, sid) for t, bucket, sid in lim.log]
    assert [b for _, b, _ in grants] == [0, 1, 0, 1, 0, 1]
    by_bucket: dict[int, list[float]] = {}
    for t, b, _ in grants:
        by_bucket.setdefault(b, []).append(t)
    for ts in by_bucket.values():  # one identify per bucket per 5 s
        assert all(b - a >= 5.0 for a, b in zip(ts, ts[1:]))
    # two buckets identify concurrently: shards 0 and 1 both at t=0
    assert grants[0][0] == grants[1][0] == 0.0


async def test_identify_single_bucket_spacing():
    clock = FakeClock()
    lim = IdentifyLimiter(1, 5.0, clock=clock, sleep=clock.sleep)
    await lim.acquire(0)
    clock.now = 2.0
    await lim.acquire(3)
    assert clock.now == pytest.approx(5.0)
    assert lim.bucket(7) == 0


def test_backoff_exponential_jitter_cap_and_reset():
    draws = iter([1.0] * 20)
    b = Backoff(base=1.0, cap=8.0, rng=lambda: next(draws))
    delays = [b.next_delay() for _ in range(7)]
    assert delays[0] == 0.0  # first reconnect after a stable connection is immediate
    assert delays[1:] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # doubling, capped
    b.reset()
    assert b.next_delay() == 0.0
    low = Backoff(base=1.0, cap=8.0, rng=lambda: 0.0)
    low.next_delay()
    assert low.next_delay() == 0.5  # jitter never goes below base / 2
    mid = Backoff(base=1.0, cap=8.0, rng=lambda: 0.75)
    [mid.next_delay() for _ in range(3)]
    assert mid.next_delay() == pytest.approx(3.0)  # 4 * 0.75


def test_shard_default_send_limit():
    from gateway import Shard
    lim = Shard("t").send_limiter
    assert (lim.limit, lim.reserved) == (120, 10) and 60.0 <= lim.per <= 62.0
