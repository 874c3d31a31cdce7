"""`helpdesk rebuild` runs the service's own `rebuild` (here through a wrapper command, as
`kubectl exec` would be) and the read model comes back from the event log."""

import asyncio
import shlex
import sys
from typing import Any

import asyncpg
from typer.testing import CliRunner

from helpdesk_ops.cli import app

from support.service import ticketing_service

LIST = "SELECT *, search::text AS search_text FROM ticket_list ORDER BY tenant_id, number"


async def _rows(database_url: str, query: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        return [dict(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def test_rebuild_folds_ticketings_list_again_through_the_configured_command(
    database_url: str, kafka_bootstrap: str
) -> None:
    async with ticketing_service(database_url, kafka_bootstrap) as ticketing:
        for i in range(3):
            opened = await ticketing.client.post("/v1/tickets", headers=ticketing.auth(), json={
                "subject": f"Printer {i} jams", "description": "Paper everywhere.",
                "requester": {"customer_id": f"c-{i}", "name": "Anna"},
            })  # fmt: skip
            assert opened.status_code == 201, opened.text
    live = await _rows(database_url, LIST)
    assert len(live) == 3
    conn = await asyncpg.connect(database_url)
    try:  # the read model lost: what a rebuild is for
        await conn.execute("DELETE FROM ticket_list")
    finally:
        await conn.close()

    # The service's settings reach it only through the command, as in a pod's environment.
    command = f"env DATABASE_URL={shlex.quote(database_url)} {shlex.quote(sys.executable)} -m"
    args = ["rebuild", "ticketing", "--command", f"{command} ticketing"]
    answer = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert answer.exit_code == 0, answer.output
    assert "rebuilt from the event log" in answer.stderr  # the service's own log, shown
    assert await _rows(database_url, LIST) == live


async def test_rebuild_explains_what_the_service_refused() -> None:
    command = f"env DATABASE_URL=postgresql://nobody@127.0.0.1:1/none {sys.executable} -m ticketing"
    answer = await asyncio.to_thread(
        CliRunner().invoke, app, ["rebuild", "ticketing", "--command", command]
    )
    assert answer.exit_code == 1
    assert "rebuild` exited" in answer.stderr
