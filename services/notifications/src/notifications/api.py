"""The notifications HTTP API: the delivery log per ticket and per recipient (agents), and
the dead letters with their re-drive (supervisors see them, admins re-drive)."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, TypeAdapter

from helpdesk_runtime import audit
from helpdesk_runtime.audit import Action
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.db import Connection
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.problems import problem_responses
from helpdesk_runtime.timers import Timer, schedule_many
from notifications.domain.notices import Lane
from notifications.handlers import DELIVER

Recipient = Annotated[
    str,
    Path(pattern=r"^(customer|agent):[^\s]{1,200}$",
         description='Who: "customer:<customer id>" or "agent:<agent id>"'),
]  # fmt: skip
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many, newest first")]


@dataclass(frozen=True)
class ApiDeps:
    """Wired once, in bootstrap."""

    transaction: Callable[[], AbstractAsyncContextManager[Connection]]
    connection: Callable[[], AbstractAsyncContextManager[Connection]]
    clock: Callable[[], datetime]
    auth: HttpAuth


class Attempt(BaseModel):
    attempt: int
    at: datetime
    outcome: str
    """sent, temporary (retried), permanent (refused for good) or cancelled."""
    detail: str | None


class Delivery(BaseModel):
    delivery_id: UUID
    """Stable per (event, recipient, channel); sent with the message (X-Helpdesk-Delivery-Id,
    Message-ID) so receivers can deduplicate."""
    event_id: UUID
    event_type: str
    ticket_id: UUID | None
    recipient: str
    channel: str
    template: str
    lane: str
    transactional: bool
    state: str
    """pending (queued or waiting to retry), sent, dead (a dead letter) or cancelled."""
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    history: list[Attempt]


def router(deps: ApiDeps) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["deliveries"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    Supervisor = Annotated[Principal, Depends(deps.auth.at_least(Role.SUPERVISOR))]  # noqa: N806
    Admin = Annotated[Principal, Depends(deps.auth.at_least(Role.ADMIN))]  # noqa: N806

    @r.get("/tickets/{ticket_id}/deliveries", response_model=list[Delivery],
           responses=problem_responses(401, 403))  # fmt: skip
    async def ticket_deliveries(ticket_id: UUID, caller: Agent, limit: Limit = 100) -> Any:
        """What was sent about a ticket: to whom, when, through what, with what outcome."""
        async with deps.connection() as conn:
            return await _deliveries(conn, caller.tenant_id, "d.ticket_id = $2", ticket_id, limit)

    @r.get("/recipients/{recipient}/deliveries", response_model=list[Delivery],
           responses=problem_responses(401, 403))  # fmt: skip
    async def recipient_deliveries(recipient: Recipient, caller: Agent, limit: Limit = 100) -> Any:
        """What was sent to one person."""
        async with deps.connection() as conn:
            return await _deliveries(conn, caller.tenant_id, "d.recipient = $2", recipient, limit)

    @r.get("/deliveries/{delivery_id}", response_model=Delivery,
           responses=problem_responses(401, 403, 404))  # fmt: skip
    async def one_delivery(delivery_id: UUID, caller: Agent) -> Any:
        async with deps.connection() as conn:
            found = await _deliveries(conn, caller.tenant_id, "d.delivery_id = $2", delivery_id, 1)
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no delivery {delivery_id}")
        return found[0]

    @r.get("/dead-letters", response_model=list[Delivery], responses=problem_responses(401, 403))
    async def dead_letters(caller: Supervisor, limit: Limit = 100) -> Any:
        """Deliveries refused for good or out of retries, with the reason: re-drive them
        once the cause is fixed (a corrected address, a provider back)."""
        async with deps.connection() as conn:
            return await _deliveries(conn, caller.tenant_id, "d.state = $2", "dead", limit)

    @r.post("/deliveries/{delivery_id}/redrive", response_model=Delivery,
            responses=problem_responses(401, 403, 404, 409))  # fmt: skip
    async def redrive(delivery_id: UUID, caller: Admin) -> Any:
        """Send a dead letter again, now, with a fresh set of retries."""
        async with deps.transaction() as conn:
            lane = await conn.fetchval(
                "UPDATE deliveries SET state = 'pending', redriven_at_attempt = attempts"
                " WHERE tenant_id = $1 AND delivery_id = $2 AND state = 'dead' RETURNING lane",
                caller.tenant_id, delivery_id,
            )  # fmt: skip
            if lane is None:
                found = await _deliveries(
                    conn, caller.tenant_id, "d.delivery_id = $2", delivery_id, 1
                )
                if not found:
                    raise HTTPException(
                        status.HTTP_404_NOT_FOUND, f"there is no delivery {delivery_id}"
                    )
                state = found[0].state
                raise HTTPException(
                    status.HTTP_409_CONFLICT, f"delivery {delivery_id} is {state}, not dead"
                )
            await schedule_many(conn, [Timer(DELIVER[Lane(lane)], str(delivery_id),
                                             caller.tenant_id, deps.clock(), {})])  # fmt: skip
            await audit.record(conn, tenant_id=caller.tenant_id, actor=caller, entity="delivery",
                               entity_id=str(delivery_id), action=Action.UPDATED,
                               before={"state": "dead"}, after={"state": "pending"})  # fmt: skip
            [delivery] = await _deliveries(
                conn, caller.tenant_id, "d.delivery_id = $2", delivery_id, 1
            )
        return delivery

    return r


async def _deliveries(
    conn: Connection, tenant_id: str, where: str, value: Any, limit: int
) -> list[Delivery]:
    rows = await conn.fetch(
        f"""
        SELECT d.delivery_id, d.event_id, d.event_type, d.ticket_id, d.recipient, d.channel,
               d.template, d.lane, d.transactional, d.state, d.attempts, d.last_error,
               d.created_at, d.sent_at,
               coalesce((SELECT jsonb_agg(jsonb_build_object('attempt', a.attempt, 'at', a.at,
                    'outcome', a.outcome, 'detail', a.detail) ORDER BY a.attempt)
                 FROM delivery_attempts a
                 WHERE a.tenant_id = d.tenant_id AND a.delivery_id = d.delivery_id), '[]')::text
                 AS history
        FROM deliveries d WHERE d.tenant_id = $1 AND {where}
        ORDER BY d.created_at DESC LIMIT $3
        """,
        tenant_id, value, limit,
    )  # fmt: skip
    return [
        Delivery.model_validate({**dict(r), "history": _HISTORY.validate_json(r["history"])})
        for r in rows
    ]


_HISTORY = TypeAdapter(list[Attempt])
