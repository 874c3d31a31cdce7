"""What every benchmark does with its figures."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

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
