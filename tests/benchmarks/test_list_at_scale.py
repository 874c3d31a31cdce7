"""The agents' ticket list at scale: 1,000,000 tickets over 50 tenants, the largest 300,000.

Seeds `ticket_list` with COPY (support/ticket_list_seed.py: skewed tenants, a year of
tickets, Zipf-like words and tags), runs the real service and times every list the frontend
asks for, for the largest tenant and the smallest: BENCH_LIST_RUNS requests of each kind
(default 200), each with another agent, status, tag or word, one at a time. The SQL alone
(`list_tickets` on a connection of its own) is timed beside each HTTP request, so the API's
own cost shows. BENCH_LIST_TICKETS scales the data (default 1,000,000, the largest tenant
30 % of it); BENCH_LIST_EXPLAIN=1 prints the plan of each kind's slowest query.

Figures are printed and written as JSON under .local/bench/ (list-<stamp>.json), not
asserted; each page is checked against a plain query of the same filter.
"""

import asyncio
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from helpdesk_contracts import TicketStatus
from ticketing.queries import Sort, TicketFilter, list_tickets

from support.bench import record
from support.service import TicketingService, ticketing_service
from support.ticket_list_seed import WORKING, Seeded, Tenant, Vocabulary, seed

TICKETS = int(os.environ.get("BENCH_LIST_TICKETS", "1000000"))
RUNS = int(os.environ.get("BENCH_LIST_RUNS", "200"))
EXPLAIN = os.environ.get("BENCH_LIST_EXPLAIN", "0") != "0"
PAGE = 25
CHECKED = 3  # asks of each kind compared with the plain query (which counts every match)


@dataclass(frozen=True)
class Ask:
    """One list request, and the filter its route builds from it."""

    filter: TicketFilter = field(default_factory=TicketFilter)
    sort: Sort = Sort.UPDATED
    agent: str = "agent-0"
    queue: bool = False  # GET /v1/queue: the caller's own unsolved tickets

    def request(self) -> tuple[str, dict[str, Any]]:
        if self.queue:
            return "/v1/queue", {"limit": PAGE}
        f = self.filter
        params: dict[str, Any] = {"status": list(f.statuses), "tag": list(f.tags), "limit": PAGE}
        if f.assignee_id:
            params["assignee_id"] = f.assignee_id
        if f.text:
            params["q"] = f.text
        return "/v1/tickets", params


@dataclass(frozen=True)
class Kind:
    name: str
    pick: Callable[[Tenant, random.Random], Ask]
    page: int = 1  # 2: the page after the first, through its cursor


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def kinds(vocab: Vocabulary) -> list[Kind]:
    def agent(t: Tenant, rng: random.Random) -> str:
        return f"agent-{rng.randrange(t.agents)}"

    def queue(t: Tenant, rng: random.Random) -> Ask:
        a = agent(t, rng)
        return Ask(TicketFilter(statuses=WORKING, assignee_id=a), Sort.PRIORITY, a, queue=True)

    def text(low: int, high: int) -> Callable[[Tenant, random.Random], Ask]:
        return lambda t, rng: Ask(TicketFilter(text=vocab.word(t, _log_uniform(rng, low, high))))

    def tag(low: int, high: int) -> Callable[[Tenant, random.Random], Ask]:
        return lambda t, rng: Ask(TicketFilter(tags=(vocab.tag(t, _log_uniform(rng, low, high)),)))

    statuses = [s.value for s in TicketStatus]
    return [
        Kind("first page", lambda t, rng: Ask()),
        Kind("first page, next page", lambda t, rng: Ask(), page=2),
        Kind("queue (/v1/queue)", queue),
        Kind("assignee, unsolved", lambda t, rng: Ask(
            TicketFilter(statuses=WORKING, assignee_id=agent(t, rng)))),
        Kind("status (each of 6)", lambda t, rng: Ask(
            TicketFilter(statuses=(rng.choice(statuses),)))),
        Kind("tag, common (rank 1-20)", tag(1, 20)),
        Kind("tag, rare (rank 100-3k)", tag(100, 3_000)),
        Kind("q, common (rank 15-40)", text(15, 40)),
        Kind("q, common, next page", text(15, 40), page=2),
        Kind("q, medium (rank 300-3k)", text(300, 3_000)),
        Kind("q, rare (rank 10k-30k)", text(10_000, 30_000)),
    ]  # fmt: skip


@dataclass
class Figures:
    tenant: Tenant
    kind: Kind
    http_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    matching: list[int] = field(default_factory=list)
    slowest: tuple[float, Ask] = (0.0, Ask())

    def row(self) -> dict[str, Any]:
        def p(values: list[float], cut: int) -> float:
            return round(statistics.quantiles(values, n=100)[cut - 1], 2) if values else math.nan

        return {
            "tenant": self.tenant.tenant_id, "tickets": self.tenant.tickets,
            "query": self.kind.name, "matching": round(statistics.fmean(self.matching or [0])),
            "rows": round(statistics.fmean(self.rows or [0]), 1),
            "http_p50_ms": p(self.http_ms, 50), "http_p99_ms": p(self.http_ms, 99),
            "sql_p50_ms": p(self.sql_ms, 50), "sql_p99_ms": p(self.sql_ms, 99),
        }  # fmt: skip


async def _http_page(service: TicketingService, tenant: Tenant, ask: Ask, page: int) -> Any:
    """(milliseconds, ids) of the ask's `page`-th page over HTTP; None if there is none."""
    path, params = ask.request()
    headers = service.auth(tenant=tenant.tenant_id, agent=ask.agent)
    for _ in range(page - 1):
        earlier = await service.client.get(path, params=params, headers=headers)
        if not (cursor := earlier.json()["next_cursor"]):
            return None
        params = {**params, "cursor": cursor}
    started = time.perf_counter()
    response = await service.client.get(path, params=params, headers=headers)
    elapsed = 1000 * (time.perf_counter() - started)
    assert response.status_code == 200, response.text
    return elapsed, [UUID(t["id"]) for t in response.json()["items"]]


async def _options(conn: asyncpg.Connection, tenant: Tenant, ask: Ask, page: int) -> Any:
    """`list_tickets`' options for the ask's `page`-th page; None if there is none."""
    options: dict[str, Any] = {"sort": ask.sort, "limit": PAGE, "cursor": None}
    for _ in range(page - 1):
        _, options["cursor"] = await list_tickets(conn, tenant.tenant_id, ask.filter, **options)
        if not options["cursor"]:
            return None
    return options


async def _sql_page(conn: asyncpg.Connection, tenant: Tenant, ask: Ask, page: int) -> Any:
    """(milliseconds, rows) of the same page through `list_tickets` alone."""
    if (options := await _options(conn, tenant, ask, page)) is None:
        return None
    started = time.perf_counter()
    rows, _ = await list_tickets(conn, tenant.tenant_id, ask.filter, **options)
    return 1000 * (time.perf_counter() - started), rows


async def _plain(conn: asyncpg.Connection, tenant: Tenant, ask: Ask, page: int) -> Any:
    """(tickets matching, ids of the page) by the plainest query, whatever its cost."""
    f, args = ask.filter, list[Any]([tenant.tenant_id])
    where = ["tenant_id = $1"]
    for clause, value in (
        ("status = ANY(${})", list(f.statuses) or None), ("assignee_id = ${}", f.assignee_id),
        ("tags @> ${}::text[]", list(f.tags) or None),
        ("search @@ websearch_to_tsquery('simple', ${})", f.text),
    ):  # fmt: skip
        if value is not None:
            args.append(value)
            where.append(clause.format(len(args)))
    rows = await conn.fetch(
        f"SELECT ticket_id, count(*) OVER () AS n FROM ticket_list WHERE {' AND '.join(where)}"
        f" ORDER BY {ask.sort.value} DESC, ticket_id DESC LIMIT {PAGE * page}",
        *args,
    )
    return (rows[0]["n"] if rows else 0), [r["ticket_id"] for r in rows[PAGE * (page - 1) :]]


def _check(ask: Ask, rows: list[dict[str, Any]]) -> None:
    f = ask.filter
    keys = [(r[ask.sort.value], r["ticket_id"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    for r in rows:
        assert not f.statuses or r["status"] in f.statuses
        assert not f.assignee_id or r["assignee_id"] == f.assignee_id
        assert set(f.tags) <= set(r["tags"])


async def _measure(
    service: TicketingService, conn: asyncpg.Connection, tenant: Tenant, kind: Kind
) -> Figures:
    figures = Figures(tenant, kind)
    rng = random.Random(f"{tenant.tenant_id}/{kind.name}")
    asks = [kind.pick(tenant, rng) for _ in range(RUNS)]
    for ask in asks[:CHECKED]:
        matching, expected = await _plain(conn, tenant, ask, kind.page)
        figures.matching.append(matching)
        assert (await _http_page(service, tenant, ask, kind.page) or (0, []))[1] == expected
    for ask in asks[:10]:  # warm up the statement caches, as a running service has them
        await _sql_page(conn, tenant, ask, kind.page)
    for ask in asks:
        http, sql = (
            await _http_page(service, tenant, ask, kind.page),
            await _sql_page(conn, tenant, ask, kind.page),
        )
        if http is None or sql is None:
            continue  # no such page (fewer matches than one page)
        assert http[1] == [r["ticket_id"] for r in sql[1]]
        _check(ask, sql[1])
        figures.http_ms.append(http[0])
        figures.sql_ms.append(sql[0])
        figures.rows.append(len(sql[1]))
        figures.slowest = max(figures.slowest, (sql[0], ask), key=lambda s: s[0])
    return figures


async def _explain(conn: asyncpg.Connection, tenant: Tenant, ask: Ask, page: int) -> str:
    """The plans of the statements `list_tickets` runs for this ask (as it runs them)."""
    options = await _options(conn, tenant, ask, page)
    logged: list[asyncpg.connection.LoggedQuery] = []
    with conn.query_logger(logged.append):
        await list_tickets(conn, tenant.tenant_id, ask.filter, **options)
        await asyncio.sleep(0)  # loggers are called soon after, not during, the query
    plans = []
    for q in logged:
        found = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {q.query}", *q.args)
        plans.append("\n".join(r[0] for r in found))
    return "\n".join(plans)


def _table(seeded: Seeded, rows: list[dict[str, Any]]) -> str:
    lines = [
        f"\nticket list, {seeded.rows:,} tickets over {len(seeded.tenants)} tenants, seeded in"
        f" {seeded.total_s:.0f} s (rows {seeded.generate_copy_s:.0f} s, indexes"
        f" {seeded.index_s:.0f} s, vacuum {seeded.vacuum_s:.0f} s); {RUNS} requests a line,"
        " one at a time; 2 shared cores",
        f"  {'tenant':<14}{'query':<26}{'matching':>9}{'rows':>6}"
        f"{'HTTP p50':>10}{'p99':>8}{'SQL p50':>9}{'p99':>8}  (ms)",
    ]
    for r in rows:
        tenant = f"{r['tenant']} ({r['tickets'] // 1000}k)"
        lines.append(
            f"  {tenant:<14}{r['query']:<26}"
            f"{r['matching']:>9,}{r['rows']:>6.1f}{r['http_p50_ms']:>10.1f}{r['http_p99_ms']:>8.1f}"
            f"{r['sql_p50_ms']:>9.1f}{r['sql_p99_ms']:>8.1f}"
        )
    return "\n".join(lines)


@pytest.mark.timeout(3600)
async def test_the_ticket_list_at_scale(database_url: str, kafka_bootstrap: str) -> None:
    seeded = await seed(database_url, total=TICKETS, largest=TICKETS * 3 // 10)
    assert seeded.rows == TICKETS
    largest, smallest = seeded.tenants[0], seeded.tenants[-1]
    results: list[Figures] = []
    conn = await asyncpg.connect(database_url)
    try:
        async with ticketing_service(database_url, kafka_bootstrap, log_level="WARNING") as service:
            for tenant in (largest, smallest):
                for kind in kinds(seeded.vocabulary):
                    results.append(await _measure(service, conn, tenant, kind))
        rows = [f.row() for f in results]
        print(_table(seeded, rows))
        for f in results if EXPLAIN else ():
            plan = await _explain(conn, f.tenant, f.slowest[1], f.kind.page)
            print(f"\n{f.tenant.tenant_id} {f.kind.name}, slowest ({f.slowest[0]:.1f} ms):\n{plan}")
    finally:
        await conn.close()
    record("list",
        {
            "tickets": seeded.rows, "tenants": len(seeded.tenants), "runs": RUNS,
            "seed_s": {"total": round(seeded.total_s, 1), "rows": round(seeded.generate_copy_s, 1),
                       "indexes": round(seeded.index_s, 1), "vacuum": round(seeded.vacuum_s, 1)},
            "rows": rows,
        }
    )  # fmt: skip
