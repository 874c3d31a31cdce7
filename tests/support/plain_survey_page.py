"""The raw ceiling of the survey page's answer: a bare ASGI app on uvicorn with asyncpg.

POST /<survey id> with a form (score, comment): in one transaction, lock the invitation,
insert the answer, mark the invitation answered and put one outbox row; answer with a page
of the real one's size. No FastAPI, no pydantic, no templates, no token to verify, no
checks: what the feedback service's figure is read against, in the same run, on copies of
its tables (plain_*), so the service's own rows are not touched.

    python tests/support/plain_survey_page.py <port> <database url>
"""

import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import uvicorn

SETUP = (
    "CREATE TABLE IF NOT EXISTS plain_invitations (LIKE invitations INCLUDING ALL)",
    "CREATE TABLE IF NOT EXISTS plain_answers (LIKE answers INCLUDING ALL)",
    "CREATE TABLE IF NOT EXISTS plain_outbox (LIKE outbox INCLUDING ALL)",
    "INSERT INTO plain_invitations SELECT * FROM invitations ON CONFLICT DO NOTHING",
)
PAGE = b"<!doctype html><html><body><h1>Thank you!</h1>" + b"<p>" + b"x" * 2800 + b"</p></html>"


class PlainPage:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._pool: asyncpg.Pool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    self._pool = await asyncpg.create_pool(self._dsn, min_size=4, max_size=10)
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = parse_qs(body.decode())
        survey_id = uuid.UUID(scope["path"].strip("/"))
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            found = await conn.fetchrow(
                "SELECT tenant_id, ticket_id, customer_id, agent_id FROM plain_invitations"
                " WHERE tenant_id = 'acme' AND survey_id = $1 FOR UPDATE", survey_id,
            )  # fmt: skip
            assert found is not None, survey_id
            answer = uuid.uuid4()
            now = datetime.now(UTC)
            await conn.execute(
                "INSERT INTO plain_answers (tenant_id, feedback_id, survey_id, ticket_id,"
                " customer_id, survey, score, comment, agent_id, source, answered_at)"
                " VALUES ($1, $2, $3, $4, $5, 'csat', $6, $7, $8, 'plain', $9)",
                found["tenant_id"], answer, survey_id, found["ticket_id"], found["customer_id"],
                int(form["score"][0]), form.get("comment", [None])[0], found["agent_id"], now,
            )  # fmt: skip
            await conn.execute(
                "UPDATE plain_invitations SET answered_at = $3, answer_id = $2"
                " WHERE tenant_id = 'acme' AND survey_id = $1", survey_id, answer, now,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO plain_outbox (tenant_id, event_id, event_type, schema_version,"
                " occurred_at, producer, correlation_id, partition_key, payload)"
                " VALUES ('acme', $1, 'FeedbackReceived', 1, $2, 'plain', $1, $3, $4::jsonb)",
                uuid.uuid4(), now, str(found["ticket_id"]),
                json.dumps({"feedback_id": str(answer), "score": int(form["score"][0])}),
            )  # fmt: skip
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")]})  # fmt: skip
        await send({"type": "http.response.body", "body": PAGE})


if __name__ == "__main__":
    port, dsn = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(PlainPage(dsn), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)  # fmt: skip
