"""Customers answering surveys on the survey page, under open-loop load.

The feedback service runs as a process of its own (`python -m feedback`, API and jobs: its
relay publishes every answer), and vegeta posts answers from another process at a constant
rate, each to an invitation of its own (seeded in the database, with links signed as the
service signs them): BENCH_SURVEY_RATE (default 100/s) for BENCH_SURVEY_SECONDS (20 s)
after a warm-up, then twice that rate to show the headroom. A page view (GET, the one-click
link) is measured at the same rate. The page's rate limit per address is lifted: every
request comes from 127.0.0.1 here. Figures are printed and written under .local/bench/;
what is asserted is that every answer was recorded once (200) and no request failed.
"""

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import pytest

from feedback.config import Settings
from feedback.tokens import Links, SurveyLink
from helpdesk_runtime.tenants import replicate

from support import proc
from support.bench import record
from support.chaos import ServiceProcess
from support.plain_survey_page import SETUP
from support.servers import REPO
from support.service import free_port, tenant_record
from support.vegeta import Attack, Target, attack, write_targets

RATE = int(os.environ.get("BENCH_SURVEY_RATE", "100"))
SECONDS = float(os.environ.get("BENCH_SURVEY_SECONDS", "20"))
WARM_UP = (20, 5.0)


@pytest.mark.benchmark
async def test_customers_answer_surveys_under_open_loop_load(
    feedback_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    steps = [WARM_UP, (RATE, SECONDS), (2 * RATE, SECONDS / 2)]
    needed = sum(int(rate * seconds) + rate for rate, seconds in steps)
    surveys, links = await _seed(feedback_database_url, needed)
    service = ServiceProcess(
        feedback_database_url, kafka_bootstrap, tmp_path / "feedback.log",
        env={"PARTS": "api,jobs", "HTTP_HOST": "127.0.0.1",
             "RECEIVED_TOPIC": f"bench.received.{run}", "EVENTS_TOPIC": f"bench.events.{run}",
             "PAGE_POSTS_PER_MINUTE": "10000000", "PAGE_VIEWS_PER_MINUTE": "10000000"},
        module="feedback",
    )  # fmt: skip
    service.start()
    results: list[tuple[str, Attack, float]] = []
    try:
        await service.wait_ready()
        assert service.process is not None
        base = f"http://127.0.0.1:{service.port}/surveys/"
        used = 0
        for rate, seconds in steps:
            n = int(rate * seconds) + rate
            posts = [
                Target("POST", base + token,
                       {"Content-Type": "application/x-www-form-urlencoded"},
                       urlencode({"submission": uuid.uuid4().hex, "score": str(1 + i % 5),
                                  "comment": "Спасибо, всё решили быстро"}).encode())
                for i, token in enumerate(links[used : used + n])
            ]  # fmt: skip
            used += n
            results.append(("answer (POST)", *_step(service.process.pid, posts, rate, seconds,
                                                    tmp_path)))  # fmt: skip
            views = [Target("GET", f"{base}{token}?score=5", {}, b"") for token in links[:n]]
            results.append(("page view (GET)", *_step(service.process.pid, views, rate, seconds,
                                                      tmp_path)))  # fmt: skip
        recorded = await _count(feedback_database_url)
    finally:
        service.stop()
    results += await _plain(feedback_database_url, surveys, steps, tmp_path)

    measured = [r for r in results[2:] if r[0] != "plain, warm-up"]  # after the warm-ups
    print(f"\nsurvey page, open-loop load ({os.cpu_count()} cores for everything):")
    for what, a, cpu_ms in measured:
        print(f"  {what:<16} {a.rate:5}/s for {a.seconds:4.0f} s: p50 {a.p50_ms:6.1f} ms,"
              f" p99 {a.p99_ms:6.1f} ms, max {a.max_ms:6.1f} ms, {cpu_ms:5.2f} ms CPU/request,"
              f" statuses {a.status_codes}")  # fmt: skip
    record("survey-page", {"steps": [
        {"what": what, "rate": a.rate, "seconds": a.seconds, "p50_ms": round(a.p50_ms, 2),
         "p99_ms": round(a.p99_ms, 2), "max_ms": round(a.max_ms, 2),
         "service_cpu_ms_per_request": round(cpu_ms, 3), "statuses": a.status_codes}
        for what, a, cpu_ms in measured
    ]})  # fmt: skip
    posted = sum(a.sent for what, a, _ in results if what.startswith("answer"))
    best = {a.rate: a for what, a, _ in results if what == "plain: answer"}
    for what, a, _ in results[2:]:
        if what.startswith("answer") and a.rate in best:
            ratio = a.p99_ms / best[a.rate].p99_ms
            print(f"  at {a.rate}/s: the page's p99 / plain p99 = {ratio:.1f}")
    assert all(set(a.status_codes) == {"200"} for _, a, _ in results), results
    assert recorded == posted  # each answer recorded once


def _step(pid: int, targets: list[Target], rate: int, seconds: float,
          folder: Path) -> tuple[Attack, float]:  # fmt: skip
    """One rate held: what vegeta saw, and the service's CPU per request."""
    path = folder / f"targets-{uuid.uuid4().hex[:6]}.json"
    write_targets(path, targets)
    before = proc.cpu_s(pid)
    result = attack(path, rate, seconds, folder / "results.bin")
    return result, 1000 * (proc.cpu_s(pid) - before) / max(result.sent, 1)


async def _plain(
    database_url: str, surveys: list[uuid.UUID], steps: list[tuple[int, float]], folder: Path
) -> list[tuple[str, Attack, float]]:
    """The same answers at the same rates to the raw ceiling (support/plain_survey_page.py):
    uvicorn and asyncpg doing the page's writes, nothing else."""
    conn = await asyncpg.connect(database_url)
    try:
        for statement in SETUP:
            await conn.execute(statement)
    finally:
        await conn.close()
    port = free_port()
    process = _start_plain(port, database_url)
    results: list[tuple[str, Attack, float]] = []
    try:
        await _until_listening(port)
        used = 0
        for index, (rate, seconds) in enumerate(steps):
            n = int(rate * seconds) + rate
            posts = [
                Target("POST", f"http://127.0.0.1:{port}/{survey.hex}",
                       {"Content-Type": "application/x-www-form-urlencoded"},
                       urlencode({"score": str(1 + i % 5),
                                  "comment": "Спасибо, всё решили быстро"}).encode())
                for i, survey in enumerate(surveys[used : used + n])
            ]  # fmt: skip
            used += n
            what = "plain, warm-up" if index == 0 else "plain: answer"
            results.append((what, *_step(process.pid, posts, rate, seconds, folder)))
    finally:
        process.terminate()
        process.wait(10)
    return results


def _start_plain(port: int, database_url: str) -> subprocess.Popen[bytes]:
    script = REPO / "tests" / "support" / "plain_survey_page.py"
    return subprocess.Popen([sys.executable, str(script), str(port), database_url])


async def _until_listening(port: int) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)  # a process starting: nothing to wait on but time
                continue
            writer.close()
            return


async def _seed(database_url: str, n: int) -> tuple[list[uuid.UUID], list[str]]:
    """`n` invitations of tenant acme, sent now; their links, signed as the service signs."""
    links = Links(Settings().survey_link_secret.get_secret_value())  # type: ignore[union-attr]
    now = datetime.now(UTC)
    expires = now + timedelta(days=14)
    surveys = [uuid.uuid4() for _ in range(n)]
    conn = await asyncpg.connect(database_url)
    try:
        await replicate(conn, [tenant_record("acme")])
        columns = (
            "tenant_id",
            "ticket_id",
            "number",
            "decided_at",
            "survey_id",
            "customer_id",
            "survey",
            "agent_id",
            "channel",
            "priority",
            "language",
            "expires_at",
        )
        await conn.executemany(  # not COPY: row-level security refuses it
            f"INSERT INTO invitations ({', '.join(columns)}) VALUES"
            f" ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})",
            [("acme", uuid.uuid4(), i + 1, now, s, f"c-{i}", "csat", "agent-1", "email",
              "normal", "ru", expires) for i, s in enumerate(surveys)],
        )  # fmt: skip
    finally:
        await conn.close()
    return surveys, [links.token(SurveyLink("acme", s, expires)) for s in surveys]


async def _count(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        found: int = await conn.fetchval("SELECT count(*) FROM answers")
        return found
    finally:
        await conn.close()
