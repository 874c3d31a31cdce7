"""What stands between a channel and its providers: a circuit breaker per endpoint and a
rate limit per channel, so a failing provider costs one timeout now and then rather than
one per message, and a busy one is not pushed past what it allows.

An endpoint (an SMTP server, a webhook's host, a messenger's API) whose whole batch failed
for now counts one failure; after `threshold` of them in a row its circuit opens and for
`ttl_s` its messages are not tried at all: they fail as temporary, and so are retried later
with backoff like any other. Other endpoints, channels and tenants go on.
"""

import asyncio
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from aiolimiter import AsyncLimiter
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from helpdesk_runtime.logging import get_logger
from notifications.channels import Failed, Outgoing, Result, Sender
from notifications.domain.retries import Failure

log = get_logger(__name__)


class _EndpointDownError(Exception):
    def __init__(self, results: list[Result]) -> None:
        super().__init__("every message failed for now")
        self.results = results


def host_of(item: Outgoing) -> str:
    """A webhook's endpoint: its scheme, host and port."""
    parts = urlsplit(item.address)
    return f"{parts.scheme}://{parts.netloc}"


class Guarded:
    """A sender behind breakers (one per endpoint) and a rate limit (messages per second)."""

    def __init__(
        self, name: str, sender: Sender, endpoint: Callable[[Outgoing], str], *,
        breakers: AsyncCircuitBreakerFactory, per_second: float | None = None,
    ) -> None:  # fmt: skip
        self._name, self._sender, self._endpoint = name, sender, endpoint
        self._breakers = breakers
        self._limiter = AsyncLimiter(per_second, 1.0) if per_second else None

    async def send_many(self, items: Sequence[Outgoing]) -> list[Result]:
        groups: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(self._endpoint(item), []).append(i)
        results: list[Result | None] = [None] * len(items)
        answers = await asyncio.gather(*(
            self._through(endpoint, [items[i] for i in which])
            for endpoint, which in groups.items()
        ))  # fmt: skip
        for which, answered in zip(groups.values(), answers, strict=True):
            for i, result in zip(which, answered, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    async def _through(self, endpoint: str, items: list[Outgoing]) -> list[Result]:
        try:
            async with await self._breakers.get_breaker(f"{self._name}:{endpoint}"):
                if self._limiter is not None:
                    for _ in items:
                        await self._limiter.acquire()
                results = await self._sender.send_many(items)
                if all(isinstance(r, Failed) and r.failure is Failure.TEMPORARY for r in results):
                    raise _EndpointDownError(results)
                return results
        except OpenedState:
            detail = f"{endpoint} is failing: circuit open, not tried"
            return [Failed(Failure.TEMPORARY, detail) for _ in items]
        except _EndpointDownError as down:
            return down.results
        except Exception as exc:  # a sender's bug must not fail the batch (and resend the rest)
            log.exception("sender failed", channel=self._name, endpoint=endpoint)
            detail = f"{type(exc).__name__}: {exc}"[:500]
            return [Failed(Failure.TEMPORARY, detail) for _ in items]
