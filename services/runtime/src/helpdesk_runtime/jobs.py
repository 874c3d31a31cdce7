"""Background jobs: named long-running tasks, restarted with backoff when they crash.

A job is a coroutine that runs until cancelled (the outbox relay, the timer scheduler, a
service's own sweeper). A job that returns or raises is restarted after a growing pause,
so a bug or an outage costs a log line per attempt, not the process; readiness reports a
job that keeps failing.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Job:
    """A named coroutine to keep running (`run` is called again after each crash)."""

    name: str
    run: Callable[[], Awaitable[None]]


@dataclass
class JobState:
    """What readiness and metrics see of one job."""

    restarts: int = 0
    last_error: str | None = None
    running_since: float | None = None


class JobSupervisor:
    """Starts jobs, restarts the ones that end, stops them all on shutdown."""

    def __init__(
        self, jobs: Sequence[Job], *, backoff_s: float = 0.5, max_backoff_s: float = 30.0
    ) -> None:
        self._jobs = list(jobs)
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._tasks: list[asyncio.Task[None]] = []
        self.states = {job.name: JobState() for job in self._jobs}

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep_running(job), name=f"job:{job.name}")
            for job in self._jobs
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def health(self) -> dict[str, str]:
        """Each job's state: "ok", or why it is not running right now."""
        return {
            f"job:{name}": "ok"
            if state.running_since is not None
            else f"restarting after: {state.last_error}"
            for name, state in self.states.items()
        }

    async def _keep_running(self, job: Job) -> None:
        state = self.states[job.name]
        failures = 0
        while True:
            state.running_since = time.monotonic()
            try:
                await job.run()
                state.last_error = "returned"
                log.error("background job returned; restarting it", job=job.name)
            except Exception as exc:
                state.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("background job crashed; restarting it", job=job.name)
            # A job that ran for a while before crashing starts again from the first pause.
            if time.monotonic() - state.running_since > self._max_backoff_s:
                failures = 0
            state.running_since = None
            state.restarts += 1
            failures += 1
            await asyncio.sleep(self.pause(failures))

    def pause(self, failures: int) -> float:
        """Seconds to wait before the next start, after `failures` ends in a row."""
        return float(min(self._backoff_s * 2 ** (failures - 1), self._max_backoff_s))
