"""What every service gets from the runtime, seen from outside: the command line, PARTS, CORS."""

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import asyncpg

from support.service import ticketing_service

FRONTEND = "https://agents.example.com"


async def run_cli(*args: str, database_url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticketing", *args,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "json"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_migrate_is_safe_from_several_processes_at_once_and_twice(
    empty_database_url: str,
) -> None:
    results = await asyncio.gather(
        *(run_cli("migrate", database_url=empty_database_url) for _ in range(3))
    )
    assert [code for code, _ in results] == [0, 0, 0], results
    conn = await asyncpg.connect(empty_database_url)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        assert len(names) == len(set(names))
        assert "ticketing/0001_ticket_numbers.sql" in names
        tables = {
            name: await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
            for name in ("ticket_list", "events", "inbox", "audit_log", "outbox", "timers")
        }
        # Only the runtime's tables ticketing uses: it is event-sourced and sets no timers.
        assert tables == {
            "ticket_list": True, "events": True, "inbox": True, "audit_log": True,
            "outbox": False, "timers": False,
        }  # fmt: skip
        owner = await conn.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'events'")
        assert owner == "helpdesk_service"  # the service's own role, not the admin
    finally:
        await conn.close()
    code, output = await run_cli("migrate", database_url=empty_database_url)
    assert code == 0
    assert "nothing new" in output


async def test_the_token_command_mints_a_token_the_api_accepts(
    database_url: str, kafka_bootstrap: str
) -> None:
    code, output = await run_cli(
        "token", "--tenant", "acme", "--agent", "a1", database_url=database_url
    )
    assert code == 0, output
    async with ticketing_service(database_url, kafka_bootstrap) as service:
        answer = await service.client.get(
            "/v1/tickets", headers={"Authorization": f"Bearer {output.strip()}"}
        )
        assert answer.status_code == 200, answer.text


async def test_a_consumers_only_process_serves_health_but_no_api(
    database_url: str, kafka_bootstrap: str
) -> None:
    async with ticketing_service(database_url, kafka_bootstrap, parts="consumers") as service:
        ready = await service.client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "kafka": "ok"}  # no relay job
        assert (await service.client.get("/v1/tickets", headers=service.auth())).status_code == 404
        paths = (await service.client.get("/openapi.json")).json()["paths"]
        assert "/v1/tickets" not in paths


async def test_an_api_and_jobs_process_relays_but_does_not_consume(
    database_url: str, kafka_bootstrap: str
) -> None:
    async with ticketing_service(database_url, kafka_bootstrap, parts="api,jobs") as service:
        ready = await service.client.get("/health/ready")
        assert ready.json()["checks"]["job:outbox-relay"] == "ok"
        app_runtime = service.runtime
        assert app_runtime.consumers == {}
        assert not app_runtime.broker.subscribers


async def test_a_browser_app_on_an_allowed_origin_may_call_the_api(
    database_url: str, kafka_bootstrap: str
) -> None:
    async with ticketing_service(database_url, kafka_bootstrap, cors_origins=FRONTEND) as service:
        preflight = await service.client.options(
            "/v1/tickets",
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == FRONTEND
        listed = await service.client.get(
            "/v1/tickets", headers={**service.auth(), "Origin": FRONTEND}
        )
        assert listed.headers["access-control-allow-origin"] == FRONTEND
        assert "ETag" in listed.headers["access-control-expose-headers"]

        elsewhere = await service.client.options(
            "/v1/tickets",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert elsewhere.status_code == 400
        assert "access-control-allow-origin" not in elsewhere.headers


async def test_a_body_over_its_limit_is_refused_before_it_is_read(
    database_url: str, kafka_bootstrap: str
) -> None:
    async with ticketing_service(database_url, kafka_bootstrap, http_max_body_bytes=2048) as s:
        headers = {**s.auth(), "Content-Type": "application/json"}
        declared = await s.client.post("/v1/tickets", content=b" " * 4096, headers=headers)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
            for _ in range(10):
                yield b" " * 1024

        streamed = await s.client.post("/v1/tickets", content=chunks(), headers=headers)
        within = await s.client.post("/v1/tickets", content=b"{}", headers=headers)

    assert (declared.status_code, declared.json()["detail"]) == (
        413, "the body is 4096 bytes; the limit is 2048"
    )  # fmt: skip
    assert (streamed.status_code, streamed.json()["detail"]) == (
        413, "the body is over the limit of 2048 bytes"
    )  # fmt: skip
    assert within.status_code == 422  # read, and found wanting: not a size matter


async def test_registering_a_tenant_from_the_command_line_is_audited(database_url: str) -> None:
    for name in ("Acme", "Acme Corp"):
        code, output = await run_cli(
            "tenants", "add", "acme", "--name", name, database_url=database_url
        )
        assert code == 0, output
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT actor, actor_role, action, before::text, after::text FROM audit_log"
            " WHERE tenant_id = 'acme' AND entity = 'tenant' ORDER BY id"
        )
    finally:
        await conn.close()
    assert [(r["action"], r["actor_role"]) for r in rows] == [
        ("created", "ops"),
        ("updated", "ops"),
    ]
    assert all(r["actor"].startswith("ops:") for r in rows)
    assert (rows[1]["before"], rows[1]["after"]) == ('{"name": "Acme"}', '{"name": "Acme Corp"}')


async def test_liveness_and_the_api_answer_while_kafka_is_out_of_reach(
    database_url: str,
) -> None:
    nowhere = "127.0.0.1:9"  # the discard port: no broker will ever answer there
    async with ticketing_service(database_url, nowhere, connected=False) as service:
        assert (await service.client.get("/health/live")).status_code == 200
        ready = await service.client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["kafka"] == "connecting"
        assert (await service.client.get("/v1/tickets", headers=service.auth())).status_code == 200
