"""Secrets and personal data never reach the logs: the ticketing service runs as a process of
its own (JSON logs to a file, as in a pod), is given a customer's name, addresses and
words in every way it takes them, and its whole log is searched for them."""

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx
from pydantic import SecretStr

from helpdesk_contracts import CustomerUpserted, EventEnvelope, kafka_key
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.settings import DEV_JWT_SECRET
from helpdesk_runtime.tokens import mint
from ticketing.config import Settings
from ticketing.intake import DIRECTORY_SYNC_TOPIC

from support.chaos import ServiceProcess, eventually
from support.fixtures import find_keyed

NAME, EMAIL, PHONE = "Zelda Quartermain", "zelda.quartermain@pii-example.org", "+7 912 345-67-89"
# A word no timestamp, id or port can contain by chance (digits did: "4417" in a timestamp).
WORDS = "my flat is 12B on Quokkaberry Lane"


async def test_a_full_session_leaves_no_personal_data_or_secret_in_the_log(
    database_url: str, kafka_bootstrap: str, producer: Producer, tmp_path: Path
) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    await conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, 'logs')", tenant)
    await conn.close()
    group = f"logs-{uuid.uuid4().hex[:8]}"
    service = ServiceProcess(database_url, kafka_bootstrap, tmp_path / "ticketing.log", env={
        "LOG_LEVEL": "DEBUG", "DIRECTORY_GROUP_ID": group, "INTAKE_GROUP_ID": group + "-i",
        "SLA_GROUP_ID": group + "-s",
    })  # fmt: skip
    service.start()
    try:
        await service.wait_ready()
        settings = Settings(database_url=SecretStr(database_url))
        token = mint(settings, Principal(tenant, "agent-7", Role.ADMIN), ttl_s=600)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.port}") as http:
            person = {"customer_id": "cus-z", "name": NAME, "email": EMAIL, "phone": PHONE}
            new = {"subject": f"Help for {NAME}", "description": WORDS, "requester": person}
            opened = await http.post("/v1/tickets", headers=headers, json=new)
            assert opened.status_code == 201, opened.text
            ticket = opened.json()["id"]
            await http.post(f"/v1/tickets/{ticket}/replies", headers=headers,
                            json={"body": f"Dear {NAME}, {WORDS}"})  # fmt: skip
            contacts = [{"kind": "email", "address": EMAIL}, {"kind": "phone", "address": PHONE}]
            her = {"customer_id": "cus-z", "name": NAME, "contacts": contacts}
            await http.post("/v1/customers", headers=headers, json=her)
            taken = await http.post("/v1/customers", headers=headers, json={
                "contacts": [{"kind": "email", "address": EMAIL}]})  # fmt: skip
            assert taken.status_code == 409  # its answer names the address; its log line must not
            await http.get("/v1/customers", headers=headers, params={"q": EMAIL})
            await http.get("/v1/customers", headers=headers, params={"q": NAME})
            bad = await http.post("/v1/customers", headers=headers, json={
                "contacts": [{"kind": "phone", "address": f"{EMAIL} {NAME}"}]})  # fmt: skip
            assert bad.status_code == 422
            stream = (await http.post("/v1/stream-tokens", headers=headers)).json()["token"]
            async with http.stream("GET", "/v1/stream", params={"access_token": stream}) as live:
                assert live.status_code == 200
        # A CRM's upsert that takes her address: dead-lettered with a reason naming it.
        twin = CustomerUpserted.model_validate(
            {"source": "crm", "customer_id": "cus-twin", "version": 1, "contacts": contacts[:1]}
        )
        upsert = EventEnvelope.new(twin, tenant_id=tenant, producer="crm")
        await producer.send_many(
            [OutgoingMessage(DIRECTORY_SYNC_TOPIC, upsert.to_json(), kafka_key(upsert))]
        )
        assert await find_keyed(kafka_bootstrap, f"{DIRECTORY_SYNC_TOPIC}.dlq", b"cus-twin",
                                tenant=tenant)  # fmt: skip

        async def logged() -> bool:  # the dead letter's own line is written after it is sent
            return any("dead-lettered" in str(line.get("event")) for line in service.log_lines())

        await eventually(logged, timeout_s=30)
    finally:
        service.stop()
        await asyncio.sleep(0)

    log = (tmp_path / "ticketing.log").read_text()
    assert "GET /v1/customers?q=[redacted]" in log  # the searches were logged, without them
    secrets = {
        "the bearer token": token, "the stream token": stream, "the JWT secret": DEV_JWT_SECRET,
        "the database password": _password(database_url),
    }  # fmt: skip
    personal = {
        "the name": NAME, "the surname": "Quartermain", "the email": EMAIL, "the phone": PHONE,
        "the phone's digits": "912 345-67-89", "her words": "Quokkaberry",
    }  # fmt: skip
    found = [what for what, text in {**secrets, **personal}.items() if text and text in log]
    assert not found, f"the log holds {', '.join(found)}"


def _password(url: str) -> str:
    credentials = url.split("//", 1)[1].split("@", 1)[0]
    return credentials.split(":", 1)[1] if ":" in credentials else ""
