"""Erasure by crypto-shredding, end to end through the real Kafka and PostgreSQL.

Ticketing and the SLA service run as processes of their own (their logs in files, as in
pods). A customer's name, addresses, words and file are given to ticketing every way
it takes them. Before the erasure they are in plain text in no topic a service publishes
and not in the event log (the ticket list may show and search them); afterwards they are
readable in no database, no topic and no log, while every count and SLA verdict is what it
was, and a rebuild of the read models gives the same rows.
"""

import random
import string
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr

from helpdesk_contracts import CustomerErased, TicketOpened
from helpdesk_contracts.pii import ERASED
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.db import create_pool
from helpdesk_runtime.tokens import mint
from ticketing.config import Settings
from ticketing.domain.directory import customer_stream
from ticketing.projection import rebuild

from support.chaos import eventually, ticketing_and_sla
from support.fixtures import find_keyed
from support.privacy import (
    DEV_KEYS,
    opened_with,
    published_topics,
    readable_in_database,
    readable_in_topics,
)
from support.service import register_tenants

# Her own this run: a shared broker keeps what earlier runs published.
_MARK = "".join(random.choices(string.ascii_lowercase, k=8))
_DIGITS = "".join(random.choices(string.digits, k=7))
SURNAME = f"Quartermain{_MARK}"
NAME, EMAIL = f"Zelda {SURNAME}", f"zelda.{_MARK}@pii-example.org"
PHONE = f"+7 912 {_DIGITS[:3]}-{_DIGITS[3:5]}-{_DIGITS[5:]}"
WORDS = f"my flat is 12B on {_MARK.title()}berry Lane"
FILE = f"passport of {SURNAME}.txt"
HER = [NAME, SURNAME, EMAIL, f"zelda.{_MARK}", PHONE[3:], f"{_MARK.title()}berry"]
TICKETS, DIRECTORY = "ticketing.tickets.v2", "ticketing.directory.v1"


async def _rows(database_url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def _opened(database_url: str, value: bytes) -> Any:
    return (await opened_with(database_url, value)).payload


async def test_an_erased_customer_is_readable_nowhere_and_the_statistics_stay(
    database_url: str, sla_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    await register_tenants(database_url, [tenant])
    settings = Settings(database_url=SecretStr(database_url))

    def auth(role: Role, agent: str = "agent-7") -> dict[str, str]:
        token = mint(settings, Principal(tenant, agent, role), ttl_s=900)
        return {"Authorization": f"Bearer {token}"}

    agent, admin = auth(Role.AGENT), auth(Role.ADMIN, "admin-1")
    async with (
        ticketing_and_sla(database_url, sla_database_url, kafka_bootstrap, tmp_path,
                          "privacy") as (ticketing, _),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ticketing.port}") as http,
    ):  # fmt: skip
        await _session(http, agent, admin, tenant, database_url, sla_database_url,
                       kafka_bootstrap)  # fmt: skip
    for service in ("ticketing", "sla"):
        log = (tmp_path / f"{service}.log").read_text()
        assert "service started" in log  # the log is there to search
        assert not [text for text in HER if text in log], f"the {service} log holds her data"


async def _session(
    http: httpx.AsyncClient, agent: dict[str, str], admin: dict[str, str], tenant: str,
    database_url: str, sla_database_url: str, kafka: str,
) -> None:  # fmt: skip
    contacts = [{"kind": "email", "address": EMAIL}, {"kind": "phone", "address": PHONE}]
    her = {"customer_id": "cus-z", "name": NAME, "contacts": contacts, "notes": WORDS}
    assert (await http.post("/v1/customers", headers=agent, json=her)).status_code == 201
    upload = await http.post("/v1/attachments", headers=agent,
                             files={"file": (FILE, WORDS.encode() * 20, "text/plain")})  # fmt: skip
    assert upload.status_code == 201, upload.text
    file_id = upload.json()["attachment_id"]
    opened = await http.post("/v1/tickets", headers=agent, json={
        "subject": f"Help for {NAME}", "description": WORDS, "attachment_ids": [file_id],
        "requester": {"customer_id": "cus-z", "name": NAME, "email": EMAIL},
    })  # fmt: skip
    assert opened.status_code == 201, opened.text
    ticket = opened.json()["id"]
    reply = await http.post(f"/v1/tickets/{ticket}/replies", headers=agent,
                            json={"body": f"Dear {NAME}, {WORDS}"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    note = await http.post(f"/v1/tickets/{ticket}/notes", headers=agent, json={"body": WORDS})
    assert note.status_code in (200, 201), note.text
    other = await http.post("/v1/tickets", headers=agent, json={
        "subject": "Boris's printer", "description": "It jams.",
        "requester": {"customer_id": "cus-b", "name": "Boris Pahl"},
    })  # fmt: skip
    assert other.status_code == 201

    # Published, sealed: her data is in no topic's bytes and not in the event log.
    assert len(await find_keyed(kafka, TICKETS, ticket.encode(), until=3, tenant=tenant)) >= 3
    clocks = "SELECT * FROM clocks WHERE ticket_id = $1 ORDER BY metric, cycle"

    async def judged() -> bool:  # the first response was given: a verdict exists
        return any(c["ended_at"] for c in await _rows(sla_database_url, clocks, uuid.UUID(ticket)))

    await eventually(judged, timeout_s=60)
    assert await readable_in_topics(kafka, published_topics(), HER) == []
    assert await readable_in_topics(kafka, [TICKETS], [ticket]) == [f"{TICKETS}: {ticket}"]
    log = await _rows(database_url, "SELECT payload::text AS p FROM events WHERE tenant_id = $1",
                      tenant)  # fmt: skip
    assert not [t for t in HER if any(t in row["p"] for row in log)]
    # The read model shows and searches her (that is what it is for), and so does an export.
    found = await http.get("/v1/tickets", headers=agent, params={"q": SURNAME})
    assert [t["id"] for t in found.json()["items"]] == [ticket]
    exported = await http.get("/v1/customers/cus-z/export", headers=admin)
    assert exported.status_code == 200, exported.text
    assert NAME in exported.text
    assert WORDS in exported.text
    assert exported.json()["files"][0]["filename"] == FILE
    assert (await http.get("/v1/customers/cus-z/export", headers=agent)).status_code == 403
    counts = (await http.get("/v1/tickets/counts", headers=agent)).json()
    verdicts = await _rows(sla_database_url, clocks, uuid.UUID(ticket))
    held = await readable_in_database(database_url, HER)
    assert f"ticket_list.subject: {NAME}" in held  # the scan sees what is there
    view = (await http.get(f"/v1/tickets/{ticket}", headers=agent)).json()

    # Erased: only an admin may, and asking twice is the same erasure.
    assert (await http.post("/v1/customers/cus-z/erasure", headers=agent)).status_code == 403
    erased = await http.post("/v1/customers/cus-z/erasure", headers=admin)
    assert erased.status_code == 200, erased.text
    assert erased.json()["requested_by"] == "admin-1"
    assert (erased.json()["tickets"], erased.json()["files"]) == (1, 1)
    again = await http.post("/v1/customers/cus-z/erasure", headers=admin)
    assert again.json() == erased.json()

    # Nothing of her is readable in this service's database, nor in the SLA service's.
    assert await readable_in_database(database_url, HER) == []
    assert await readable_in_database(sla_database_url, HER) == []
    # What Kafka holds of her cannot be opened any more; CustomerErased told the others.
    records = await find_keyed(kafka, TICKETS, ticket.encode(), until=3, tenant=tenant)
    first = await _opened(database_url, records[0].value)
    assert isinstance(first, TicketOpened)
    assert (first.subject, first.requester.name, first.description) == (ERASED,) * 3
    stream = str(customer_stream(tenant, "cus-z")).encode()
    told = [
        p for r in await find_keyed(kafka, DIRECTORY, stream, until=2, tenant=tenant)
        if isinstance(p := await _opened(database_url, r.value), CustomerErased)
    ]  # fmt: skip
    assert [t.erased_subjects for t in told] == [("cus-z",)]

    # Her ticket stays, with its history and statistics; its personal fields read erased.
    after = (await http.get(f"/v1/tickets/{ticket}", headers=agent)).json()
    assert after["subject"] == ERASED
    assert after["requester"]["name"] == ERASED
    assert after["requester"]["customer_id"] == "cus-z"
    unchanged = ("status", "number", "public_replies", "internal_notes", "opened_at")
    assert {k: after[k] for k in unchanged} == {k: view[k] for k in unchanged}
    assert (await http.get("/v1/tickets/counts", headers=agent)).json() == counts
    assert await _rows(sla_database_url, clocks, uuid.UUID(ticket)) == verdicts
    found = await http.get("/v1/tickets", headers=agent, params={"q": SURNAME})
    assert found.json()["items"] == []
    boris = (await http.get(f"/v1/tickets/{other.json()['id']}", headers=agent)).json()
    assert boris["requester"]["name"] == "Boris Pahl"
    assert (await http.get("/v1/customers/cus-z", headers=agent)).status_code == 404
    assert (await http.get(f"/v1/attachments/{file_id}", headers=agent)).status_code == 404
    record = await http.get("/v1/customers/cus-z/erasure", headers=admin)
    assert record.json() == erased.json()
    export = (await http.get("/v1/customers/cus-z/export", headers=admin)).json()
    assert export["profile"] is None
    assert export["erasure"] == erased.json()

    # A rebuild of the read models gives the same rows, and forgets her again.
    listed = "SELECT * FROM ticket_list WHERE tenant_id = $1 ORDER BY number"
    before = await _rows(database_url, listed, tenant)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await rebuild(pool, DEV_KEYS)
    finally:
        await pool.close()
    assert await _rows(database_url, listed, tenant) == before
    assert await readable_in_database(database_url, HER) == []
