"""Background jobs are restarted when they crash, reported while down, and stopped on demand."""

import asyncio
from collections.abc import Callable

from helpdesk_runtime.jobs import Job, JobSupervisor


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (the jobs signal nothing else to wait on)
            await asyncio.sleep(0.005)


async def test_a_crashing_job_is_restarted_and_reported_until_it_runs_again() -> None:
    runs = 0
    healthy = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError(f"crash {runs}")
        healthy.set()
        await asyncio.Event().wait()  # runs until cancelled

    supervisor = JobSupervisor([Job("flaky", flaky)], backoff_s=0.01)
    supervisor.start()
    await wait_until(lambda: supervisor.states["flaky"].restarts == 1)
    assert supervisor.health() in (
        {"job:flaky": "restarting after: RuntimeError: crash 1"},
        {"job:flaky": "ok"},  # already running its second attempt
    )
    await asyncio.wait_for(healthy.wait(), 5)
    assert runs == 3
    assert supervisor.states["flaky"].restarts == 2
    assert supervisor.health() == {"job:flaky": "ok"}
    await supervisor.stop()


async def test_a_job_that_returns_is_restarted_too_and_stop_cancels_every_job() -> None:
    returned = 0
    cancelled = asyncio.Event()

    async def quits() -> None:
        nonlocal returned
        returned += 1

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    supervisor = JobSupervisor([Job("quits", quits), Job("forever", forever)], backoff_s=0.001)
    supervisor.start()
    await wait_until(lambda: returned >= 3)
    assert supervisor.states["quits"].last_error == "returned"
    await supervisor.stop()
    assert cancelled.is_set()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("job:")]


def test_the_pause_between_restarts_doubles_up_to_a_ceiling() -> None:
    supervisor = JobSupervisor([], backoff_s=0.5, max_backoff_s=30.0)
    assert [supervisor.pause(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


async def test_stop_lets_a_job_finish_its_pass_and_readiness_shows_what_fails() -> None:
    finishing = asyncio.Event()
    finished = False
    problem: str | None = None

    async def relay_like() -> None:
        nonlocal finished
        await finishing.wait()  # "the current pass": it must not be cut short
        await asyncio.sleep(0)
        finished = True

    job = Job("relay", relay_like, stop=finishing.set, failing=lambda: problem)
    supervisor = JobSupervisor([job])
    supervisor.start()
    await wait_until(lambda: supervisor.states["relay"].running_since is not None)
    assert supervisor.health() == {"job:relay": "ok"}
    problem = "OSError: broker unreachable"
    assert supervisor.health() == {"job:relay": "failing: OSError: broker unreachable"}
    await supervisor.stop(grace_s=5)
    assert finished  # returned on its own, not cancelled
    assert supervisor.states["relay"].restarts == 0  # and was not restarted
