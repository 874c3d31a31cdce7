"""Background jobs: named long-running tasks, restarted with backoff when they crash.

A job is a coroutine that runs until cancelled (the outbox relay, the timer scheduler, a
service's own sweeper). A job that returns or raises is restarted after a growing pause,
so a bug or an outage costs a log line per attempt, not the process; readiness reports a
job that keeps failing. Jobs are the platform's own work: their connections see every
tenant's rows (tenancy.py).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from helpdesk_runtime import tenancy
from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Job:
    """A named coroutine to keep running (`run` is called again after each crash).

    `stop` asks it to finish what it is doing and return (else it is cancelled on
    shutdown); `failing` tells readiness what goes wrong while it keeps running (a job that
    backs off on its own, like the relay in an outage, never crashes).
    """

    name: str
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], None] | None = None
    failing: Callable[[], str | None] | None = None


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
        self._stopping = False
        self.states = {job.name: JobState() for job in self._jobs}

    def start(self) -> None:
        with tenancy.all_tenants():  # each task keeps the scope it is created in
            self._tasks = [
                asyncio.create_task(self._keep_running(job), name=f"job:{job.name}")
                for job in self._jobs
            ]

    async def stop(self, grace_s: float = 5.0) -> None:
        """Ask every job to finish its current pass; cancel what has not after `grace_s`."""
        self._stopping = True
        for job, task in zip(self._jobs, self._tasks, strict=False):  # none if never started
            if job.stop is not None:
                job.stop()
            else:
                task.cancel()  # it cannot be asked: nothing to wait for
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=grace_s)
            for task in late:
                task.cancel()
            for task in self._tasks:
                with suppress(asyncio.CancelledError):
                    await task
        self._tasks = []

    def health(self) -> dict[str, str]:
        """Each job's state: "ok", or what is wrong with it right now."""
        checks = {}
        for job in self._jobs:
            state = self.states[job.name]
            problem = job.failing() if job.failing is not None else None
            if state.running_since is None:
                checks[f"job:{job.name}"] = f"restarting after: {state.last_error}"
            elif problem:
                checks[f"job:{job.name}"] = f"failing: {problem}"
            else:
                checks[f"job:{job.name}"] = "ok"
        return checks

    async def _keep_running(self, job: Job) -> None:
        state = self.states[job.name]
        failures = 0
        while not self._stopping:
            state.running_since = time.monotonic()
            try:
                await job.run()
                if self._stopping:
                    return
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
