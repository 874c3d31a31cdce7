"""Agents opening tickets over HTTP, under open-loop load: latency at a constant arrival rate.

The ticketing service runs as a process of its own (`python -m ticketing`, as deployed), and
vegeta sends POST /v1/tickets from another process at a fixed rate, each request with an
Idempotency-Key of its own, spread over a few tenants and agents. After a warm-up it holds
BENCH_HTTP_RATE (default 1,000/s) for BENCH_HTTP_SECONDS (15 s), then looks for the highest
rate whose p99 stays within BENCH_HTTP_P99_MS (50 ms) in up to BENCH_HTTP_MAX_STEPS (5) steps
of BENCH_HTTP_STEP_SECONDS (10 s): up by half while it holds, down by half until it does, then
halving the gap. Each step reports p50/p99, errors, the CPU per request of the service and of
the PostgreSQL backends serving it, and the service's RSS (from /proc). Figures are printed
and written as JSON under .local/bench/, not asserted; what is asserted is that every request
was answered 201 and opened exactly one ticket.

The process runs the API and the jobs (the outbox relay publishes every ticket opened), not
the Kafka consumers: they would have nothing to do here but take in whatever else a shared
test broker carries. The machine has 2 cores for the service, PostgreSQL, Kafka, vegeta and
whatever else runs at the time: each step says how busy the whole machine was.
"""

import asyncio
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.tokens import mint
from ticketing.config import Settings

from support import proc
from support.bench import record
from support.chaos import ServiceProcess, eventually
from support.service import register_tenants
from support.vegeta import Attack, Target, attack, write_targets

RATE = int(os.environ.get("BENCH_HTTP_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "15"))
STEP_SECONDS = float(os.environ.get("BENCH_HTTP_STEP_SECONDS", "10"))
P99_MS = float(os.environ.get("BENCH_HTTP_P99_MS", "50"))
MAX_STEPS = int(os.environ.get("BENCH_HTTP_MAX_STEPS", "5"))
WARM_UP = (200, 5.0)  # rate, seconds: connections, pool and caches warm before measuring
TENANTS, AGENTS = 5, 50
BODY = json.dumps(
    {
        "subject": "Invoice shows the wrong amount",
        "description": "Charged twice for November.",
        "requester": {"customer_id": "c-1042", "name": "Anna Petrova", "email": "anna@example.com"},
        "priority": "high",
        "tags": ["billing"],
    }
).encode()


@dataclass(frozen=True)
class Step:
    """One rate held for a while: what the client saw, and what it cost."""

    attack: Attack
    service_cpu_ms: float  # per request, the service process
    postgres_cpu_ms: float  # per request, the PostgreSQL backends serving it
    service_rss_mb: float
    machine_busy: float  # share of both cores busy, whatever ran

    @property
    def holds(self) -> bool:
        a = self.attack
        return a.answered(201) == a.sent and a.p99_ms <= P99_MS


@pytest.mark.benchmark
async def test_agents_open_tickets_under_open_loop_load(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    tenant_ids = [f"bench{t}" for t in range(TENANTS)]
    await register_tenants(database_url, tenant_ids)

    service = ServiceProcess(
        database_url, kafka_bootstrap, tmp_path / "ticketing.log",
        env={"PARTS": "api,jobs", "HTTP_HOST": "127.0.0.1"},
    )  # fmt: skip
    service.start()
    try:
        await service.wait_ready()
        assert service.process is not None
        bench = _Bench(service.process.pid, service.port, database_url, tenant_ids, tmp_path)
        warm_up = await bench.step(*WARM_UP)
        steps = [await bench.step(RATE, SECONDS)]
        steps += await _search(bench, steps[0])
        await bench.settled()
        opened = await _count(database_url, "TicketOpened")
    finally:
        service.stop()

    highest = max((s.attack.rate for s in steps if s.holds), default=None)
    _report(steps, highest)
    answers: Counter[str] = Counter()
    for step in [warm_up, *steps]:
        answers.update(step.attack.status_codes)
    # "0" is no answer within vegeta's timeout, at a rate above what the service can serve:
    # slow, not wrong. Any other status than 201 is wrong, and so is a ticket too many.
    assert set(answers) <= {"201", "0"}, [s.attack.errors for s in steps]
    assert answers["201"] <= opened <= bench.sent  # one ticket per request at most
    if not answers["0"]:
        assert opened == bench.sent  # and exactly one


class _Bench:
    """Runs vegeta at one rate after another, against the service process, and measures."""

    def __init__(
        self, pid: int, port: int, database_url: str, tenant_ids: list[str], folder: Path
    ) -> None:
        settings = Settings()  # with the development secret, which the service checks with
        self.pid = pid
        self.url = f"http://127.0.0.1:{port}/v1/tickets"
        self.database_url = database_url
        self.database = urlsplit(database_url).path.lstrip("/")
        self.folder = folder
        self.headers = [
            {
                "Authorization": "Bearer " + mint(settings, principal, ttl_s=3600),
                "Content-Type": "application/json",
            }
            for principal in (
                Principal(tenant_ids[a % len(tenant_ids)], f"agent-{a}", Role.AGENT)
                for a in range(AGENTS)
            )
        ]
        self.sent = 0
        self.runs = 0

    def _targets(self, n: int) -> Iterator[Target]:
        run = f"{uuid.uuid4().hex[:8]}-{self.runs}"
        for i in range(n):
            headers = {**self.headers[i % AGENTS], "Idempotency-Key": f"bench-{run}-{i}"}
            yield Target("POST", self.url, headers, BODY)

    async def step(self, rate: int, seconds: float) -> Step:
        """`rate` requests a second for `seconds`, once the step before is done with."""
        await self.settled()
        self.runs += 1
        targets = self.folder / f"targets-{self.runs}.jsonl"
        write_targets(targets, self._targets(int(rate * seconds)))
        service, backends = proc.cpu_s(self.pid), proc.postgres_backends_cpu_s(self.database)
        machine = proc.machine_ticks()
        result = await asyncio.to_thread(
            attack, targets, rate, seconds, self.folder / f"results-{self.runs}.bin"
        )
        service = proc.cpu_s(self.pid) - service
        postgres = sum(  # a backend the pool opened during the step counts from zero
            cpu - backends.get(pid, 0.0)
            for pid, cpu in proc.postgres_backends_cpu_s(self.database).items()
        )
        busy, total = (now - then for now, then in zip(proc.machine_ticks(), machine, strict=True))
        targets.unlink()
        self.sent += result.sent
        per_request = 1000 / max(1, result.sent)
        return Step(
            result, service * per_request, postgres * per_request, proc.rss_mb(self.pid),
            busy / total,
        )  # fmt: skip

    async def settled(self) -> None:
        """Until the service is idle and its relay has published every event.

        Requests vegeta gave up on (a step above capacity) are still being served."""
        async with asyncio.timeout(120):
            while True:
                before = proc.cpu_s(self.pid)
                await asyncio.sleep(0.5)
                if proc.cpu_s(self.pid) - before < 0.05:  # a tenth of a core
                    break
        conn = await asyncpg.connect(self.database_url)
        try:

            async def relayed() -> bool:
                done: bool = await conn.fetchval(
                    "SELECT coalesce((SELECT max(position) FROM outbox_checkpoints), 0)"
                    " >= coalesce((SELECT max(position) FROM events), 0)"
                )
                return done

            await eventually(relayed, timeout_s=120)
        finally:
            await conn.close()


async def _search(bench: _Bench, first: Step) -> list[Step]:
    """Up by half while the p99 holds, down by half until it does, then halve the gap."""
    held = first.attack.rate if first.holds else 0
    broke = 0 if first.holds else first.attack.rate
    steps: list[Step] = []
    for _ in range(MAX_STEPS):
        if not broke:
            rate = _rounded(held * 1.5)
        elif not held:
            rate = _rounded(broke / 2)
        else:
            rate = _rounded((held + broke) / 2)
        if rate in (held, broke):  # as close as steps of 50/s get
            break
        step = await bench.step(rate, STEP_SECONDS)
        steps.append(step)
        if step.holds:
            held = rate
        else:
            broke = rate
    return steps


def _rounded(rate: float) -> int:
    return max(50, round(rate / 50) * 50)


async def _count(database_url: str, event_type: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM events WHERE event_type = $1", event_type
        )
        return count
    finally:
        await conn.close()


def _report(steps: list[Step], highest: int | None) -> None:
    header = (
        f"  {'rate/s':>7} {'sent/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
        f" {'max ms':>7} {'not 201':>7} {'service CPU':>11} {'PG CPU':>7} {'RSS MB':>6}"
        f" {'machine':>7} {'vegeta':>6}"
    )
    rows = [
        f"  {s.attack.rate:>7,} {s.attack.achieved_rate:>7,.0f} {s.attack.p50_ms:>7.1f}"
        f" {s.attack.p90_ms:>7.1f} {s.attack.p99_ms:>7.1f} {s.attack.max_ms:>7.0f}"
        f" {s.attack.sent - s.attack.answered(201):>7,} {s.service_cpu_ms:>8.2f} ms"
        f" {s.postgres_cpu_ms:>4.2f} ms {s.service_rss_mb:>6.0f} {s.machine_busy:>7.0%}"
        f" {s.attack.client_cpu_s / s.attack.seconds:>6.0%}"
        for s in steps
    ]
    verdict = (
        f"highest rate holding p99 <= {P99_MS:.0f} ms: {highest:,}/s"
        if highest
        else f"no rate tried held p99 <= {P99_MS:.0f} ms"
    )
    print(
        f"\nHTTP open, open loop (vegeta), the service in a process of its own, {TENANTS}"
        f" tenants:\n{header}\n" + "\n".join(rows) + f"\n  {verdict}\n"
        "  (CPU per request; machine: both cores busy, whatever ran; vegeta: of one core)"
    )
    record(
        "http",
        {
            "p99_target_ms": P99_MS,
            "highest_rate_holding_p99": highest,
            "steps": [
                {
                    **asdict(s.attack),
                    "service_cpu_ms_per_request": round(s.service_cpu_ms, 3),
                    "postgres_cpu_ms_per_request": round(s.postgres_cpu_ms, 3),
                    "service_rss_mb": round(s.service_rss_mb),
                    "machine_busy": round(s.machine_busy, 3),
                }
                for s in steps
            ],
        },
    )
