"""Agents opening tickets over HTTP: throughput and latency through the real service.

Runs the ticketing service (uvicorn, in this process) and opens BENCH_REQUESTS tickets
(default 2,000) from BENCH_CONCURRENCY (default 20) concurrent clients. Figures are printed.
"""

import asyncio
import os
import statistics
import time

import pytest

from support.service import ticketing_service

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "20"))
BODY = {
    "subject": "Invoice shows the wrong amount",
    "description": "Charged twice for November.",
    "requester": {"customer_id": "c-1042", "name": "Anna Petrova", "email": "anna@example.com"},
    "priority": "high",
    "tags": ["billing"],
}


@pytest.mark.benchmark
async def test_agents_open_tickets_over_http(database_url: str, kafka_bootstrap: str) -> None:
    latencies: list[float] = []
    async with ticketing_service(database_url, kafka_bootstrap) as service:
        queue = iter(range(REQUESTS))

        async def agent(n: int) -> None:
            headers = service.auth(tenant=f"bench{n % 5}", agent=f"agent-{n}")
            for _ in queue:
                started = time.perf_counter()
                response = await service.client.post("/v1/tickets", json=BODY, headers=headers)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 201

        started, cpu_before = time.perf_counter(), time.process_time()
        await asyncio.gather(*(agent(n) for n in range(CONCURRENCY)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before

    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"\nHTTP open, {REQUESTS:,} tickets, {CONCURRENCY} concurrent clients:"
        f" {REQUESTS / elapsed:,.0f} req/s,"
        f" p50 {1000 * cuts[49]:.1f} ms, p99 {1000 * cuts[98]:.1f} ms;"
        f" client and service share one process: {1000 * cpu / REQUESTS:.1f} ms CPU per request"
    )
