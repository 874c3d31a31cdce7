"""Every metric the dashboard and the alert rules name is on some running service's /metrics.

The unit test (tests/unit/deploy/test_observability.py) reads the services' registries as
built; a job registers a few gauges only when the service runs (SLA's watermark watch), so
here the four services run against the real Kafka and PostgreSQL, one after another, and
what Prometheus would scrape is compared with what the dashboard and the rules read.
"""

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from support import observability as obs
from support.service import (
    RunningService,
    feedback_service,
    free_port,
    notifications_service,
    sla_service,
    ticketing_service,
)


async def _scraped(service: RunningService[Any]) -> set[str]:
    response = await service.client.get("/metrics")
    assert response.status_code == 200
    return {
        name
        for family in text_string_to_metric_families(response.text)
        for name in obs.sample_names(family.name, family.type)
    }


async def _scrape_until(
    running: AbstractAsyncContextManager[RunningService[Any]],
    wanted: set[str],
    timeout_s: float = 30.0,
) -> set[str]:
    """Scrape until the names `wanted` from this service appear (a job registers them on its
    first run, just after start-up), or give back what is there when time is up."""
    async with running as service:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            names = await _scraped(service)
            if wanted <= names or asyncio.get_running_loop().time() > deadline:
                return names
            await asyncio.sleep(0.2)


async def test_every_metric_named_is_on_a_running_service(
    database_url: str,
    sla_database_url: str,
    notifications_database_url: str,
    feedback_database_url: str,
    kafka_bootstrap: str,
) -> None:
    at_start = {name for name, service in obs.REGISTERED_AT_START.items() if service == "sla"}
    runs: list[tuple[str, AbstractAsyncContextManager[RunningService[Any]], set[str]]] = [
        ("ticketing", ticketing_service(database_url, kafka_bootstrap), set()),
        ("sla", sla_service(sla_database_url, kafka_bootstrap), at_start),
        ("notifications",
         notifications_service(notifications_database_url, kafka_bootstrap, free_port()), set()),
        ("feedback", feedback_service(feedback_database_url, kafka_bootstrap), set()),
    ]  # fmt: skip
    exported: dict[str, set[str]] = {}
    for service, running, wanted in runs:  # one after another: a 2-core machine
        for name in await _scrape_until(running, wanted):
            exported.setdefault(name, set()).add(service)
    used = obs.named_metrics()
    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in exported and name not in obs.EXTERNAL
    }
    assert not missing, f"named but on no running service's /metrics: {missing}"
    for name, service in obs.REGISTERED_AT_START.items():
        assert service in exported[name], name
