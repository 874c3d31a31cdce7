"""Timer rules that need no database: the retry policy and what `schedule` refuses."""

from datetime import UTC, datetime
from typing import Any

import pytest

from helpdesk_runtime.timer_scheduler import RetryPolicy, TimerScheduler
from helpdesk_runtime.timers import MAX_PAYLOAD_BYTES, schedule

_NO_CONNECTION: Any = None  # refused before any statement is sent


def test_retry_delays_double_up_to_the_cap_then_become_rare() -> None:
    policy = RetryPolicy()
    delays = [policy.delay_s(n) for n in range(1, 13)]
    assert delays[:9] == [2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert delays[9:] == [6 * 3600] * 3  # the 10th failure on: kept, tried rarely
    assert 15 * 60 < sum(delays[:9]) < 20 * 60  # the quick tries span a deploy or an outage


def test_retry_delay_is_capped() -> None:
    assert RetryPolicy(base_s=10.0, max_s=60.0, max_attempts=20).delay_s(8) == 60.0


async def test_a_naive_due_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await schedule(_NO_CONNECTION, "k", "1", datetime(2026, 12, 1, 9, 0), {}, "acme")


async def test_a_big_payload_is_refused() -> None:
    payload = {"blob": "x" * MAX_PAYLOAD_BYTES}
    with pytest.raises(ValueError, match="payload over"):
        await schedule(_NO_CONNECTION, "k", "1", datetime.now(UTC), payload, "acme")


async def test_a_payload_must_be_json() -> None:
    with pytest.raises(TypeError):
        await schedule(_NO_CONNECTION, "k", "1", datetime.now(UTC), {"at": datetime.now(UTC)}, "a")


def test_a_scheduler_needs_a_handler_and_a_batch() -> None:
    with pytest.raises(ValueError, match="handler"):
        TimerScheduler(_NO_CONNECTION, {})

    async def handler(conn: Any, timers: Any) -> None:
        return None

    with pytest.raises(ValueError, match="batch_size"):
        TimerScheduler(_NO_CONNECTION, {"k": handler}, batch_size=0)
