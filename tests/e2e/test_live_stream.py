"""The live stream of ticket changes (server-sent events) through the real service."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from support.service import TicketingService, ticketing_service

NEW_TICKET = {
    "subject": "Cannot log in",
    "description": "Password expired",
    "requester": {"customer_id": "c-1"},
}


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


async def _collect(
    service: TicketingService, headers: dict[str, str], into: list[dict[str, Any]], **params: Any
) -> None:
    """Read SSE events into `into` until cancelled."""
    async with service.client.stream("GET", "/v1/stream", headers=headers, params=params) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        async for line in r.aiter_lines():
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and event:
                into.append(event)
                event = {}


async def _until(condition: Any, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (polling what a reader task collects)
            await asyncio.sleep(0.05)


async def test_changes_stream_live_per_tenant_and_resume_after_the_last_id(
    service: TicketingService,
) -> None:
    acme, globex = service.auth("acme"), service.auth("globex", agent="agent-2")
    seen_by_acme: list[dict[str, Any]] = []
    seen_by_globex: list[dict[str, Any]] = []
    readers = [
        asyncio.create_task(_collect(service, acme, seen_by_acme)),
        asyncio.create_task(_collect(service, globex, seen_by_globex)),
    ]
    await asyncio.sleep(0.5)  # both streams are open and start from "now"

    first = (await service.client.post("/v1/tickets", json=NEW_TICKET, headers=acme)).json()
    await service.client.post("/v1/tickets", json=NEW_TICKET, headers=globex)
    await _until(lambda: seen_by_acme and seen_by_globex)
    await service.client.post(
        f"/v1/tickets/{first['id']}/notes", json={"body": "Checking"}, headers=acme
    )
    await _until(lambda: len(seen_by_acme) >= 2)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)

    assert [e["event"] for e in seen_by_acme] == ["TicketOpened", "InternalNoteAdded"]
    assert {e["data"]["tenant_id"] for e in seen_by_acme} == {"acme"}
    assert seen_by_acme[0]["data"]["aggregate_id"] == first["id"]
    assert [e["data"]["tenant_id"] for e in seen_by_globex] == ["globex"]

    resumed: list[dict[str, Any]] = []
    reader = asyncio.create_task(
        _collect(service, {**acme, "Last-Event-ID": str(seen_by_acme[0]["id"])}, resumed)
    )
    await _until(lambda: len(resumed) >= 1)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert [e["id"] for e in resumed] == [seen_by_acme[1]["id"]]  # exactly what came after

    bad = await service.client.get("/v1/stream", headers={**acme, "Last-Event-ID": "x"})
    assert bad.status_code == 400
