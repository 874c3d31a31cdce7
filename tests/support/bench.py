"""What every benchmark does with its figures."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from support.chaos import ServiceProcess
from support.fixtures import group_settled
from support.servers import REPO


def record(name: str, figures: dict[str, object]) -> None:
    """Keep a run's figures as JSON under .local/bench/, so later runs can be compared."""
    folder = REPO / ".local" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (folder / f"{name}-{stamp}.json").write_text(json.dumps(figures, indent=2))


async def until(read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool]) -> None:
    """Until `done(await read())`: what is waited for happens in the database or on the
    broker, so there is nothing to await but time."""
    while not done(await read()):  # noqa: ASYNC110
        await asyncio.sleep(0.02)


@asynccontextmanager
async def service_processes(
    module: str, count: int, database_url: str, kafka_bootstrap: str, env: dict[str, str],
    name: str, *, group: str | None = None, ready_s: float = 120,
) -> AsyncIterator[list[int]]:  # fmt: skip
    """`count` processes of a service (`python -m <module>` with `env`), ready (and settled
    in `group`, if given: every member has its partitions); their pids, stopped at the end.
    Logs under .local/bench/<name>-<i>.log."""
    logs = REPO / ".local" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    processes = [
        ServiceProcess(database_url, kafka_bootstrap, logs / f"{name}-{i}.log", env=env,
                       module=module)
        for i in range(count)
    ]  # fmt: skip
    for process in processes:
        process.start()
    try:
        for process in processes:
            await process.wait_ready(ready_s)
        if group is not None:
            await group_settled(kafka_bootstrap, group, count)
        yield [p.process.pid for p in processes if p.process is not None]
    finally:
        for process in processes:
            process.stop()
